/**
 * Which matmul kernel a product gets on a device. Products fall in two classes: 'wide' (both sides of C
 * at least 128: the base model's projections) and 'narrow' (a side below 128: LoRA's rank-r factors
 * and their gradients, small models). An autotune at load (matmul-tune.ts) measures the kernels on
 * each class, with and without split-K, and records the winners here; without one, software adapters
 * get the barrier-free register kernels and hardware the 64x64 tile, unsplit.
 */

export type MatmulVariant =
  | 'tiled'
  | 'tiled-128'
  | 'tiled-128x64'
  | 'tiled-v4'
  | 'tiled-128-v4'
  | 'tiled-g4'
  | 'tiled-128-g4'
  | 'tiled-128x64-g4'
  | 'register'
  | 'register-vec4';

export const MATMUL_VARIANTS: readonly MatmulVariant[] = [
  'tiled',
  'tiled-128',
  'tiled-128x64',
  'tiled-v4',
  'tiled-128-v4',
  'tiled-g4',
  'tiled-128-g4',
  'tiled-128x64-g4',
  'register',
  'register-vec4',
];

/** Kernels that read A and B as vec4s from memory, and the kernel of the same shape that runs unaligned views. */
const UNALIGNED_FALLBACK: Partial<Record<MatmulVariant, MatmulVariant>> = {
  'register-vec4': 'register',
  'tiled-g4': 'tiled-v4',
  'tiled-128-g4': 'tiled-128-v4',
  'tiled-128x64-g4': 'tiled-128x64',
};

/** True when the kernel needs K and every offset, leading dimension and batch stride of A and B to be multiples of 4. */
export function needsAlignment(variant: MatmulVariant): boolean {
  return variant in UNALIGNED_FALLBACK;
}

export type ShapeClass = 'wide' | 'narrow';

/** A kernel, and whether a product of few output tiles and long K is split along K (matmul.ts decides how far). */
export interface MatmulChoice {
  variant: MatmulVariant;
  splitK: boolean;
}

export type MatmulPlan = Record<ShapeClass, MatmulChoice>;

export function choiceLabel(c: MatmulChoice): string {
  return c.splitK ? `${c.variant}+split-k` : c.variant;
}

const plans = new WeakMap<GPUDevice, MatmulPlan>();

/** Keyed by device: every Gpu wrapper on the same device (the studio's scoped ones) shares the plan. */
export function setMatmulPlan(device: GPUDevice, plan: MatmulPlan | null): void {
  if (plan) plans.set(device, plan);
  else plans.delete(device);
}

export function matmulPlanOf(device: GPUDevice): MatmulPlan | undefined {
  return plans.get(device);
}

/** The plan that applies when none was tuned. */
export function untunedPlan(software: boolean): MatmulPlan {
  const variant: MatmulVariant = software ? 'register-vec4' : 'tiled';
  return { wide: { variant, splitK: false }, narrow: { variant, splitK: false } };
}

export function shapeClass(M: number, N: number): ShapeClass {
  return Math.min(M, N) < 128 ? 'narrow' : 'wide';
}

/** The kernel for an M x N product; the vec4-load kernels fall back to scalar loads when the views are not 4-aligned. */
export function plannedKernel(
  device: GPUDevice,
  software: boolean,
  M: number,
  N: number,
  aligned: boolean,
): MatmulChoice {
  const c = (plans.get(device) ?? untunedPlan(software))[shapeClass(M, N)];
  const fallback = UNALIGNED_FALLBACK[c.variant];
  return fallback && !aligned ? { ...c, variant: fallback } : c;
}

/** Shared kernel-test harness: one Dawn device per test file, comparison against float64 references. */
import { expect } from 'vitest';
import { Gpu } from '../../src/gpu/gpu';
import { requestDevice } from '../../src/gpu/device';
import { nodeDevice, nodeGpuInstance } from '../../src/gpu/node-device';
import type { Trainable } from '../../src/model/adapter';

let gpuPromise: Promise<Gpu> | null = null;

export function testGpu(): Promise<Gpu> {
  gpuPromise ??= nodeDevice().then((h) => new Gpu(h));
  return gpuPromise;
}

let plainGpuPromise: Promise<Gpu> | null = null;

/**
 * A second device on the same adapter with the optional features (subgroups, shader-f16) left off,
 * so the fallback kernels are tested next to the feature kernels on a machine that has both.
 */
export function testGpuWithoutFeatures(): Promise<Gpu> {
  plainGpuPromise ??= nodeGpuInstance().then(async (instance) => {
    const handle = await requestDevice(instance, { disableF16: true, disableSubgroups: true });
    if (!handle) throw new Error('no adapter for the feature-less test device');
    return new Gpu(handle);
  });
  return plainGpuPromise;
}

/** Records with `record`, runs the list once and waits for the GPU. */
export async function runOnce(gpu: Gpu, record: (list: ReturnType<Gpu['list']>) => void): Promise<void> {
  gpu.device.pushErrorScope('validation');
  const list = gpu.list('test');
  record(list);
  list.run();
  await gpu.sync();
  const err = await gpu.device.popErrorScope();
  if (err) throw new Error(`WebGPU validation error: ${err.message}`);
  gpu.checkErrors('test');
}

/** The kernels (`module.entry`) a list dispatches, in order: records it, runs it once through profile(), frees it. */
export async function dispatched(gpu: Gpu, record: (list: ReturnType<Gpu['list']>) => void): Promise<string[]> {
  const list = gpu.list('names');
  record(list);
  const names = [...(await list.profile()).keys()];
  await list.release();
  return names;
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| elementwise, reporting the worst element.
 * f32 kernels vs float64 references: defaults suit sums of up to a few thousand terms.
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  name: string,
  { atol = 1e-5, rtol = 1e-4 }: { atol?: number; rtol?: number } = {},
): void {
  expect(actual.length, `${name}: length`).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!Number.isFinite(a) || excess > worstExcess) {
      worst = i;
      worstExcess = Number.isFinite(a) ? excess : Infinity;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `${name}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`,
    );
  }
}

/** Central differences of a scalar float64 function of x (for checking backward references). */
export function numericGrad(f: (x: Float64Array) => number, x: ArrayLike<number>, h = 1e-6): Float64Array {
  const xs = Float64Array.from(x);
  const g = new Float64Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    const x0 = xs[i];
    xs[i] = x0 + h;
    const up = f(xs);
    xs[i] = x0 - h;
    const down = f(xs);
    xs[i] = x0;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

export const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/**
 * Runs body inside a validation error scope: a rejected dispatch would otherwise fail silently and show
 * up only as wrong numbers, so a validation error is reported first.
 */
export async function validated(gpu: Gpu, body: () => Promise<void>): Promise<void> {
  gpu.device.pushErrorScope('validation');
  let failure: unknown = null;
  try {
    await body();
  } catch (e) {
    failure = e;
  }
  const error = await gpu.device.popErrorScope();
  expect(error?.message, 'WebGPU validation error').toBeUndefined();
  if (failure) throw failure;
}

/** Expects two runs' trainable tensors (pairwise, same order) to agree within `tol` in every element. */
export async function expectSameTrainables(gpu: Gpu, a: Trainable[], b: Trainable[], tol = 1e-5): Promise<void> {
  expect(b.length).toBe(a.length);
  for (let i = 0; i < a.length; i++) {
    const [pa, pb] = await gpu.readMany([a[i].param, b[i].param]);
    let worst = 0;
    pa.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - pb[j]))));
    expect(worst, a[i].name).toBeLessThan(tol);
  }
}

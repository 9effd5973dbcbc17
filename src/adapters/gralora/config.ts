/**
 * GraLoRA configuration in PEFT's convention (docs/METHODS.md, GraLoRA): `rank` is the GraLoRA part only, the
 * hybrid LoRA part adds `hybridRank`, and both share s = alpha / (rank + hybridRank).
 */
import type { LinearInfo } from '../../model/layout';

export interface GraloraConfig {
  /** PEFT `r`: rank of the k x k block part (each block gets rank / k). */
  rank: number;
  /** PEFT `gralora_k`: blocks per side. */
  k: number;
  /** PEFT `hybrid_r`: rank of the plain full-width LoRA running in parallel (0 = none). */
  hybridRank: number;
  alpha: number;
  /** PEFT list-form target names. */
  targets: string[];
  /** LoRA+ ratio lr_B / lr_A, applied to gralora_B and the hybrid B. */
  lrRatioB: number;
}

export function graloraScale(alpha: number, rank: number, hybridRank: number): number {
  return alpha / (rank + hybridRank);
}

/**
 * k from the total rank (GraLoRA part + hybrid), following the official scripts and PEFT's advice:
 * 2 below rank 64 (16 and 32 use 2), 4 from 64. Halved until it divides the GraLoRA part's rank, so small or
 * odd ranks still validate.
 */
export function defaultGraloraK(totalRank: number, graloraRank = totalRank): number {
  let k = totalRank >= 64 ? 4 : 2;
  while (k > 1 && graloraRank % k !== 0) k /= 2;
  return k;
}

/** Cheap invariants of a built GraLoRA configuration (options are checked, per surface, by the registry). */
export function validateGraloraConfig(c: GraloraConfig): void {
  if (!Number.isInteger(c.rank) || c.rank < 1) throw new Error(`GraLoRA rank must be an integer >= 1 (got ${c.rank})`);
  if (!Number.isInteger(c.k) || c.k < 1) throw new Error(`GraLoRA k must be an integer >= 1 (got ${c.k})`);
  if (c.rank % c.k !== 0)
    throw new Error(`GraLoRA rank ${c.rank} is not divisible by k ${c.k}: each of the k x k blocks gets rank r/k`);
  if (!Number.isInteger(c.hybridRank) || c.hybridRank < 0)
    throw new Error(`GraLoRA hybrid rank must be an integer >= 0 (got ${c.hybridRank})`);
  if (!Number.isFinite(c.alpha) || c.alpha <= 0)
    throw new Error(`GraLoRA alpha must be a positive number (got ${c.alpha})`);
  if (c.targets.length === 0) throw new Error('GraLoRA needs at least one target module');
  if (!(c.lrRatioB > 0)) throw new Error(`LoRA+ ratio must be positive (got ${c.lrRatioB})`);
}

export interface ModuleK {
  k: number;
  /** Set when k had to be lowered for this module. */
  warning?: string;
}

/**
 * The k this module can use: the largest k' <= k dividing in, out and rank (k' = 1 is plain LoRA).
 * Never pads: a padded block would change the adapter's meaning and its PEFT shapes.
 */
export function moduleK(info: Pick<LinearInfo, 'path' | 'in' | 'out'>, rank: number, k: number): ModuleK {
  let kk = k;
  while (kk > 1 && (info.in % kk !== 0 || info.out % kk !== 0 || rank % kk !== 0)) kk--;
  if (kk === k) return { k };
  const why = [
    info.in % k ? `in ${info.in}` : '',
    info.out % k ? `out ${info.out}` : '',
    rank % k ? `rank ${rank}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return {
    k: kk,
    warning: `${info.path} (${info.in} -> ${info.out}, rank ${rank}): gralora_k ${k} does not divide ${why}; using k = ${kk}${kk === 1 ? ' (plain LoRA)' : ''}`,
  };
}

/** The original SqueezeBits fields: r counts the hybrid part too, scale = gralora_alpha / r. */
export interface OriginalGraloraFields {
  r: number;
  hybridR: number;
  alpha: number;
}

/** Original (r, h, alpha) -> PEFT (r - h, h, alpha): the same adapter with the same scale. */
export function graloraFromOriginal(o: OriginalGraloraFields): { rank: number; hybridRank: number; alpha: number } {
  if (!(o.hybridR >= 0) || o.r - o.hybridR < 1) {
    throw new Error(
      `original GraLoRA r ${o.r} must exceed hybrid_r ${o.hybridR}: its GraLoRA part has rank r - hybrid_r`,
    );
  }
  return { rank: o.r - o.hybridR, hybridRank: o.hybridR, alpha: o.alpha };
}

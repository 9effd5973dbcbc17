/** LoRA / rsLoRA configuration (PEFT semantics, docs/METHODS.md, LoRA and rsLoRA). */
export interface LoraConfig {
  rank: number;
  alpha: number;
  /** PEFT list-form target names (e.g. q_proj, v_proj, attn.c_proj). */
  targets: string[];
  /** rsLoRA: s = alpha / sqrt(r) instead of alpha / r. */
  rslora: boolean;
  /** LoRA+ ratio lr_B / lr_A (1 = plain LoRA). */
  lrRatioB: number;
}

export function loraScale(rank: number, alpha: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/** Cheap invariants of a built LoRA configuration (options are checked, per surface, by the registry). */
export function validateLoraConfig(c: LoraConfig): void {
  if (!Number.isInteger(c.rank) || c.rank < 1) throw new Error(`LoRA rank must be an integer >= 1 (got ${c.rank})`);
  if (!Number.isFinite(c.alpha) || c.alpha <= 0)
    throw new Error(`LoRA alpha must be a positive number (got ${c.alpha})`);
  if (c.targets.length === 0) throw new Error('LoRA needs at least one target module');
  if (!(c.lrRatioB > 0)) throw new Error(`LoRA+ ratio must be positive (got ${c.lrRatioB})`);
}

/**
 * The budget helper: trainable parameters of a run configuration and a rough GPU memory estimate,
 * computed from the model's shapes alone (pure, no GPU), so the Runs panel can show them while editing.
 */
import { expectedTensors, type ModelSpec } from '../model/config';
import { allLinearTargets, defaultTargets, selectTargets } from '../model/layout';
import type { RunConfig, TargetPreset } from '../worker/protocol';

export function targetNames(spec: ModelSpec, preset: TargetPreset): string[] {
  return preset === 'all-linear' ? allLinearTargets(spec) : defaultTargets(spec);
}

/** "q,v" / "c_attn" / "all linear" for tables. */
export function targetLabel(preset: TargetPreset, spec?: ModelSpec | null): string {
  if (preset === 'all-linear') return 'all linear';
  if (spec?.family === 'gpt2') return 'c_attn';
  return 'q,v';
}

export function baseParameters(spec: ModelSpec): number {
  return expectedTensors(spec).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
}

export function trainableParameters(spec: ModelSpec, c: Pick<RunConfig, 'method' | 'rank' | 'targets'>): number {
  if (c.method === 'full') return baseParameters(spec);
  const rank = Math.max(0, Math.floor(c.rank));
  return selectTargets(spec, targetNames(spec, c.targets)).reduce((n, m) => n + rank * (m.in + m.out), 0);
}

/**
 * Approximate GPU bytes of a run: base weights, trainable state (weights, gradients, two AdamW moments),
 * the activations the backward pass keeps (see TransformerGraph), logits, and a training-graph-sized
 * evaluation graph. Float32 throughout. It is an estimate; the run reports the real figure.
 */
export function trainingBytes(spec: ModelSpec, c: RunConfig): number {
  const base = baseParameters(spec) * 4;
  const trainable = trainableParameters(spec, c);
  // Weights (full fine-tuning trains its own copy), gradients and two AdamW moments.
  const optimizer = 16 * trainable;
  const rows = c.batch * c.seq;
  const d = spec.hidden;
  const qkv = (spec.heads + 2 * spec.kvHeads) * spec.headDim;
  const att = spec.heads * spec.headDim;
  const ff = spec.intermediate;
  const perLayer = rows * (5 * d + 2 * qkv + att + 3 * ff + 4) + c.batch * spec.heads * c.seq * c.seq;
  const activations = spec.layers * perLayer + rows * (2 * d + 2);
  const logits = rows * spec.vocabSize * 2;
  const scratch = rows * Math.max(d, ff, qkv) * 4;
  const graph = (activations + logits + scratch) * 4;
  // The evaluation graph has the same shape, without gradients.
  const evalGraph = (activations + logits) * 4;
  return base + optimizer + graph + evalGraph;
}

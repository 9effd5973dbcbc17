/** Shared by the PiSSA and LoRA-GA tests: a preparation context, trained-adapter perturbation, loss, export round trip. */
import type { Batch } from '../../src/data/index';
import { exportAdapter, loadPeftAdapter, peftFiles } from '../../src/engine/export';
import type { MethodState } from '../../src/engine/methods';
import type { Gpu } from '../../src/gpu/gpu';
import type { LinearAdapter } from '../../src/model/adapter';
import { openSafetensors } from '../../src/model/formats/safetensors';
import { bytesSource } from '../../src/model/formats/source';
import { TransformerGraph } from '../../src/model/transformer';
import type { ModelWeights } from '../../src/model/weights';
import { evaluate } from '../../src/train/evaluate';
import { Rng } from '../../src/util/random';
import { randomBatch, type tinySpec } from './tiny-models';

const SHAPE = { batch: 2, seq: 5 };
export function context(spec: ReturnType<typeof tinySpec>) {
  let seed = 100;
  return { nextBatch: (): Batch => ({ ...randomBatch(spec, SHAPE.batch, SHAPE.seq, seed++), ...SHAPE }), shape: SHAPE };
}

/** Moves every trainable off its init (a trained adapter), so A ≠ A₀ and B ≠ B₀. */
export async function perturb(gpu: Gpu, state: MethodState, seed: number, sd = 0.2): Promise<void> {
  const rng = new Rng(seed);
  for (const t of [...state.adapters.values()].flatMap((a) => a.trainables)) {
    const p = await gpu.read(t.param);
    gpu.upload(
      t.param,
      p.map((v) => v + rng.normal() * sd),
    );
  }
}

export async function lossOf(gpu: Gpu, weights: ModelWeights, adapters?: Map<string, LinearAdapter>) {
  const batches = [4, 5].map((s) => ({ ...randomBatch(weights.spec, SHAPE.batch, SHAPE.seq, s), ...SHAPE }));
  return (await evaluate(gpu, new TransformerGraph(gpu, weights, { ...SHAPE, train: 'none', adapters }), batches)).loss;
}

/** Export → files → import (with the base weights, as loadPeftFolder passes them) → the imported adapters. */
export async function roundTrip(gpu: Gpu, weights: ModelWeights, state: MethodState, raw = false) {
  const exported = await exportAdapter(gpu, weights.spec, state, { baseModel: 'tiny', raw });
  const files = peftFiles(exported);
  const config = JSON.parse(files['adapter_config.json'] as string);
  const store = await openSafetensors(
    bytesSource('adapter_model.safetensors', files['adapter_model.safetensors'] as Uint8Array),
  );
  const imported = await loadPeftAdapter(gpu, weights.spec, config, store, 'export', weights);
  return { config, exported, imported };
}

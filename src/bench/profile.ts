/**
 * Where a LoRA training step's time goes, kernel by kernel. With 'timestamp-query' the whole forward + loss +
 * backward list runs in one submit with GPU timestamps around every dispatch; without it,
 * CommandList.profile() runs each dispatch alone and waits for it (approximate: each pays a submit and a wait).
 */
import { createLoraLayers } from '../adapters/lora/model';
import { resolveTargets } from '../engine/methods';
import type { Gpu } from '../gpu/gpu';
import { TransformerGraph } from '../model/transformer';
import type { ModelWeights } from '../model/weights';
import { BatchStream } from '../data/index';
import { syntheticExamples, type TrainBenchConfig } from './train';

export interface KernelTime {
  /** 'timestamps' (GPU time) or 'wall' (each dispatch alone, wall clock). */
  source: 'timestamps' | 'wall';
  kernel: string;
  dispatches: number;
  ms: number;
  share: number;
}

export async function profileTrainStep(gpu: Gpu, weights: ModelWeights, c: TrainBenchConfig): Promise<KernelTime[]> {
  const spec = weights.spec;
  const layers = createLoraLayers(
    gpu,
    spec,
    { rank: c.rank, alpha: c.rank, targets: resolveTargets(spec, c.targets), rslora: false, lrRatioB: 1 },
    0,
  );
  const graph = new TransformerGraph(gpu, weights, {
    batch: c.batch,
    seq: c.seq,
    train: 'adapters',
    adapters: new Map(layers),
  });
  const stream = new BatchStream(syntheticExamples(c.batch, c.seq, spec.vocabSize, 1), {
    batch: c.batch,
    seq: c.seq,
    padId: 0,
    shuffle: false,
    seed: 0,
    mode: 'pad',
  });
  graph.setBatch(stream.next());
  const list = graph.backwardList!;
  list.run(); // warm-up
  await gpu.sync();
  const stamped = await list.profileTimestamps();
  const times = stamped ?? (await list.profile());
  const source = stamped ? 'timestamps' : 'wall';
  gpu.checkErrors('bench profile');
  const total = [...times.values()].reduce((a, t) => a + t.ms, 0);
  return [...times]
    .map(([kernel, t]) => ({ source, kernel, dispatches: t.count, ms: t.ms, share: t.ms / total }) as KernelTime)
    .sort((a, b) => b.ms - a.ms);
}

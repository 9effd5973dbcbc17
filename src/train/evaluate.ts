/** Token-weighted mean next-token cross-entropy over every supervised position of a set of batches. */
import type { Gpu } from '../gpu/gpu';
import type { TransformerGraph } from '../model/transformer';

export interface EvalResult {
  /** Mean natural-log cross-entropy per supervised token. */
  loss: number;
  tokens: number;
}

export interface EvalBatch {
  tokens: Uint32Array;
  targets: Int32Array;
  positions: Uint32Array;
  supervised: number;
}

export async function evaluate(gpu: Gpu, graph: TransformerGraph, batches: Iterable<EvalBatch>): Promise<EvalResult> {
  let total = 0;
  let tokens = 0;
  let index = 0;
  for (const b of batches) {
    index++;
    if (b.supervised === 0) continue;
    graph.setBatch(b);
    graph.forwardList.run();
    const [sum] = await gpu.read(graph.lossSum);
    // A pass the GPU rejected leaves a stale or zero loss sum: fail instead of averaging it in.
    gpu.checkErrors(`Evaluation batch ${index}`);
    // Sum in float64 across batches; each batch's sum is an f32 reduction on the GPU.
    total += sum;
    tokens += b.supervised;
  }
  return { loss: tokens > 0 ? total / tokens : NaN, tokens };
}

/**
 * Hidden-state sampling for GeLoRA (docs/METHODS.md, GeLoRA, [app]): the frozen model runs forward on training
 * batches, and up to `perSequence` random non-pad positions per sequence (never a sequence's position 0,
 * which is the same token everywhere and a norm outlier) are read from every residual stream h_0..h_L.
 * Every layer gets the same tokens, in the same order.
 */
import type { Gpu } from '../../gpu/gpu';
import type { Batch } from '../../data/batches';
import { IGNORE_INDEX } from '../../data/types';
import type { TransformerGraph } from '../../model/transformer';
import { Rng } from '../../util/random';

export interface CollectOptions {
  /** Stop once this many points are gathered (fewer if the batches run out). */
  samples?: number;
  perSequence?: number;
  seed?: number;
  /**
   * The pad token: padding is the trailing run of a row whose tokens are padId with target -100 (how
   * data/batches pads). Without it the whole trailing run of -100 targets counts as padding, which also
   * drops each row's last real token (harmless, just one candidate fewer).
   */
  padId?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface HiddenStates {
  /** L + 1 arrays [count, hidden] on the CPU (samples·hidden·(L+1) floats): row k of every layer is the same token. */
  layers: Float32Array[];
  count: number;
  hidden: number;
  /** Where row k came from: batch number and flat index (row·seq + t) into that batch. */
  picks: { batch: number; index: number }[];
}

export async function collectHiddenStates(
  gpu: Gpu,
  graph: TransformerGraph,
  batches: Batch[],
  opts: CollectOptions = {},
): Promise<HiddenStates> {
  const samples = opts.samples ?? 2048;
  const perSequence = opts.perSequence ?? 8;
  if (!Number.isInteger(samples) || samples < 1)
    throw new Error(`GeLoRA: samples must be a positive integer (got ${samples})`);
  if (!Number.isInteger(perSequence) || perSequence < 1)
    throw new Error(`GeLoRA: perSequence must be a positive integer (got ${perSequence})`);
  const rng = new Rng(opts.seed ?? 0);
  const hidden = graph.spec.hidden;
  const streams = graph.spec.layers + 1;
  const layers = Array.from({ length: streams }, () => new Float32Array(samples * hidden));
  const picks: HiddenStates['picks'] = [];

  for (let b = 0; b < batches.length && picks.length < samples; b++) {
    const chosen = pickPositions(batches[b], perSequence, rng, opts.padId).slice(0, samples - picks.length);
    if (chosen.length === 0) continue;
    graph.setBatch(batches[b]);
    graph.forwardList.run();
    // chosen is ascending: read only the span of rows it covers.
    const first = chosen[0];
    const span = chosen[chosen.length - 1] - first + 1;
    // Every stream's span in one readback.
    const spans = await gpu.readMany(
      layers.map((_, l) => ({ t: graph.residualStream(l), offset: first * hidden, count: span * hidden })),
    );
    spans.forEach((h, l) => {
      chosen.forEach((index, k) =>
        layers[l].set(h.subarray((index - first) * hidden, (index - first + 1) * hidden), (picks.length + k) * hidden),
      );
    });
    gpu.checkErrors('GeLoRA hidden-state collection');
    for (const index of chosen) picks.push({ batch: b, index });
    opts.onProgress?.(picks.length, samples);
  }
  const count = picks.length;
  return { layers: count === samples ? layers : layers.map((h) => h.slice(0, count * hidden)), count, hidden, picks };
}

/**
 * Up to perSequence random candidate positions from each sequence of a batch, as flat indices. A sequence
 * starts at each row start and wherever positions restart at 0 (packed rows); candidates are its
 * non-pad positions other than the first.
 */
export function pickPositions(batch: Batch, perSequence: number, rng: Rng, padId?: number): number[] {
  const { seq } = batch;
  const out: number[] = [];
  for (let row = 0; row < batch.batch; row++) {
    const base = row * seq;
    const end = base + seq - trailingPadding(batch, row, padId);
    let candidates: number[] = [];
    const flush = () => {
      out.push(...sample(candidates, perSequence, rng));
      candidates = [];
    };
    for (let i = base; i < end; i++) {
      if (i === base || batch.positions[i] === 0) flush();
      else candidates.push(i);
    }
    flush();
  }
  return out;
}

/** Length of the row's trailing padding (see CollectOptions.padId). */
function trailingPadding(batch: Batch, row: number, padId: number | undefined): number {
  const base = row * batch.seq;
  let n = 0;
  for (let i = base + batch.seq - 1; i >= base; i--, n++) {
    const pad = batch.targets[i] === IGNORE_INDEX && (padId === undefined || batch.tokens[i] === padId);
    if (!pad) break;
  }
  return n;
}

/** k distinct random items (all of them if there are at most k), in their original order. */
function sample(items: number[], k: number, rng: Rng): number[] {
  if (items.length <= k) return items;
  const xs = items.slice();
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(xs.length - i);
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs.slice(0, k).sort((a, b) => a - b);
}

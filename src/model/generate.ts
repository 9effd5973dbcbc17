/**
 * Greedy decoding. The prefix is re-run through a forward graph whose length is the next power of two
 * (causal attention makes the padding invisible to earlier positions); graphs are cached per length.
 */
import type { LinearAdapter } from '../adapters/types';
import type { Gpu } from '../gpu/gpu';
import { TransformerGraph } from './transformer';
import type { ModelWeights } from './weights';

export interface GenerateOptions {
  maxNewTokens: number;
  /** Stop at this token (usually EOS). */
  stopId?: number | null;
  adapters?: Map<string, LinearAdapter>;
  onToken?: (id: number) => void;
}

export class Generator {
  private readonly graphs = new Map<number, TransformerGraph>();

  constructor(
    private readonly gpu: Gpu,
    private readonly weights: ModelWeights,
    private readonly adapters?: Map<string, LinearAdapter>,
  ) {}

  private graph(len: number): TransformerGraph {
    const max = this.weights.spec.maxPositions;
    let seq = 16;
    while (seq < len) seq *= 2;
    seq = Math.min(seq, max);
    let g = this.graphs.get(seq);
    if (!g) {
      g = new TransformerGraph(this.gpu, this.weights, { batch: 1, seq, train: 'none', adapters: this.adapters });
      this.graphs.set(seq, g);
    }
    return g;
  }

  /** Returns the generated ids (without the prompt). */
  async greedy(prompt: number[], opts: GenerateOptions): Promise<number[]> {
    if (prompt.length === 0) throw new Error('generate needs at least one prompt token (BOS for an empty prompt)');
    const max = this.weights.spec.maxPositions;
    const V = this.weights.spec.vocabSize;
    const ids = [...prompt];
    const out: number[] = [];
    while (out.length < opts.maxNewTokens && ids.length < max) {
      const g = this.graph(ids.length);
      const seq = g.opts.seq;
      const tokens = new Uint32Array(seq);
      tokens.set(ids);
      const positions = Uint32Array.from({ length: seq }, (_, i) => i);
      g.setBatch({ tokens, targets: new Int32Array(seq).fill(-100), positions, supervised: 0 });
      g.forwardList.run();
      const row = await this.gpu.read(g.logits, (ids.length - 1) * V, V);
      let best = 0;
      for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
      if (opts.stopId != null && best === opts.stopId) break;
      ids.push(best);
      out.push(best);
      opts.onToken?.(best);
    }
    return out;
  }
}

/**
 * Real Hugging Face checkpoints load, evaluate as transformers does, and train.
 *
 * External truth: test/fixtures/hf-golden (README.md there), five tiny models of every family (llama with GQA, llama
 * with tied bf16 weights, qwen2, qwen3, gpt2) whose losses, per-example sums and first logits transformers 4.51.3
 * computed (golden.json: `models.<m>.base.<file>` and `models.<m>.logits_first_example`). Every example runs alone
 * in its row, as the golden contract says. Tolerances are the README's for a float32 engine: 1e-5 relative on
 * losses, 5e-5 absolute on logits.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createLoraLayers } from '../../src/adapters/lora/model';
import { padBatches, type Example } from '../../src/data/index';
import { loadModelDir } from '../../src/engine/load-model';
import { nodeDir } from '../../src/model/formats/node-source';
import { defaultTargets } from '../../src/model/layout';
import { TransformerGraph } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { evaluate } from '../../src/train/evaluate';
import { DEFAULT_OPTIMIZER, Trainer } from '../../src/train/trainer';
import { expectClose, testGpu } from '../helpers/gpu';
import { randomBatch } from '../helpers/tiny-models';

const ROOT = 'test/fixtures/hf-golden';
const golden = JSON.parse(readFileSync(`${ROOT}/golden.json`, 'utf8'));
const MODELS = ['llama_gqa', 'llama_tied_bf16', 'qwen2', 'qwen3', 'gpt2'];
/** README.md, "Tolerances": a float32 engine against these values. */
const LOSS_REL_TOL = 1e-5;
const LOGITS_ABS_TOL = 5e-5;

interface GoldenBase {
  loss: number;
  tokens: number;
  per_example: { nll_sum: number; tokens: number }[];
}

function examples(file: string): Example[] {
  return readFileSync(`${ROOT}/${file}`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const ids: number[] = JSON.parse(line).input_ids;
      return { inputIds: ids, labels: ids };
    });
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('hf-golden: the forward pass of every family against transformers', () => {
  for (const m of MODELS) {
    it(`${m}: losses, per-example sums and the first example's logits; LoRA starts there and trains`, async () => {
      const gpu = await testGpu();
      const model = await loadModelDir(await nodeDir(`${ROOT}/models/${m}`));
      const weights = await ModelWeights.upload(gpu, model.spec, model.source);
      const V = model.spec.vocabSize;
      const files = ['data/random.jsonl', `data/${m}.jsonl`];
      const data = files.map(examples);
      const seq = Math.max(...data.flat().map((e) => e.inputIds.length));
      // One batch per file, one example per row (12 rows), padded: every row is an example alone.
      const batches = data.map((ex) => {
        const b = padBatches(ex, { batch: ex.length, seq, padId: 0 });
        expect(b.length).toBe(1);
        return b[0];
      });
      const rows = batches[0].batch;
      // Every row's logits kept (the default chunking keeps them all at this size; asked for explicitly).
      const graph = new TransformerGraph(gpu, weights, {
        batch: rows,
        seq,
        train: 'none',
        logitsChunkRows: rows * seq,
      });
      const errors: string[] = [];
      for (const [i, f] of files.entries()) {
        const want: GoldenBase = golden.models[m].base[f];
        const batch = batches[i];
        // The loss as the studio and CLI compute it (GPU sum over the batch).
        const r = await evaluate(gpu, graph, [batch]);
        expect(r.tokens, `${f} tokens`).toBe(want.tokens);
        if (!(rel(r.loss, want.loss) <= LOSS_REL_TOL))
          errors.push(
            `${f}: loss ${r.loss}, transformers ${want.loss} (relative ${rel(r.loss, want.loss).toExponential(2)})`,
          );
        // Per example: the per-token losses of each row, summed in float64.
        const losses = await gpu.read(graph.losses);
        expect(want.per_example.length).toBe(data[i].length);
        want.per_example.forEach((e, row) => {
          let sum = 0;
          let tokens = 0;
          for (let t = 0; t < seq; t++) {
            if (batch.targets[row * seq + t] < 0) continue;
            sum += losses[row * seq + t];
            tokens++;
          }
          expect(tokens, `${f} example ${row} tokens`).toBe(e.tokens);
          if (!(rel(sum, e.nll_sum) <= LOSS_REL_TOL))
            errors.push(
              `${f} example ${row}: nll sum ${sum}, transformers ${e.nll_sum} (relative ${rel(sum, e.nll_sum).toExponential(2)})`,
            );
        });
        if (f !== 'data/random.jsonl') continue;
        // The first example's logits at positions 0..2 (row 0 of this batch), against transformers' float32 logits.
        const lf = golden.models[m].logits_first_example;
        expect(lf.data).toBe(f);
        expect(lf.example_index).toBe(0);
        expect(lf.input_ids).toEqual(data[i][0].inputIds);
        expect(lf.shape).toEqual([3, V]);
        const logits = await gpu.read(graph.logits, 0, 3 * V);
        expectClose(logits, (lf.logits as number[][]).flat(), `${m} logits of example 0, positions 0..2`, {
          atol: LOGITS_ABS_TOL,
          rtol: 0,
        });
      }
      expect(errors, errors.join('\n')).toEqual([]);

      // A LoRA training graph (B = 0) starts as the base model: its step-0 loss, from the fused training pass, is
      // transformers' loss too; then it trains.
      const train = batches[1];
      const want: GoldenBase = golden.models[m].base[files[1]];
      const layers = createLoraLayers(
        gpu,
        model.spec,
        { rank: 4, alpha: 8, targets: defaultTargets(model.spec), rslora: false, lrRatioB: 1 },
        0,
      );
      const trainGraph = new TransformerGraph(gpu, weights, {
        batch: rows,
        seq,
        train: 'adapters',
        adapters: new Map(layers),
      });
      const trainer = new Trainer(gpu, trainGraph, { ...DEFAULT_OPTIMIZER, lr: 2e-2, totalSteps: 6 });
      const losses: number[] = [];
      for (let i = 0; i < 6; i++) losses.push((await (await trainer.submit(train))()).loss);
      expect(rel(losses[0], want.loss), `step-0 loss ${losses[0]} vs transformers ${want.loss}`).toBeLessThanOrEqual(
        LOSS_REL_TOL,
      );
      expect(losses[5]).toBeLessThan(losses[0] - 0.05);
      gpu.checkErrors(m);
    });
  }
});

// Two checkpoints from the Hub (random weights at std 0.02, no recorded outputs): they load through the same path,
// a LoRA graph starts exactly at the evaluation graph's loss, and training lowers it. Their forward pass is checked
// against transformers above, on the same families.
for (const dir of ['tiny-random-LlamaForCausalLM_hf', 'tiny-gpt2-vocab100_hf']) {
  describe(dir, () => {
    it('loads, evaluates, and LoRA training starts at the base loss and lowers it on a batch', async () => {
      const gpu = await testGpu();
      const model = await loadModelDir(await nodeDir(`test/fixtures/models/${dir}`));
      const weights = await ModelWeights.upload(gpu, model.spec, model.source);
      const spec = model.spec;
      const batch = randomBatch(spec, 2, 8, 5);
      const evalGraph = new TransformerGraph(gpu, weights, { batch: 2, seq: 8, train: 'none' });
      const base = await evaluate(gpu, evalGraph, [batch]);
      expect(base.tokens).toBe(batch.supervised);
      expect(Number.isFinite(base.loss)).toBe(true);

      const layers = createLoraLayers(
        gpu,
        spec,
        { rank: 4, alpha: 8, targets: defaultTargets(spec), rslora: false, lrRatioB: 1 },
        0,
      );
      const graph = new TransformerGraph(gpu, weights, {
        batch: 2,
        seq: 8,
        train: 'adapters',
        adapters: new Map(layers),
      });
      const trainer = new Trainer(gpu, graph, { ...DEFAULT_OPTIMIZER, lr: 5e-2, totalSteps: 8 });
      const losses: number[] = [];
      for (let i = 0; i < 8; i++) losses.push((await (await trainer.submit(batch))()).loss);
      expect(losses[0]).toBeCloseTo(base.loss, 4); // LoRA starts as the base model (B = 0)
      expect(losses[7]).toBeLessThan(losses[0] - 0.05);
      gpu.checkErrors(dir);
    });
  });
}

/**
 * A LoRA run on stories260K over the tinyshakespeare fixture lowers held-out loss; the step loop creates no
 * GPU buffers after step 0 and submits at most 10 times per step; the exported PEFT adapter, imported
 * again, evaluates exactly like the in-memory adapted model.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { loadDataset, padBatches } from '../../src/data/index';
import { exportAdapter, loadPeftAdapter, peftFiles } from '../../src/engine/export';
import { loadModelDir } from '../../src/engine/load-model';
import { trainRun } from '../../src/engine/train-run';
import { openSafetensors } from '../../src/model/formats/safetensors';
import { bytesSource } from '../../src/model/formats/source';
import { nodeDir } from '../../src/model/formats/node-source';
import { TransformerGraph } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { evaluate } from '../../src/train/evaluate';
import { testGpu } from '../helpers/gpu';

describe('LoRA on stories260K over tinyshakespeare', () => {
  it('lowers held-out loss, allocates nothing after step 0, and round-trips through PEFT export', async () => {
    const gpu = await testGpu();
    const model = await loadModelDir(await nodeDir('public/demo/model'));
    const weights = await ModelWeights.upload(gpu, model.spec, model.source);
    const text = await readFile('test/fixtures/datasets/tinyshakespeare/input.txt', 'utf8');
    // The first ~300 speeches keep the run short on a software GPU.
    const slice = text
      .split(/\n\s*\n/)
      .slice(0, 300)
      .join('\n\n');
    const ds = await loadDataset({ name: 'shakespeare.txt', bytes: new TextEncoder().encode(slice) }, model.tokenizer, {
      seqLen: 32,
    });
    const result = await trainRun(gpu, weights, model.tokenizer, ds.examples, {
      method: 'lora',
      rank: 4,
      alpha: 8,
      targets: ['all-linear'],
      seed: 1,
      steps: 30,
      batch: 4,
      seq: 32,
      lr: 1e-2,
      warmupSteps: 2,
      weightDecay: 0,
      maxGradNorm: 1,
      minLrRatio: 0.1,
      validationFraction: 0.1,
      evalEvery: 0,
      packing: true,
      maxValidationBatches: 4,
    });
    expect(result.stopReason).toBe('done');
    expect(result.initialEval).not.toBeNull();
    expect(result.finalEval!.loss).toBeLessThan(result.initialEval!.loss - 0.05);
    expect(result.buffersCreatedAfterStep0).toBe(0);
    expect(result.submitsPerStep).toBeLessThanOrEqual(10);

    // Export, import, and evaluate both on the same held-out batch.
    const files = peftFiles(await exportAdapter(gpu, model.spec, result.state, { baseModel: 'stories260K' }));
    const config = JSON.parse(files['adapter_config.json'] as string);
    expect(config.peft_type).toBe('LORA');
    const store = await openSafetensors(
      bytesSource('adapter_model.safetensors', files['adapter_model.safetensors'] as Uint8Array),
    );
    const imported = (await loadPeftAdapter(gpu, model.spec, config, store, 'export')).adapters;
    const batches = padBatches(ds.examples.slice(0, 8), { batch: 4, seq: 32, padId: 0 });
    const inMemory = await evaluate(
      gpu,
      new TransformerGraph(gpu, weights, { batch: 4, seq: 32, train: 'none', adapters: result.state.adapters }),
      batches,
    );
    const roundTrip = await evaluate(
      gpu,
      new TransformerGraph(gpu, weights, { batch: 4, seq: 32, train: 'none', adapters: imported }),
      batches,
    );
    expect(roundTrip.tokens).toBe(inMemory.tokens);
    expect(Math.abs(roundTrip.loss - inMemory.loss)).toBeLessThan(1e-5);
    gpu.checkErrors('lora run');
  });
});

/**
 * A LoRA run on stories260K over the tinyshakespeare fixture lowers held-out loss; the step loop creates no
 * GPU buffers after step 0 and submits at most 10 times per step; the exported PEFT adapter, imported
 * again, evaluates exactly like the in-memory adapted model.
 */
import { describe, expect, it } from 'vitest';
import { padBatches } from '../../src/data/index';
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
import { SHAKESPEARE_RUN, shakespeareExamples } from '../helpers/shakespeare';

describe('LoRA on stories260K over tinyshakespeare', () => {
  it('lowers held-out loss, allocates nothing after step 0, and round-trips through PEFT export', async () => {
    const gpu = await testGpu();
    const model = await loadModelDir(await nodeDir('public/demo/model'));
    const weights = await ModelWeights.upload(gpu, model.spec, model.source);
    const examples = await shakespeareExamples(model.tokenizer);
    const ds = { examples };
    const result = await trainRun(gpu, weights, model.tokenizer, examples, SHAKESPEARE_RUN);
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

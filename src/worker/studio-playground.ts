/**
 * The studio's playground: greedy generation from a prompt with the base model and trained runs, streamed token
 * by token, as an urgent GPU job.
 */
import { loadPeftAdapter } from '../engine/export';
import { openSafetensors } from '../model/formats/safetensors';
import { bytesSource } from '../model/formats/source';
import { Generator } from '../model/generate';
import type { GenerationResult, GenerationSource } from './protocol';
import type { ScopedGpu } from './scoped-gpu';
import { messageOf, type ModelState, type StudioState } from './studio-context';
import type { StudioDevice } from './studio-device';

export class StudioPlayground {
  constructor(
    private readonly studio: StudioState,
    private readonly device: StudioDevice,
  ) {}

  generate(requestId: string, prompt: string, runIds: string[], includeBase: boolean, maxNewTokens: number): void {
    const model = this.studio.model;
    const fail = (message: string) => {
      this.studio.post({ type: 'error', scope: 'generate', requestId, message });
      this.studio.post({ type: 'generationDone', requestId });
    };
    if (!model) return fail('Load a model to use the playground.');
    const sources: GenerationSource[] = [
      ...(includeBase ? ['base' as const] : []),
      ...runIds.map((runId) => ({ runId })),
    ];
    if (sources.length === 0) return fail('Pick the base model or at least one run.');
    if (model.loaded.noTokenizer !== null) {
      return fail(`${model.loaded.noTokenizer}: the playground encodes the prompt and decodes what the model writes.`);
    }
    this.studio.queue.push({
      urgent: true,
      execute: async () => {
        let gpu: ScopedGpu;
        try {
          gpu = await this.device.requireGpu();
          if (!model.weights) throw new Error(model.uploadError ?? 'The model weights are not on the GPU yet.');
        } catch (err) {
          return fail(messageOf(err));
        }
        const tok = model.loaded.tokenizer;
        const promptIds = tok.encode(prompt, { addSpecial: true });
        if (promptIds.length === 0 || (prompt === '' && tok.bosId !== null && promptIds[0] !== tok.bosId)) {
          if (tok.bosId === null) return fail('The prompt is empty and this tokenizer has no BOS token to start from.');
          promptIds.unshift(tok.bosId);
        }
        const room = model.card.maxPositions - promptIds.length;
        if (room <= 0)
          return fail(`The prompt is ${promptIds.length} tokens; this model reads at most ${model.card.maxPositions}.`);
        const head = tok.decode(promptIds, { skipSpecial: true });
        const textOf = (ids: number[]) => {
          // Decode with the prompt so word boundaries come out as in one piece, then cut the prompt off.
          const full = tok.decode([...promptIds, ...ids], { skipSpecial: true });
          return full.startsWith(head) ? full.slice(head.length) : tok.decode(ids, { skipSpecial: true });
        };
        for (const source of sources) {
          const t0 = performance.now();
          const send = (r: Omit<GenerationResult, 'source' | 'ms'>) =>
            this.studio.post({ type: 'generation', requestId, result: { source, ms: performance.now() - t0, ...r } });
          const scope = gpu.open('generate');
          try {
            const { weights, adapters } = await this.generationModel(source, model, gpu);
            const ids: number[] = [];
            send({ text: '', tokens: 0, done: false });
            await new Generator(gpu, weights, adapters).greedy(promptIds, {
              maxNewTokens: Math.min(maxNewTokens, room),
              stopId: tok.eosId,
              onToken: (tokenId) => {
                ids.push(tokenId);
                send({ text: textOf(ids), tokens: ids.length, done: false });
              },
            });
            gpu.checkErrors('Generation');
            send({ text: textOf(ids), tokens: ids.length, done: true });
          } catch (err) {
            send({ text: '', tokens: 0, done: true, error: this.device.failure(err, gpu) });
          } finally {
            await gpu.release(scope);
          }
        }
        this.studio.post({ type: 'generationDone', requestId });
      },
    });
  }

  private async generationModel(source: GenerationSource, model: ModelState, gpu: ScopedGpu) {
    const weights = model.weights!;
    if (source === 'base') return { weights, adapters: undefined };
    const run = this.studio.trained.get(source.runId);
    if (!run) throw new Error('This run has no trained weights (it failed, or was trained before weights were kept).');
    if (run.full) {
      if (run.full.modelEpoch !== model.epoch)
        throw new Error('This full fine-tune belongs to a model that is no longer loaded.');
      return { weights: run.full.weights, adapters: undefined };
    }
    if (!run.adapter)
      throw new Error(
        run.method === 'full'
          ? 'Full fine-tunes are kept on the GPU only until the page is reloaded or another model is loaded; train it again to generate.'
          : 'This run has no adapter weights.',
      );
    if (run.adapter.modelKey !== model.card.key) {
      throw new Error(`This adapter was trained on ${run.adapter.baseModel}; load that model to generate with it.`);
    }
    const store = await openSafetensors(bytesSource('adapter_model.safetensors', run.adapter.safetensors));
    const loaded = await loadPeftAdapter(
      gpu,
      model.loaded.spec,
      run.adapter.config,
      store,
      "the run's adapter",
      weights,
    );
    return { weights: await weights.withReplacements(gpu, loaded.baseWeights), adapters: loaded.adapters };
  }
}

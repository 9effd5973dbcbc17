/**
 * The studio's playground: generation from a prompt, or a chat turn rendered with the tokenizer's chat template,
 * with the base model and trained runs one after another, greedy or sampled on the GPU, streamed as text, as an
 * urgent GPU job. Every source answers its own conversation: the turns it took part in.
 */
import type { ChatMessage } from '../data/chat';
import { chatPrompt } from '../data/chat-prompt';
import { loadPeftAdapter } from '../engine/export';
import { openSafetensors } from '../model/formats/safetensors';
import { bytesSource } from '../model/formats/source';
import { Generator } from '../model/generate';
import { TextStream } from '../model/text-stream';
import type { TextTokenizer } from '../tokenizer/tokenizer';
import type { ChatRequest, Command, GenerationResult, GenerationSource } from './protocol';
import type { ScopedGpu } from './scoped-gpu';
import { messageOf, type ModelState, type StudioState } from './studio-context';
import type { StudioDevice } from './studio-device';

type GenerateCommand = Extract<Command, { type: 'generate' }>;

/** At most one streamed update per source this often (the last one always goes): the page repaints smoothly. */
const STREAM_INTERVAL_MS = 30;

/** What one source is asked: its prompt's tokens and what ends its answer. */
interface SourcePrompt {
  ids: number[];
  stopIds: number[];
  stopStrings: string[];
}

export class StudioPlayground {
  /** Requests whose Stop was pressed (until their generationDone). */
  private readonly stopping = new Set<string>();

  constructor(
    private readonly studio: StudioState,
    private readonly device: StudioDevice,
  ) {}

  stop(requestId: string): void {
    this.stopping.add(requestId);
  }

  generate(cmd: GenerateCommand): void {
    const { requestId } = cmd;
    const model = this.studio.model;
    const fail = (message: string) => {
      this.studio.post({ type: 'error', scope: 'generate', requestId, message });
      this.done(requestId);
    };
    if (!model) return fail('Load a model to use the playground.');
    const sources: GenerationSource[] = [
      ...(cmd.includeBase ? ['base' as const] : []),
      ...cmd.runIds.map((runId) => ({ runId })),
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
        for (const source of sources) {
          const t0 = performance.now();
          const send = (r: Omit<GenerationResult, 'source' | 'ms'>) =>
            this.studio.post({ type: 'generation', requestId, result: { source, ms: performance.now() - t0, ...r } });
          if (this.stopping.has(requestId)) {
            send({ text: '', tokens: 0, done: true, finish: 'stopped' });
            continue;
          }
          let prompt: SourcePrompt;
          try {
            prompt = cmd.chat
              ? chatPromptOf(cmd.chat, keyOf(source), cmd.prompt, tok)
              : { ids: completionPrompt(cmd.prompt, tok), stopIds: [], stopStrings: [] };
          } catch (err) {
            send({ text: '', tokens: 0, done: true, error: messageOf(err) });
            continue;
          }
          const room = model.card.maxPositions - prompt.ids.length;
          if (room <= 0) {
            send({
              text: '',
              tokens: 0,
              done: true,
              error: `The prompt is ${prompt.ids.length} tokens; this model reads at most ${model.card.maxPositions}.`,
            });
            continue;
          }
          const scope = gpu.open('generate');
          try {
            const { weights, adapters } = await this.generationModel(source, model, gpu);
            const stream = new TextStream(tok, prompt.ids, [...(cmd.stop ?? []), ...prompt.stopStrings]);
            const maxNewTokens = Math.min(cmd.maxNewTokens, room);
            let tokens = 0;
            let sentAt = 0;
            send({ text: '', tokens: 0, done: false });
            await new Generator(gpu, weights, adapters).generate(prompt.ids, {
              maxNewTokens,
              stopId: tok.eosId,
              stopIds: prompt.stopIds,
              sampling: cmd.sampling,
              onToken: (id) => {
                tokens++;
                stream.push(id);
                const now = performance.now();
                if (now - sentAt < STREAM_INTERVAL_MS) return;
                sentAt = now;
                send({ text: stream.visible, tokens, done: false });
              },
              shouldStop: () => stream.stop !== null || this.stopping.has(requestId),
            });
            gpu.checkErrors('Generation');
            const text = stream.finish();
            const finish: GenerationResult['finish'] =
              stream.stop !== null
                ? 'stop-string'
                : this.stopping.has(requestId)
                  ? 'stopped'
                  : tokens >= maxNewTokens
                    ? 'length'
                    : 'eos';
            send({ text, tokens, done: true, finish });
          } catch (err) {
            send({ text: '', tokens: 0, done: true, error: this.device.failure(err, gpu) });
          } finally {
            await gpu.release(scope);
          }
        }
        this.done(requestId);
      },
    });
  }

  private done(requestId: string): void {
    this.stopping.delete(requestId);
    this.studio.post({ type: 'generationDone', requestId });
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

const keyOf = (source: GenerationSource) => (source === 'base' ? 'base' : source.runId);

/** The prompt's tokens with BOS as the tokenizer adds it; an empty prompt starts from BOS. */
function completionPrompt(prompt: string, tok: TextTokenizer): number[] {
  const ids = tok.encode(prompt, { addSpecial: true });
  if (ids.length === 0 || (prompt === '' && tok.bosId !== null && ids[0] !== tok.bosId)) {
    if (tok.bosId === null) throw new Error('The prompt is empty and this tokenizer has no BOS token to start from.');
    ids.unshift(tok.bosId);
  }
  return ids;
}

/**
 * The conversation one source answers: the system prompt, the turns it answered (a turn it skipped, or failed,
 * is left out so roles keep alternating), and the new message.
 */
export function chatMessagesFor(chat: ChatRequest, source: string, message: string): ChatMessage[] {
  const messages: ChatMessage[] = chat.system.trim() ? [{ role: 'system', content: chat.system }] : [];
  for (const turn of chat.turns) {
    const reply = turn.replies[source];
    if (reply === undefined) continue;
    messages.push({ role: 'user', content: turn.user }, { role: 'assistant', content: reply });
  }
  messages.push({ role: 'user', content: message });
  return messages;
}

function chatPromptOf(chat: ChatRequest, source: string, message: string, tok: TextTokenizer): SourcePrompt {
  const p = chatPrompt(chatMessagesFor(chat, source, message), tok);
  if (p.ids.length === 0) throw new Error('The chat template rendered an empty prompt.');
  return p;
}

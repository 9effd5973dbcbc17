/**
 * A model with a PEFT adapter folded in, or without one (the base model converted: any model the app loads,
 * bitsandbytes checkpoints dequantized, a llama2.c checkpoint as its Hugging Face form), as a MergedModel. Every
 * weight is read back whole from the GPU (dequantized, vocabulary shards concatenated), each adapted one is changed
 * in float64 as PEFT's merge_and_unload changes it, and every value is rounded once to the precision it is written
 * in. Full fine-tuning's export is this with no adapter: one merged writer.
 */
import type { AdapterTensorReader } from '../adapters/lora/peft';
import type { Gpu } from '../gpu/gpu';
import type { NamedTensor } from '../model/formats/safetensors';
import type { ModelWeights } from '../model/weights';
import { type LinearFold, readAdapterMerge } from './adapter-merge';
import { mergedConfigJson } from './merged-config';
import type { MergedDtype, MergedModel } from './merged-model';
import { roundedTensor } from './precision';

export interface MergeOptions {
  /** The model's config.json text (its quantization_config is dropped, torch_dtype set to `dtype`). */
  configJson: string;
  /** Tokenizer and generation files by name, carried over as they are (src/export/model-files.ts). */
  files: Record<string, string>;
  /** A PEFT folder (src/engine/export.ts openPeftFolder) to fold in. */
  adapter?: { config: Record<string, unknown>; store: AdapterTensorReader; where: string };
  /**
   * The precision the values are rounded to, once, from float64 (default f32); write the model in this precision
   * (mergedFolderFiles) so that nothing is rounded twice. A GGUF export merges in f32 and its writer converts.
   */
  dtype?: MergedDtype;
  /** Progress lines: the adapter's summary, then each tensor. */
  log?: (line: string) => void;
}

export async function mergeModel(gpu: Gpu, weights: ModelWeights, opts: MergeOptions): Promise<MergedModel> {
  const dtype = opts.dtype ?? 'f32';
  const files = { ...opts.files };
  if (!opts.adapter) {
    const tensors = await mergedTensors(gpu, weights, { dtype, log: opts.log });
    return { configJson: mergedConfigJson(opts.configJson, 'config.json', { dtype }), tensors, files };
  }
  const { config, store, where } = opts.adapter;
  // The replaced base tensors are new GPU tensors: freed once everything has been read back.
  const mark = gpu.mark();
  try {
    const adapter = await readAdapterMerge(gpu, weights, config, store, where);
    opts.log?.(`adapter: ${adapter.summary}`);
    const changed = await weights.withReplacements(gpu, adapter.baseWeights);
    const tensors = await mergedTensors(gpu, changed, { dtype, folds: adapter.folds, log: opts.log });
    const untied = adapter.baseWeights.untie;
    return { configJson: mergedConfigJson(opts.configJson, 'config.json', { dtype, untied }), tensors, files };
  } finally {
    await gpu.freeSince(mark);
  }
}

/**
 * Every tensor of `weights` under its Hugging Face checkpoint name (GPT-2's with the `transformer.` prefix of
 * GPT2LMHeadModel, lm_head at the top), each linear weight in `folds` changed, rounded once to `dtype`.
 */
export async function mergedTensors(
  gpu: Gpu,
  weights: ModelWeights,
  opts: { dtype?: MergedDtype; folds?: ReadonlyMap<string, LinearFold>; log?: (line: string) => void } = {},
): Promise<NamedTensor[]> {
  const dtype = opts.dtype ?? 'f32';
  const folds = opts.folds ?? new Map<string, LinearFold>();
  const missing = [...folds.keys()].find((name) => !weights.has(name));
  if (missing) throw new Error(`The adapter changes ${missing}, which this model does not have`);
  const names = weights.names();
  const tensors: NamedTensor[] = [];
  for (const [i, name] of names.entries()) {
    // A tensor in vocabulary shards is read back whole: its shards' rows concatenated.
    const shards = weights.vocabShards(name);
    const shape = [shards.reduce((n, s) => n + s.rows, 0), ...shards[0].tensor.shape.slice(1)];
    const stored = await weights.read(gpu, name);
    const fold = folds.get(name);
    const hfName = checkpointName(weights, name);
    tensors.push({ name: hfName, shape, data: roundedTensor(fold ? folded(stored, fold) : stored, dtype, hfName) });
    opts.log?.(`${i + 1}/${names.length} ${hfName}${fold ? ' (adapter merged)' : ''}`);
  }
  return tensors;
}

/** The name Hugging Face's checkpoint gives a canonical tensor name. */
function checkpointName(weights: ModelWeights, name: string): string {
  return weights.spec.family === 'gpt2' && !name.startsWith('lm_head.') ? `transformer.${name}` : name;
}

/** The stored weight with its fold applied in float64, in the stored layout (Conv1D [in, out] transposed around it). */
function folded(stored: Float32Array, { info, fold }: LinearFold): Float64Array {
  const { in: inDim, out } = info;
  const w = new Float64Array(stored.length);
  if (!info.conv1d) {
    w.set(stored);
    fold(w);
    return w;
  }
  for (let i = 0; i < inDim; i++) for (let o = 0; o < out; o++) w[o * inDim + i] = stored[i * out + o];
  fold(w);
  const back = new Float64Array(w.length);
  for (let i = 0; i < inDim; i++) for (let o = 0; o < out; o++) back[i * out + o] = w[o * inDim + i];
  return back;
}

export { mergedFolderFiles } from './merged-folder';

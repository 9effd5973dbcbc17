/** What every GPU command of the CLI starts with: the model read, the GPU opened and tuned, the weights uploaded. */
import { loadModelDir, requireTokenizer, type LoadedModel } from '../engine/load-model';
import { Gpu } from '../gpu/gpu';
import { nodeDevice } from '../gpu/node-device';
import { describeTune, tuneMatmul } from '../kernels/matmul-tune';
import { ModelWeights, WEIGHT_STORAGES, type WeightStorage } from '../model/weights';
import type { OptionSpec } from './args';
import { openModelPath } from './node-files';
import { log } from './output';
import { nodeTuneCache } from './tune-cache';

/** `needsTokenizer`: why the command must encode or decode text (checked before the GPU is opened). */
export async function setup(
  modelPath: string,
  storage: WeightStorage,
  needsTokenizer?: string,
): Promise<{ gpu: Gpu; model: LoadedModel; weights: ModelWeights }> {
  const model = await loadModelDir(await openModelPath(modelPath));
  if (needsTokenizer) requireTokenizer(model, needsTokenizer);
  for (const w of model.warnings) log(`warning: ${w}`);
  const handle = await nodeDevice();
  const gpu = new Gpu(handle);
  const a = handle.adapter;
  log(
    `GPU: ${a.description || a.architecture || a.vendor || 'WebGPU adapter'}${a.software ? ' (software renderer: slow)' : ''}, WebGPU: ${a.implementation}`,
  );
  log(describeTune(await tuneMatmul(gpu, { cache: nodeTuneCache() })));
  const weights = await ModelWeights.upload(gpu, model.spec, model.source, { storage });
  log(
    `model: ${model.spec.modelType}, ${model.spec.layers} layers, hidden ${model.spec.hidden}, vocab ${model.spec.vocabSize}, ` +
      `${weights.parameterCount().toLocaleString('en')} parameters, weights ${weights.storageSummary()}`,
  );
  return { gpu, model, weights };
}

export const WEIGHTS_OPTION: OptionSpec = {
  kind: 'string',
  default: 'auto',
  help: `GPU storage of the frozen base matrices: ${WEIGHT_STORAGES.join(' | ')} (auto: as the checkpoint stores them, a bnb-4bit checkpoint's codes included; f32 for --method full; nf4 / int8: QLoRA, the blocks' linear weights quantized on the GPU exactly as bitsandbytes does, NF4 with double quantization or int8 rows)`,
};

export function weightStorage(o: Record<string, unknown>): WeightStorage {
  const w = o.weights as WeightStorage;
  if (!WEIGHT_STORAGES.includes(w))
    throw new Error(`--weights must be one of ${WEIGHT_STORAGES.join(', ')} (got "${w}")`);
  return w;
}

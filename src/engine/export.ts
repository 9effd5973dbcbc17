/** Turns a trained run into files: a PEFT LoRA folder, or a merged model folder for full fine-tuning. */
import { exportPeftLora, peftConfigJson, type LoraModuleWeights } from '../adapters/lora/peft';
import type { LoraLayer } from '../adapters/lora/layer';
import type { Gpu } from '../gpu/gpu';
import { writeSafetensors } from '../model/formats/safetensors';
import type { ModelWeights } from '../model/weights';

export type OutputFiles = Record<string, string | Uint8Array>;

export async function readLoraModules(gpu: Gpu, layers: Map<string, LoraLayer>): Promise<LoraModuleWeights[]> {
  const out: LoraModuleWeights[] = [];
  for (const l of layers.values()) {
    out.push({ path: l.info.path, rank: l.rank, scale: l.scale, A: await gpu.read(l.A), B: await gpu.read(l.B), in: l.info.in, out: l.info.out });
  }
  return out;
}

export async function loraAdapterFiles(
  gpu: Gpu, weights: ModelWeights, layers: Map<string, LoraLayer>, opts: { alpha: number; rslora: boolean; baseModel: string },
): Promise<OutputFiles> {
  const modules = await readLoraModules(gpu, layers);
  const { config, tensors } = exportPeftLora(weights.spec, modules, opts);
  return { 'adapter_config.json': peftConfigJson(config), 'adapter_model.safetensors': writeSafetensors(tensors) };
}

/**
 * Full fine-tuning: the whole model with its trained weights, under the names Hugging Face saves
 * (GPT-2 with the `transformer.` prefix of GPT2LMHeadModel). The caller copies config and tokenizer files.
 */
export async function mergedModelFiles(gpu: Gpu, weights: ModelWeights): Promise<OutputFiles> {
  const gpt2 = weights.spec.family === 'gpt2';
  const tensors = [];
  for (const name of weights.names()) {
    const t = weights.get(name);
    tensors.push({ name: gpt2 ? `transformer.${name}` : name, shape: [...t.shape], data: await gpu.read(t) });
  }
  return { 'model.safetensors': writeSafetensors(tensors) };
}

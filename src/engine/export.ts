/**
 * Turns a trained run into files, and adapter folders back into adapters:
 *  - dense methods (LoRA, rsLoRA, GoRA, GeLoRA): a PEFT LoRA folder (per-module ranks and scales survive
 *    through rank_pattern/alpha_pattern with the scale folded into B, METHODS.md §5.1);
 *  - GraLoRA: PEFT's GRALORA format when one global r, k, hybrid_r and alpha describe it, otherwise (or on
 *    request) the exactly equivalent plain LoRA of rank k·r + h;
 *  - full fine-tuning: a merged model folder.
 */
import { graloraFormatProblem, exportGraloraAsLora, exportPeftGralora, importPeftGralora } from '../adapters/gralora/peft';
import { graloraLayersFromWeights, readGraloraModules } from '../adapters/gralora/model';
import { exportPeftLora, importPeftLora, peftConfigJson, type AdapterTensorReader, type LoraModuleWeights, type PeftExport } from '../adapters/lora/peft';
import { LoraLayer } from '../adapters/lora/layer';
import type { LinearAdapter } from '../adapters/types';
import type { Gpu } from '../gpu/gpu';
import type { ModelSpec } from '../model/config';
import { writeSafetensors } from '../model/formats/safetensors';
import { allLinears } from '../model/layout';
import type { ModelWeights } from '../model/weights';
import type { MethodState } from './methods';

export type OutputFiles = Record<string, string | Uint8Array>;

export async function readLoraModules(gpu: Gpu, layers: Map<string, LoraLayer>): Promise<LoraModuleWeights[]> {
  const list = [...layers.values()];
  const data = await gpu.readMany(list.flatMap((l) => [l.A, l.B]));
  return list.map((l, i) => ({ path: l.info.path, rank: l.rank, scale: l.scale, A: data[2 * i], B: data[2 * i + 1], in: l.info.in, out: l.info.out }));
}

export interface AdapterExport extends PeftExport {
  /** 'lora' or 'gralora': the PEFT format written. */
  format: 'lora' | 'gralora';
  /** Why a GraLoRA run was written as LoRA (null when it was not). */
  note: string | null;
  /** With `withLoraCopy`, a GraLoRA export's exactly equivalent plain LoRA too (from the same readback). */
  loraCopy?: PeftExport;
}

/** The PEFT folder of an adapter run (not full fine-tuning). */
export async function exportAdapter(
  gpu: Gpu, spec: ModelSpec, state: MethodState, opts: { baseModel: string; asLora?: boolean; withLoraCopy?: boolean },
): Promise<AdapterExport> {
  if (state.method === 'full') throw new Error('Full fine-tuning has no adapter: export the merged model.');
  if (state.gralora.size > 0) {
    const modules = await readGraloraModules(gpu, state.gralora);
    const problem = graloraFormatProblem(modules, state.alpha);
    if (opts.asLora || problem) {
      return { ...exportGraloraAsLora(spec, modules, { baseModel: opts.baseModel }), format: 'lora', note: opts.asLora ? 'requested' : problem };
    }
    return {
      ...exportPeftGralora(spec, modules, { alpha: state.alpha, baseModel: opts.baseModel }), format: 'gralora', note: null,
      ...(opts.withLoraCopy ? { loraCopy: exportGraloraAsLora(spec, modules, { baseModel: opts.baseModel }) } : {}),
    };
  }
  const modules = await readLoraModules(gpu, state.dense);
  return { ...exportPeftLora(spec, modules, { alpha: state.alpha, rslora: state.rslora, baseModel: opts.baseModel }), format: 'lora', note: null };
}

export function peftFiles(e: PeftExport): OutputFiles {
  return { 'adapter_config.json': peftConfigJson(e.config), 'adapter_model.safetensors': writeSafetensors(e.tensors) };
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

export interface LoadedAdapter {
  adapters: Map<string, LinearAdapter>;
  format: 'lora' | 'gralora';
  /** One line for logs: modules and ranks. */
  summary: string;
}

/** A PEFT LoRA or GraLoRA folder (as written by Python PEFT or by this app) as adapters on the GPU. */
export async function loadPeftAdapter(gpu: Gpu, spec: ModelSpec, config: Record<string, unknown>, store: AdapterTensorReader, where: string): Promise<LoadedAdapter> {
  const type = String(config.peft_type ?? '');
  if (type === 'GRALORA') {
    const modules = await importPeftGralora(spec, config, store, where);
    const ks = [...new Set(modules.map((m) => m.k))].join('/');
    return {
      adapters: new Map(graloraLayersFromWeights(gpu, spec, modules)), format: 'gralora',
      summary: `${modules.length} GraLoRA modules, r ${[...new Set(modules.map((m) => m.rank))].join('/')}, k ${ks}, hybrid_r ${modules[0]?.hybridRank ?? 0}`,
    };
  }
  if (type !== 'LORA') throw new Error(`${where}/adapter_config.json: peft_type "${type}" is not supported; LORA and GRALORA adapters are.`);
  const modules = await importPeftLora(spec, config, store, where);
  return { adapters: loraFromWeights(gpu, spec, modules), format: 'lora', summary: `${modules.length} LoRA modules, ranks ${[...new Set(modules.map((m) => m.rank))].join('/')}` };
}

/** Adapters from LoRA weights (imported or restored). */
export function loraFromWeights(gpu: Gpu, spec: ModelSpec, modules: LoraModuleWeights[]): Map<string, LinearAdapter> {
  const infos = new Map(allLinears(spec).map((i) => [i.path, i]));
  const out = new Map<string, LinearAdapter>();
  for (const m of modules) {
    const info = infos.get(m.path);
    if (!info) throw new Error(`LoRA module ${m.path} does not exist in this ${spec.modelType} model`);
    out.set(m.path, new LoraLayer(gpu, info, m.rank, m.scale, { A: m.A, B: m.B }));
  }
  return out;
}

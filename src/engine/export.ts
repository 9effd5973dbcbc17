/**
 * Turns a trained run into files, and adapter folders back into adapters:
 *  - dense methods (LoRA, rsLoRA, GoRA, GeLoRA): a PEFT LoRA folder (per-module ranks and scales survive
 *    through rank_pattern/alpha_pattern with the scale folded into B, docs/METHODS.md, LoRA and rsLoRA: Export);
 *  - GraLoRA: PEFT's GRALORA format when one global r, k, hybrid_r and alpha describe it, otherwise (or on
 *    request) the exactly equivalent plain LoRA of rank k·r + h;
 *  - methods that build themselves (DoRA, PiSSA, LoRA-GA, AdaLoRA): their own export (MethodState.layers 'own');
 *  - full fine-tuning: a merged model folder;
 * and PEFT LoRA (with DoRA, and PiSSA's default save), GraLoRA and AdaLoRA folders back into adapters plus the
 * base tensors they replace (modules_to_save, saved biases, trainable token rows), every tensor used or refused by
 * name.
 */
import type { AdapterFormat } from '../adapters/options';
import {
  graloraFormatProblem,
  exportGraloraAsLora,
  exportPeftGralora,
  importPeftGralora,
  isGraloraTensor,
} from '../adapters/gralora/peft';
import { graloraLayersFromWeights, readGraloraModules } from '../adapters/gralora/model';
import {
  exportPeftLora,
  importPeftLora,
  isLoraTensor,
  peftConfigJson,
  type AdapterTensorReader,
  type PeftExport,
} from '../adapters/lora/peft';
import { loraLayersFromWeights, readLoraModules } from '../adapters/lora/model';
import { adaloraLayersFromWeights } from '../adapters/adalora/model';
import { importPeftAdalora, isAdaloraTensor } from '../adapters/adalora/peft';
import { doraLayersFromWeights } from '../adapters/dora/model';
import { importPeftDora } from '../adapters/dora/peft';
import { importDefaultSavedPissa, isDefaultSavedPissa } from '../adapters/pissa/peft';
import type { LinearAdapter } from '../model/adapter';
import type { Gpu } from '../gpu/gpu';
import type { ModelSpec } from '../model/config';
import { openCheckpoint, writeSafetensors } from '../model/formats/safetensors';
import type { DirSource } from '../model/formats/source';
import { mergedTensors } from '../export/merge';
import type { BaseWeightChanges, ModelWeights } from '../model/weights';
import type { MethodState } from './methods';
import { describeBaseWeightChanges, readBaseWeightChanges } from './peft-base-weights';

export type OutputFiles = Record<string, string | Uint8Array>;

export interface AdapterExport extends PeftExport {
  /** The PEFT format written. */
  format: AdapterFormat;
  /** Why a GraLoRA run was written as LoRA (null when it was not). */
  note: string | null;
  /** With `withLoraCopy`, a GraLoRA export's exactly equivalent plain LoRA too (from the same readback). */
  loraCopy?: PeftExport;
}

/** The PEFT folder of an adapter run (not full fine-tuning). */
export async function exportAdapter(
  gpu: Gpu,
  spec: ModelSpec,
  state: MethodState,
  opts: { baseModel: string; asLora?: boolean; withLoraCopy?: boolean; raw?: boolean },
): Promise<AdapterExport> {
  if (state.method === 'full') throw new Error('Full fine-tuning has no adapter: export the merged model.');
  if (state.layers.structure === 'full') throw new Error('Full fine-tuning has no adapter: export the merged model.');
  if (state.layers.structure === 'own')
    return state.layers.export(gpu, spec, { baseModel: opts.baseModel, raw: opts.raw });
  if (state.layers.structure === 'gralora') {
    const modules = await readGraloraModules(gpu, state.layers.layers);
    const problem = graloraFormatProblem(modules, state.alpha);
    if (opts.asLora || problem) {
      return {
        ...exportGraloraAsLora(spec, modules, { baseModel: opts.baseModel }),
        format: 'lora',
        note: opts.asLora ? 'requested' : problem,
      };
    }
    return {
      ...exportPeftGralora(spec, modules, { alpha: state.alpha, baseModel: opts.baseModel }),
      format: 'gralora',
      note: null,
      ...(opts.withLoraCopy ? { loraCopy: exportGraloraAsLora(spec, modules, { baseModel: opts.baseModel }) } : {}),
    };
  }
  const modules = await readLoraModules(gpu, state.layers.layers);
  return {
    ...exportPeftLora(spec, modules, { alpha: state.alpha, rslora: state.rslora, baseModel: opts.baseModel }),
    format: 'lora',
    note: null,
  };
}

export function peftFiles(e: PeftExport): OutputFiles {
  return { 'adapter_config.json': peftConfigJson(e.config), 'adapter_model.safetensors': writeSafetensors(e.tensors) };
}

/**
 * Full fine-tuning: the whole model with its trained weights in f32, under the names Hugging Face saves (the merged
 * writer's, src/export/merge.ts). The caller copies config and tokenizer files.
 */
export async function mergedModelFiles(gpu: Gpu, weights: ModelWeights): Promise<OutputFiles> {
  return { 'model.safetensors': writeSafetensors(await mergedTensors(gpu, weights)) };
}

export { mergedConfigJson } from '../export/merged-config';

export interface LoadedAdapter {
  adapters: Map<string, LinearAdapter>;
  format: AdapterFormat;
  /** Base tensors the folder replaces (modules_to_save, saved biases, trainable token rows): ModelWeights.withReplacements. */
  baseWeights: BaseWeightChanges;
  /** One line for logs: modules and ranks, and what the folder replaces. */
  summary: string;
}

/**
 * A PEFT LoRA or GraLoRA folder (as written by Python PEFT or by this app) as adapters on the GPU, and the base
 * tensors it replaces. Every tensor of the file is used or refused by name; a config field that changes the
 * computation is honoured or refused by name.
 */
export async function loadPeftAdapter(
  gpu: Gpu,
  spec: ModelSpec,
  config: Record<string, unknown>,
  store: AdapterTensorReader,
  where: string,
  /** The base weights: a default-saved PiSSA folder's residual is rebuilt from them, as PEFT does at load. */
  weights?: ModelWeights,
): Promise<LoadedAdapter> {
  const type = String(config.peft_type ?? '');
  // The folder's tensors that are not the method's own (whole modules, biases, token rows) replace base tensors.
  const loaded = async (
    adapters: Map<string, LinearAdapter>,
    format: AdapterFormat,
    ownTensor: (name: string) => boolean,
    summary: string,
    wrapped: Iterable<string> = adapters.keys(),
  ): Promise<LoadedAdapter> => {
    const baseWeights = await readBaseWeightChanges(spec, config, store, ownTensor, new Set(wrapped), where);
    return { adapters, format, baseWeights, summary: `${summary}${describeBaseWeightChanges(baseWeights)}` };
  };
  const ranksOf = (modules: { rank: number }[]) => [...new Set(modules.map((m) => m.rank))].join('/');
  if (type === 'ADALORA') {
    const a = await importPeftAdalora(spec, config, store, where, { baseWeightsApplied: true });
    return loaded(
      new Map(adaloraLayersFromWeights(gpu, spec, a.modules, a.scale)),
      'adalora',
      isAdaloraTensor,
      `${a.modules.length} AdaLoRA modules, kept ranks ${ranksOf(a.modules)} of init_r ${a.initR}`,
      // PEFT wraps a module pruned to rank 0 too (it has no layer here).
      a.modules.map((m) => m.path),
    );
  }
  if (type !== 'LORA' && type !== 'GRALORA')
    throw new Error(
      `${where}/adapter_config.json: peft_type "${type}" is not supported; LORA, GRALORA and ADALORA adapters are.`,
    );
  if (type === 'GRALORA') {
    const modules = await importPeftGralora(spec, config, store, where, { baseWeightsApplied: true });
    const ks = [...new Set(modules.map((m) => m.k))].join('/');
    return loaded(
      new Map(graloraLayersFromWeights(gpu, spec, modules)),
      'gralora',
      isGraloraTensor,
      `${modules.length} GraLoRA modules, r ${ranksOf(modules)}, k ${ks}, hybrid_r ${modules[0]?.hybridRank ?? 0}`,
    );
  }
  if (isDefaultSavedPissa(config)) {
    if (!weights)
      throw new Error(
        `${where}/adapter_config.json: init_lora_weights is "${config.init_lora_weights}": a default-saved PiSSA adapter needs the base weights to rebuild its residual.`,
      );
    const pissa = await importDefaultSavedPissa(gpu, weights, config, store, where);
    return loaded(new Map(pissa.layers), 'lora', isLoraTensor, pissa.summary);
  }
  if (config.use_dora === true) {
    const modules = await importPeftDora(spec, config, store, where, { baseWeightsApplied: true });
    return loaded(
      new Map(doraLayersFromWeights(gpu, spec, modules)),
      'lora',
      isLoraTensor,
      `${modules.length} DoRA modules, ranks ${ranksOf(modules)}`,
    );
  }
  const modules = await importPeftLora(spec, config, store, where, { baseWeightsApplied: true });
  return loaded(
    new Map(loraLayersFromWeights(gpu, spec, modules)),
    'lora',
    isLoraTensor,
    `${modules.length} LoRA modules, ranks ${ranksOf(modules)}`,
  );
}

export interface LoadedPeftFolder extends LoadedAdapter {
  /** The base weights with the folder's replacements (the base object itself when there are none). */
  weights: ModelWeights;
}

/** A PEFT folder (adapter_config.json + adapter_model.safetensors) on loaded base weights: what eval and generate run. */
export async function loadPeftFolder(
  gpu: Gpu,
  weights: ModelWeights,
  folder: DirSource,
  where = folder.name,
): Promise<LoadedPeftFolder> {
  const { config, store } = await openPeftFolder(folder, where);
  const loaded = await loadPeftAdapter(gpu, weights.spec, config, store, where, weights);
  return { ...loaded, weights: await weights.withReplacements(gpu, loaded.baseWeights) };
}

/** A PEFT folder's adapter_config.json and its adapter_model.safetensors, opened (what loadPeftAdapter reads). */
export async function openPeftFolder(
  folder: DirSource,
  where = folder.name,
): Promise<{ config: Record<string, unknown>; store: AdapterTensorReader }> {
  if (!folder.list().includes('adapter_config.json'))
    throw new Error(`${where}: no adapter_config.json in that folder`);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await folder.text('adapter_config.json'));
  } catch (e) {
    throw new Error(`${where}/adapter_config.json is not valid JSON: ${(e as Error).message}`);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config))
    throw new Error(`${where}/adapter_config.json must be a JSON object, got ${JSON.stringify(config).slice(0, 40)}`);
  const onlyWeights = { ...folder, list: () => folder.list().filter((f) => f === 'adapter_model.safetensors') };
  if (onlyWeights.list().length === 0) throw new Error(`${where}: no adapter_model.safetensors in that folder`);
  return { config, store: await openCheckpoint(onlyWeights) };
}

/**
 * A trained run's adapter as the studio keeps it: the PEFT folder it exports to, with its second export where the
 * method has one (GraLoRA's exactly equivalent plain LoRA, PiSSA's raw save). Runs and experiments keep theirs
 * the same way, so the Export panel and the playground read one shape.
 */
import { methodDescriptor } from '../adapters/registry';
import { exportAdapter } from '../engine/export';
import type { MethodState } from '../engine/methods';
import type { Gpu } from '../gpu/gpu';
import type { ModelSpec } from '../model/config';
import { writeSafetensors } from '../model/formats/safetensors';
import type { AdapterSnapshot } from './protocol';
import type { ModelState } from './studio-context';

export async function adapterSnapshot(
  gpu: Gpu,
  model: ModelState,
  spec: ModelSpec,
  state: MethodState,
): Promise<AdapterSnapshot | null> {
  if (state.method === 'full') return null;
  // PEFT's base_model_name_or_path: the Hub id when config.json names one, else the folder's name.
  const baseModel = model.loaded.hubId ?? model.loaded.name;
  const exported = await exportAdapter(gpu, spec, state, { baseModel, withLoraCopy: true });
  const adapter: AdapterSnapshot = {
    modelKey: model.card.key,
    baseModel: model.loaded.name,
    spec,
    format: exported.format,
    config: exported.config,
    safetensors: writeSafetensors(exported.tensors),
  };
  if (exported.loraCopy)
    adapter.asLora = { config: exported.loraCopy.config, safetensors: writeSafetensors(exported.loraCopy.tensors) };
  const raw = methodDescriptor(state.method).rawExport;
  if (raw) {
    const r = await exportAdapter(gpu, spec, state, { baseModel, raw: true });
    adapter.raw = { config: r.config, safetensors: writeSafetensors(r.tensors), what: raw.what };
  }
  return adapter;
}

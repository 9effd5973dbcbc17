/**
 * PEFT DoRA folders (a LoRA folder with use_dora: true and a `lora_magnitude_vector` [out] per module, no
 * `.weight`): export through LoRA's writer (its per-module folding of s into B stays exact, since DoRA reads B
 * only through s·B·A), and import through LoRA's pairing of A and B, then the magnitudes.
 */
import type { ModelSpec } from '../../model/config';
import {
  exportPeftLora,
  importLoraPairs,
  modulesByPath,
  stripPeftPrefix,
  type AdapterTensorReader,
  type ImportOptions,
  type LoraModuleWeights,
  type PeftExport,
} from '../lora/peft';

export interface DoraModuleWeights extends LoraModuleWeights {
  /** [out] */
  m: Float32Array;
}

const MAGNITUDE = /^(.*)\.lora_magnitude_vector(\.default)?(\.weight)?$/;

export function exportPeftDora(
  spec: ModelSpec,
  modules: DoraModuleWeights[],
  opts: { alpha: number; baseModel: string },
): PeftExport {
  const lora = exportPeftLora(spec, modules, { alpha: opts.alpha, rslora: false, baseModel: opts.baseModel });
  const tensors = [...lora.tensors];
  for (const m of modules)
    tensors.push({ name: `base_model.model.${m.path}.lora_magnitude_vector`, shape: [m.out], data: m.m });
  return { config: { ...lora.config, use_dora: true }, tensors };
}

export async function importPeftDora(
  spec: ModelSpec,
  config: Record<string, unknown>,
  reader: AdapterTensorReader,
  where: string,
  opts: ImportOptions = {},
): Promise<DoraModuleWeights[]> {
  if (config.use_dora !== true)
    throw new Error(`${where}/adapter_config.json: use_dora is ${JSON.stringify(config.use_dora)}, not true`);
  const pairs = await importLoraPairs(spec, config, reader, where, opts, {
    fields: ['use_dora'],
    ownTensor: (n) => MAGNITUDE.test(stripPeftPrefix(n)),
  });
  const byPath = modulesByPath(spec);
  const magnitudes = new Map<string, string>();
  for (const n of reader.names()) {
    const match = MAGNITUDE.exec(stripPeftPrefix(n));
    if (!match) continue;
    const info = byPath.get(match[1]);
    if (!info || !pairs.some((p) => p.path === info.path))
      throw new Error(`${where}: ${n} is a DoRA magnitude vector of a module without lora_A/lora_B.`);
    if (magnitudes.has(info.path))
      throw new Error(`${where}: ${info.path} has two magnitude vectors (${magnitudes.get(info.path)} and ${n}).`);
    const shape = reader.info(n)!.shape;
    if (shape.length !== 1 || shape[0] !== info.out)
      throw new Error(`${where}: ${n} has shape [${shape}], expected [${info.out}] for ${info.path}.`);
    magnitudes.set(info.path, n);
  }
  const out: DoraModuleWeights[] = [];
  for (const p of pairs) {
    const name = magnitudes.get(p.path);
    if (!name)
      throw new Error(
        `${where}: use_dora is true but ${p.path} has no lora_magnitude_vector in adapter_model.safetensors.`,
      );
    out.push({ ...p, m: await reader.load(name) });
  }
  return out;
}

/** A run as a downloadable zip: the PEFT adapter folder (or merged model) plus a README with a loading snippet. */
import { zipSync, strToU8, type Zippable } from 'fflate';
import { exportPeftLora, peftConfigJson } from '../adapters/lora/peft';
import { writeSafetensors } from '../model/formats/safetensors';
import type { AdapterSnapshot, LegacyAdapterSnapshot } from './protocol';
import { mergedSnippet, peftSnippet, slug } from './snippets';

function readme(title: string, body: string, snippet: string): string {
  return `# ${title}\n\n${body}\n\n\`\`\`python\n${snippet}\n\`\`\`\n\nExported by LoRA Studio.\n`;
}

/** Snapshots saved by the first releases held dense LoRA modules; today's hold the PEFT folder itself. */
export function upgradeSnapshot(s: AdapterSnapshot | LegacyAdapterSnapshot): AdapterSnapshot {
  if ('safetensors' in s) return s;
  const { config, tensors } = exportPeftLora(s.spec, s.modules, { alpha: s.alpha, rslora: s.rslora, baseModel: s.baseModel });
  return { modelKey: s.modelKey, baseModel: s.baseModel, spec: s.spec, format: 'lora', config, safetensors: writeSafetensors(tensors) };
}

/** The zip of an adapter run; asLora writes a GraLoRA run as its exactly equivalent plain LoRA. */
export function adapterZip(runName: string, adapter: AdapterSnapshot, asLora = false): { fileName: string; bytes: Uint8Array } {
  const useLora = asLora && adapter.asLora !== undefined;
  const dir = slug(runName) + (useLora ? '-as-lora' : '');
  const folder = useLora ? adapter.asLora! : adapter;
  const format = useLora ? 'lora' : adapter.format;
  const what = format === 'gralora'
    ? `A PEFT GraLoRA adapter (needs PEFT >= 0.19) for \`${adapter.baseModel}\``
    : `A PEFT LoRA adapter for \`${adapter.baseModel}\`${useLora ? ' (the exact plain-LoRA equivalent of a GraLoRA run)' : ''}`;
  const files: Zippable = {
    'adapter_config.json': strToU8(peftConfigJson(folder.config)),
    // Float32 weights barely compress: store them.
    'adapter_model.safetensors': [folder.safetensors, { level: 0 }],
    'README.md': strToU8(readme(runName, `${what}. Unzip it into a folder named \`${dir}\` and load it:`, peftSnippet(adapter.baseModel, dir))),
  };
  return { fileName: `${dir}.zip`, bytes: zipSync(files, { level: 6 }) };
}

export function mergedZip(runName: string, files: Record<string, string | Uint8Array>): { fileName: string; bytes: Uint8Array } {
  const dir = slug(runName);
  const zippable: Zippable = {};
  for (const [name, content] of Object.entries(files)) {
    zippable[name] = typeof content === 'string' ? strToU8(content) : [content, { level: 0 }];
  }
  zippable['README.md'] = strToU8(readme(runName, `A fully fine-tuned model. Unzip it into a folder named \`${dir}\` and load it:`, mergedSnippet(dir)));
  return { fileName: `${dir}.zip`, bytes: zipSync(zippable, { level: 6 }) };
}

/** A run as a downloadable zip: the PEFT adapter folder (or merged model) plus a README with a loading snippet. */
import { zipSync, strToU8, type Zippable } from 'fflate';
import { exportPeftLora, peftConfigJson } from '../adapters/lora/peft';
import { writeSafetensors } from '../model/formats/safetensors';
import type { AdapterSnapshot } from './protocol';
import { mergedSnippet, peftSnippet, slug } from './snippets';

function readme(title: string, body: string, snippet: string): string {
  return `# ${title}\n\n${body}\n\n\`\`\`python\n${snippet}\n\`\`\`\n\nExported by LoRA Studio.\n`;
}

export function adapterZip(runName: string, adapter: AdapterSnapshot): { fileName: string; bytes: Uint8Array } {
  const dir = slug(runName);
  const { config, tensors } = exportPeftLora(adapter.spec, adapter.modules, {
    alpha: adapter.alpha, rslora: adapter.rslora, baseModel: adapter.baseModel,
  });
  const files: Zippable = {
    'adapter_config.json': strToU8(peftConfigJson(config)),
    // Float32 weights barely compress: store them.
    'adapter_model.safetensors': [writeSafetensors(tensors), { level: 0 }],
    'README.md': strToU8(readme(
      runName,
      `A PEFT LoRA adapter for \`${adapter.baseModel}\`. Unzip it into a folder named \`${dir}\` and load it:`,
      peftSnippet(adapter.baseModel, dir),
    )),
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

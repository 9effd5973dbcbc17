/** A run as a downloadable zip: the PEFT adapter folder (or merged model) plus a README with a loading snippet. */
import type { AdapterFormat } from '../adapters/options';
import { zipSync, strToU8, type Zippable } from 'fflate';
import { exportPeftLora, peftConfigJson } from '../adapters/lora/peft';
import { writeSafetensors } from '../model/formats/safetensors';
import type { AdapterSnapshot, ExportVariant, LegacyAdapterSnapshot } from './protocol';
import {
  accelerateConfig,
  mergedSnippet,
  MIN_PEFT,
  peftSnippet,
  SCALE_OUT_COMMAND,
  slug,
  trainPeftScript,
} from './snippets';

function readme(title: string, body: string, snippet: string, extra = ''): string {
  return `# ${title}\n\n${body}\n\n\`\`\`python\n${snippet}\n\`\`\`\n${extra}\nExported by LoRA Studio.\n`;
}

/**
 * Where the files go. They sit at the top of the zip, as in a PEFT adapter folder (adapter_config.json at its root):
 * the zip is that folder. File managers extract such a zip into a folder named after it (Windows' "Extract All" into
 * a top folder inside the zip would give name/name/); `unzip` needs -d.
 */
function unzipInto(dir: string): string {
  return `Unzip it into a folder named \`${dir}\` (\`unzip ${dir}.zip -d ${dir}\`: the files sit at the top of the zip)`;
}

/** The PEFT config train_peft.py builds for each format, and the fields it reads. */
const CONFIG_FIELDS: Record<AdapterFormat, string> = {
  lora: '`LoraConfig` (r, lora_alpha, target_modules, rank_pattern, alpha_pattern, use_rslora, use_dora)',
  gralora: '`GraloraConfig` (r, alpha, gralora_k, hybrid_r, target_modules)',
  adalora:
    '`AdaLoraConfig` (init_r, target_r, lora_alpha, tinit, tfinal, deltaT, beta1, beta2, orth_reg_weight, target_modules)',
};

/** How to run the scale-out bundle, for the adapter zip's README. */
function scaleOutSection(format: AdapterFormat, baseModel: string): string {
  return [
    '',
    '## Continue training on a multi-GPU machine',
    '',
    '`train_peft.py` keeps training this adapter with transformers, PEFT, accelerate and datasets. It builds the',
    `${CONFIG_FIELDS[format]} from`,
    '`adapter_config.json` and resumes from the exported weights (`--fresh` starts a new adapter with the same config).',
    '`accelerate_config.yaml` runs one process per GPU on one machine: set `num_processes` to your GPU count.',
    '',
    '```bash',
    `pip install "transformers>=4.40" "peft>=${MIN_PEFT[format]}" "accelerate>=0.30" datasets`,
    SCALE_OUT_COMMAND,
    '```',
    '',
    format === 'gralora'
      ? `GraLoRA needs PEFT >= ${MIN_PEFT.gralora} (\`GraloraConfig\`).`
      : format === 'adalora'
        ? `AdaLoRA needs PEFT >= ${MIN_PEFT.adalora}; with \`--fresh\` its budget schedule runs again over \`--steps\`, otherwise the exported ranks stay fixed.`
        : `PEFT >= ${MIN_PEFT.lora} reads this adapter_config.json (it names \`use_rslora\`, PEFT 0.8, and \`use_dora\`, PEFT 0.9; ` +
          'PEFT before 0.14 refuses keys it does not know; `rank_pattern`/`alpha_pattern` date from 0.6).',
    `The base model is \`${baseModel.replace(/[\r\n`]+/g, ' ')}\` (\`base_model_name_or_path\`): when that is neither a folder where you run`,
    "the script nor a Hub id (owner/name), pass `--base` with the base model's folder or Hub id.",
    '',
    "`--data` takes the studio's formats (.jsonl/.json/.csv/.parquet with text, prompt/completion, Alpaca or chat",
    'messages columns, or a .txt file); `--steps`, `--lr`, `--batch-size` (per GPU), `--grad-accum` and `--seq-len`',
    'set the run, `--out` where the trained adapter goes (`python train_peft.py --help` lists everything).',
    '',
  ].join('\n');
}

/** Snapshots saved by the first releases held dense LoRA modules; today's hold the PEFT folder itself. */
export function upgradeSnapshot(s: AdapterSnapshot | LegacyAdapterSnapshot): AdapterSnapshot {
  if ('safetensors' in s) return s;
  const { config, tensors } = exportPeftLora(s.spec, s.modules, {
    alpha: s.alpha,
    rslora: s.rslora,
    baseModel: s.baseModel,
  });
  return {
    modelKey: s.modelKey,
    baseModel: s.baseModel,
    spec: s.spec,
    format: 'lora',
    config,
    safetensors: writeSafetensors(tensors),
  };
}

/**
 * The zip of an adapter run; variant 'lora' writes a GraLoRA run as its exactly equivalent plain LoRA, 'raw' the
 * method's raw save (PiSSA's default PEFT save). A variant the run does not have is refused.
 */
export function adapterZip(
  runName: string,
  adapter: AdapterSnapshot,
  variant?: ExportVariant,
): { fileName: string; bytes: Uint8Array } {
  const second = variant === 'lora' ? adapter.asLora : variant === 'raw' ? adapter.raw : undefined;
  if (variant && !second) throw new Error(`"${runName}" has no ${variant === 'lora' ? 'plain-LoRA' : 'raw'} export.`);
  const dir = slug(runName) + (variant === 'lora' ? '-as-lora' : variant === 'raw' ? '-raw' : '');
  const folder = second ?? adapter;
  const format = second ? 'lora' : adapter.format;
  const what = {
    gralora: `A PEFT GraLoRA adapter (needs PEFT >= ${MIN_PEFT.gralora}) for \`${adapter.baseModel}\``,
    adalora: `A PEFT AdaLoRA adapter (needs PEFT >= ${MIN_PEFT.adalora}) for \`${adapter.baseModel}\``,
    lora: `A PEFT LoRA adapter for \`${adapter.baseModel}\`${
      variant === 'lora'
        ? ' (the exact plain-LoRA equivalent of a GraLoRA run)'
        : variant === 'raw'
          ? `: ${adapter.raw!.what}`
          : ''
    }`,
  }[format];
  const files: Zippable = {
    'adapter_config.json': strToU8(peftConfigJson(folder.config)),
    // Float32 weights barely compress: store them.
    'adapter_model.safetensors': [folder.safetensors, { level: 0 }],
    'README.md': strToU8(
      readme(
        runName,
        `${what}. ${unzipInto(dir)} and load it:`,
        peftSnippet(adapter.baseModel, dir),
        scaleOutSection(format, adapter.baseModel),
      ),
    ),
    'train_peft.py': strToU8(trainPeftScript(runName, adapter.baseModel, format)),
    'accelerate_config.yaml': strToU8(accelerateConfig()),
  };
  return { fileName: `${dir}.zip`, bytes: zipSync(files, { level: 6 }) };
}

/** A whole model's folder as a zip: the files at its top, with a README that says what it is and how to load it. */
export function mergedZip(
  runName: string,
  files: Record<string, string | Uint8Array>,
  what = 'A fully fine-tuned model.',
): { fileName: string; bytes: Uint8Array } {
  const dir = slug(runName);
  const zippable: Zippable = {};
  for (const [name, content] of Object.entries(files)) {
    zippable[name] = typeof content === 'string' ? strToU8(content) : [content, { level: 0 }];
  }
  zippable['README.md'] = strToU8(readme(runName, `${what} ${unzipInto(dir)} and load it:`, mergedSnippet(dir)));
  return { fileName: `${dir}.zip`, bytes: zipSync(zippable, { level: 6 }) };
}

/**
 * A GGUF export as a zip: the .gguf file, an Ollama Modelfile that points at it, and a README with the commands
 * for llama.cpp and Ollama. The Modelfile is written for the .gguf file's name.
 */
export function ggufZip(
  runName: string,
  dtype: string,
  what: string,
  content: { gguf: Uint8Array; modelfile: (ggufName: string) => string },
): { fileName: string; bytes: Uint8Array } {
  const dir = slug(runName);
  const ggufName = `${dir}-${dtype}.gguf`;
  const { gguf } = content;
  const modelfile = content.modelfile(ggufName);
  const body = [
    `${what} Unzip it (\`unzip ${dir}-gguf.zip -d ${dir}\`) and run it with llama.cpp:`,
    '',
    '```bash',
    `llama-cli -m ${dir}/${ggufName} -p "Once upon a time"`,
    '```',
    '',
    'or with Ollama (the Modelfile carries the chat template and stop tokens):',
    '',
    '```bash',
    `cd ${dir} && ollama create ${dir} -f Modelfile && ollama run ${dir}`,
    '```',
    '',
    'Exported by LoRA Studio.',
    '',
  ].join('\n');
  const files: Zippable = {
    // GGUF weights barely compress: store them.
    [ggufName]: [gguf, { level: 0 }],
    Modelfile: strToU8(modelfile),
    'README.md': strToU8(`# ${runName}\n\n${body}`),
  };
  return { fileName: `${dir}-gguf.zip`, bytes: zipSync(files, { level: 6 }) };
}

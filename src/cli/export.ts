/**
 * `export`: a model, with a PEFT adapter folded in or without one, as a Hugging Face model folder (`--format merged`)
 * or one GGUF file with an Ollama Modelfile beside it (`--format gguf`). The merge is PEFT's merge_and_unload in
 * float64 (src/export/merge.ts), rounded once to the written precision. Progress on stderr, one JSON line on stdout
 * at the end.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { openPeftFolder } from '../engine/export';
import { ggufArchitecture } from '../export/gguf/architecture';
import { ollamaModelfile, writeGguf } from '../export/gguf/index';
import { mergeModel } from '../export/merge';
import { configMergedDtype } from '../export/merged-config';
import { mergedFolderTexts, mergedWeightChunks } from '../export/merged-folder';
import { GGUF_DTYPES, MERGED_DTYPES, type GgufDtype, type MergedDtype, type MergedModel } from '../export/merged-model';
import { modelFolderTexts } from '../export/model-files';
import { nodeDir } from '../model/formats/node-source';
import type { OptionSpec } from './args';
import { openModelPath, writeOutputFiles } from './node-files';
import { log, out } from './output';
import { setup } from './setup';

const FORMATS = ['merged', 'gguf'] as const;
type ExportFormat = (typeof FORMATS)[number];

export const EXPORT_OPTS: Record<string, OptionSpec> = {
  model: { kind: 'string', help: 'model folder (Hugging Face) or llama2.c .bin', required: true },
  adapter: {
    kind: 'string',
    help: 'PEFT adapter folder to merge (adapter_config.json + adapter_model.safetensors); without it the base model is converted',
  },
  format: {
    kind: 'string',
    help: 'merged: a Hugging Face model folder (transformers and this CLI load it) | gguf: one .gguf file for llama.cpp, with an Ollama Modelfile beside it',
    required: true,
  },
  dtype: {
    kind: 'string',
    help: `precision written. merged: ${MERGED_DTYPES.join(' | ')} (default: config.json's torch_dtype when it is one of those, else f32); gguf: ${GGUF_DTYPES.join(' | ')} (default f16)`,
  },
  out: {
    kind: 'string',
    help: 'merged: the output folder; gguf: the .gguf file (the Modelfile is written in its folder)',
    required: true,
  },
};

export interface ExportSummary {
  done: true;
  format: ExportFormat;
  dtype: MergedDtype | GgufDtype;
  out: string;
  tensors: number;
  bytes: number;
}

/** Checks the options (errors name the flag and what is supported), merges, writes. */
export async function exportModel(o: Record<string, unknown>): Promise<ExportSummary> {
  const format = o.format as ExportFormat;
  if (!FORMATS.includes(format)) throw new Error(`--format must be one of ${FORMATS.join(', ')} (got "${o.format}")`);
  const dtypes: readonly string[] = format === 'merged' ? MERGED_DTYPES : GGUF_DTYPES;
  const asked = o.dtype as string | undefined;
  if (asked !== undefined && !dtypes.includes(asked))
    throw new Error(`--dtype ${asked} is not supported with --format ${format}: choose ${dtypes.join(', ')}`);
  const modelPath = o.model as string;
  const outPath = o.out as string;
  const adapterPath = o.adapter as string | undefined;
  await checkPaths(format, modelPath, outPath, adapterPath);
  const modelDir = await openModelPath(modelPath);
  const texts = await modelFolderTexts(modelDir);
  if (format === 'gguf') checkGgufArchitecture(texts.configJson, modelPath);
  const dtype = asked ?? (format === 'merged' ? (configMergedDtype(texts.configJson) ?? 'f32') : 'f16');

  const { gpu, model, weights } = await setup(modelPath, 'auto');
  const adapter = adapterPath
    ? { ...(await openPeftFolder(await nodeDir(adapterPath), adapterPath)), where: adapterPath }
    : undefined;
  // A GGUF writer converts from f32 itself (to f16 or q8_0 blocks); a folder is rounded once to what it holds.
  const merged = await mergeModel(gpu, weights, {
    ...texts,
    adapter,
    dtype: format === 'merged' ? (dtype as MergedDtype) : 'f32',
    log,
  });
  const written =
    format === 'merged'
      ? { tensors: merged.tensors.length, bytes: await writeMergedFolder(outPath, merged, dtype as MergedDtype) }
      : await writeGgufFile(outPath, merged, dtype as GgufDtype, model.name);
  return { done: true, format, dtype: dtype as MergedDtype | GgufDtype, out: outPath, ...written };
}

export async function cmdExport(o: Record<string, unknown>): Promise<void> {
  const summary = await exportModel(o);
  log(
    `wrote ${summary.out}: ${summary.tensors} tensors, ${summary.dtype}, ${summary.bytes.toLocaleString('en')} bytes`,
  );
  out(summary);
}

/**
 * A Hugging Face model folder at `dir`: config.json, the tokenizer and generation files, and model.safetensors
 * written piece by piece (no second copy of the whole file in memory). Returns model.safetensors' size.
 */
export async function writeMergedFolder(dir: string, model: MergedModel, dtype: MergedDtype): Promise<number> {
  await writeOutputFiles(dir, mergedFolderTexts(model, dtype));
  const chunks = mergedWeightChunks(model, dtype);
  await writeFile(join(dir, 'model.safetensors'), chunks);
  return chunks.reduce((n, c) => n + c.byteLength, 0);
}

/** The .gguf file at `path` and the Ollama Modelfile beside it; the file's tensor count and size. */
async function writeGgufFile(
  path: string,
  model: MergedModel,
  dtype: GgufDtype,
  name: string,
): Promise<{ tensors: number; bytes: number }> {
  const bytes = await writeGguf(model, { dtype, name });
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
  await writeFile(join(dirname(path), 'Modelfile'), ollamaModelfile(model, basename(path)));
  // The file's own count (llama.cpp's layout may add or fuse tensors): the u64 after magic and version.
  const tensors = Number(new DataView(bytes.buffer, bytes.byteOffset, 16).getBigUint64(8, true));
  return { tensors, bytes: bytes.byteLength };
}

/** What exists, before anything loads: --model, --adapter, and an --out that overwrites neither. */
async function checkPaths(format: ExportFormat, modelPath: string, outPath: string, adapterPath?: string) {
  const model = await stat(modelPath).catch(() => null);
  if (!model) throw new Error(`--model ${modelPath}: no such file or folder`);
  const adapter = adapterPath === undefined ? null : await stat(adapterPath).catch(() => null);
  if (adapterPath !== undefined && !adapter?.isDirectory())
    throw new Error(
      `--adapter ${adapterPath}: ${adapter ? 'not a folder' : 'no such folder'} (expected a PEFT adapter folder)`,
    );
  const existing = await stat(outPath).catch(() => null);
  if (format === 'gguf') {
    if (existing?.isDirectory())
      throw new Error(
        `--out ${outPath} is a folder; --format gguf writes one file: give its path, e.g. ${join(outPath, 'model.gguf')}`,
      );
    return;
  }
  if (existing && !existing.isDirectory())
    throw new Error(`--out ${outPath} is a file; --format merged writes a folder`);
  const inputs = [
    ['model', resolve(model.isDirectory() ? modelPath : dirname(modelPath))],
    ['adapter', adapterPath === undefined ? null : resolve(adapterPath)],
  ];
  const overwritten = inputs.find(([, folder]) => folder === resolve(outPath));
  if (overwritten)
    throw new Error(`--out ${outPath} is the ${overwritten[0]} folder: write the merged model to another folder`);
}

/** A model llama.cpp has no architecture for fails before the merge, with the writer's own message. */
function checkGgufArchitecture(configJson: string, modelPath: string): void {
  try {
    ggufArchitecture(JSON.parse(configJson));
  } catch (e) {
    throw new Error(`--model ${modelPath}: ${(e as Error).message} (--format merged writes any model)`);
  }
}

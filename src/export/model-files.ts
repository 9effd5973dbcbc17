/**
 * What a merged model folder takes from the model it was made from, besides the weights: config.json and the
 * tokenizer and generation files. A llama2.c checkpoint has none of them: they are made as its Hugging Face
 * conversion makes them (src/model/formats/llama2c-hf.ts).
 */
import { llama2cFiles } from '../engine/load-model';
import { parseLlama2cHeader, readLlama2cTokenizer } from '../model/formats/llama2c';
import { llama2cHfTextFiles } from '../model/formats/llama2c-hf';
import type { DirSource } from '../model/formats/source';

/** The files copied as they are, where the model folder has them. */
export const COPIED_MODEL_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
  'chat_template.jinja',
];

/** llama2.c's 7 int32 header fields. */
const LLAMA2C_HEADER_BYTES = 28;

/** config.json's text and the other files (by name) of a Hugging Face folder or a llama2.c checkpoint. */
export async function modelFolderTexts(dir: DirSource): Promise<{ configJson: string; files: Record<string, string> }> {
  const list = dir.list();
  if (list.includes('config.json')) {
    const files: Record<string, string> = {};
    for (const f of COPIED_MODEL_FILES) if (list.includes(f)) files[f] = await dir.text(f);
    return { configJson: await dir.text('config.json'), files };
  }
  const llama2c = llama2cFiles(list);
  if (!llama2c)
    throw new Error(
      `${dir.name}: neither a Hugging Face folder (config.json) nor a llama2.c checkpoint (model .bin + tokenizer .bin)`,
    );
  const model = dir.file(llama2c.model)!;
  const header = parseLlama2cHeader(await model.read(0, Math.min(LLAMA2C_HEADER_BYTES, model.size)), model.name);
  const tokenizer = dir.file(llama2c.tokenizer)!;
  const tok = readLlama2cTokenizer(await tokenizer.read(0, tokenizer.size), tokenizer.name, header.vocabSize);
  // The name loadModelDir gives the model, so config.json's _name_or_path says what it was made from.
  const { 'config.json': configJson, ...files } = llama2cHfTextFiles(header, tok, dir.name);
  return { configJson, files };
}

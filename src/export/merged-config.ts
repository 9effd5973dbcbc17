/**
 * config.json of a merged model: the original's, with what the merge changed. Floats keep their Python form
 * (src/quant/python-float.ts), so a value such as rms_norm_eps 1e-06 or rope_theta 10000.0 is written as
 * transformers wrote it.
 */
import { dumpsPythonJson, parsePythonJson, PyFloat, type PyJson } from '../quant/python-float';
import { MERGED_DTYPES, type MergedDtype } from './merged-model';

/** The torch dtype name transformers writes for each precision. */
export const TORCH_DTYPES: Record<MergedDtype, string> = { f32: 'float32', bf16: 'bfloat16', f16: 'float16' };

export interface MergedConfigChanges {
  /** The precision model.safetensors holds: torch_dtype (and `dtype`, transformers' newer key, where present). */
  dtype?: MergedDtype;
  /** The adapter gave lm_head its own weight (modules_to_save on a tied model): tie_word_embeddings false. */
  untied?: boolean;
}

/**
 * The config without a bitsandbytes `quantization_config` (the merged weights are plain floats, which transformers
 * would otherwise try to load as packed 4-bit ones) and with `changes`; the text as it was when nothing changes.
 */
export function mergedConfigJson(text: string, where = 'config.json', changes: MergedConfigChanges = {}): string {
  const config = parsePythonJson(text, where);
  if (config === null || typeof config !== 'object' || Array.isArray(config) || config instanceof PyFloat) return text;
  const fields = config as { [key: string]: PyJson };
  const edits: { [key: string]: PyJson } = {};
  if (changes.dtype) {
    const name = TORCH_DTYPES[changes.dtype];
    if ('dtype' in fields) edits.dtype = name;
    if ('torch_dtype' in fields || !('dtype' in fields)) edits.torch_dtype = name;
  }
  if (changes.untied) edits.tie_word_embeddings = false;
  const unchanged = Object.entries(edits).every(([key, value]) => fields[key] === value);
  if (unchanged && !('quantization_config' in fields)) return text;
  const { quantization_config: _dropped, ...rest } = fields;
  return `${dumpsPythonJson({ ...rest, ...edits }, { indent: 2, sortKeys: true })}\n`;
}

/** The precision config.json declares (`dtype`, else `torch_dtype`) when a merged folder can hold it, else null. */
export function configMergedDtype(text: string, where = 'config.json'): MergedDtype | null {
  const config = parsePythonJson(text, where) as { [key: string]: PyJson } | null;
  const declared = config?.dtype ?? config?.torch_dtype;
  return MERGED_DTYPES.find((d) => TORCH_DTYPES[d] === declared) ?? null;
}

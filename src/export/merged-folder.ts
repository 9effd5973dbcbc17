/**
 * A MergedModel as a Hugging Face model folder: config.json (torch_dtype the written precision), the tokenizer and
 * generation files, and model.safetensors in f32, bf16 or f16. transformers' from_pretrained and this app's loader
 * both read it.
 */
import { firstF16Overflow } from '../gpu/half';
import { safetensorsChunks, writeSafetensors, type NamedTensor } from '../model/formats/safetensors';
import { mergedConfigJson } from './merged-config';
import type { MergedDtype, MergedModel } from './merged-model';

const SAFETENSORS_DTYPES: Record<MergedDtype, NonNullable<NamedTensor['dtype']>> = {
  f32: 'F32',
  bf16: 'BF16',
  f16: 'F16',
};

/** The whole folder by file name (the studio zips it). */
export function mergedFolderFiles(model: MergedModel, dtype: MergedDtype): Record<string, string | Uint8Array> {
  return { ...mergedFolderTexts(model, dtype), 'model.safetensors': writeSafetensors(writtenTensors(model, dtype)) };
}

/** config.json and the files the model carries, by name. */
export function mergedFolderTexts(model: MergedModel, dtype: MergedDtype): Record<string, string> {
  return { ...model.files, 'config.json': mergedConfigJson(model.configJson, 'config.json', { dtype }) };
}

/** model.safetensors as pieces to write one after another (no second copy of the whole file in memory). */
export function mergedWeightChunks(model: MergedModel, dtype: MergedDtype): Uint8Array[] {
  return safetensorsChunks(writtenTensors(model, dtype));
}

/** The tensors stored as `dtype` (round to nearest even; exact when the model was merged in that precision). */
function writtenTensors(model: MergedModel, dtype: MergedDtype): NamedTensor[] {
  return model.tensors.map((t) => {
    const overflow = dtype === 'f16' ? firstF16Overflow(t.data) : -1;
    if (overflow >= 0)
      throw new Error(
        `${t.name}: value ${t.data[overflow]} at element ${overflow} is beyond f16's range (±65504); write bf16 or f32 instead`,
      );
    return { name: t.name, shape: t.shape, data: t.data, dtype: SAFETENSORS_DTYPES[dtype] };
  });
}

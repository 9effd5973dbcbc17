/**
 * `quantize`: a Hugging Face model folder -> a bitsandbytes folder transformers + bitsandbytes load (NF4/FP4 with
 * double quantization, or LLM.int8()). Pure TypeScript on the CPU (no GPU). Progress on stderr, one JSON line on
 * stdout at the end.
 */
import { open, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BLOCKSIZES_4BIT } from '../quant/bnb4';
import { BNB_FORMATS, quantizeModelFolder, type BnbFormat, type TorchDtype } from '../quant/bnb-format';
import { nodeDir } from '../model/formats/node-source';
import type { OptionSpec } from './args';
import { writeOutputFiles } from './node-files';
import { log, out } from './output';

const COMPUTE_DTYPES: TorchDtype[] = ['float32', 'bfloat16', 'float16'];

export const QUANTIZE_OPTS: Record<string, OptionSpec> = {
  model: { kind: 'string', help: 'Hugging Face model folder (config.json + safetensors)', required: true },
  to: {
    kind: 'string',
    help: `${BNB_FORMATS.join(' | ')}: 4-bit NormalFloat or FP4 (bitsandbytes' Linear4bit), or 8-bit LLM.int8() (Linear8bitLt)`,
    required: true,
  },
  out: { kind: 'string', help: 'output folder (config.json, model.safetensors, tokenizer files)', required: true },
  blocksize: {
    kind: 'int',
    help: `4-bit: values per absmax block (${BLOCKSIZES_4BIT.join(', ')})`,
    default: 64,
  },
  'no-double-quant': {
    kind: 'flag',
    help: '4-bit: keep the absmax values as f32 (bnb_4bit_use_double_quant false) instead of quantizing them again',
  },
  'compute-dtype': {
    kind: 'string',
    help: `4-bit: bnb_4bit_compute_dtype written to config.json: ${COMPUTE_DTYPES.join(' | ')} (default: the checkpoint's dtype)`,
  },
};

export interface QuantizeSummary {
  done: true;
  out: string;
  to: BnbFormat;
  quantized: number;
  kept: number;
  bytes: number;
}

/** Checks the options (errors name the flag and what is supported), quantizes, writes the folder. */
export async function quantizeFolder(o: Record<string, unknown>): Promise<QuantizeSummary> {
  const to = o.to as BnbFormat;
  if (!BNB_FORMATS.includes(to)) {
    throw new Error(`--to must be one of ${BNB_FORMATS.join(', ')} (got "${String(o.to)}")`);
  }
  const blocksize = (o.blocksize as number | undefined) ?? 64;
  if (to !== 'int8' && !(BLOCKSIZES_4BIT as readonly number[]).includes(blocksize)) {
    throw new Error(`--blocksize must be one of ${BLOCKSIZES_4BIT.join(', ')} (got ${blocksize})`);
  }
  const computeDtype = o['compute-dtype'] as TorchDtype | undefined;
  if (computeDtype !== undefined && !COMPUTE_DTYPES.includes(computeDtype)) {
    throw new Error(`--compute-dtype must be one of ${COMPUTE_DTYPES.join(', ')} (got "${computeDtype}")`);
  }
  if (to === 'int8' && (o['no-double-quant'] === true || computeDtype !== undefined)) {
    throw new Error('--no-double-quant and --compute-dtype are 4-bit options; --to int8 takes neither');
  }
  const model = o.model as string;
  const outDir = o.out as string;
  const st = await stat(model).catch(() => null);
  if (!st?.isDirectory()) {
    throw new Error(
      `--model ${model}: ${st ? 'not a folder' : 'no such folder'} (expected a Hugging Face model folder)`,
    );
  }
  if (resolve(model) === resolve(outDir)) {
    throw new Error(`--out ${outDir} is the model folder: write the quantized model to another folder`);
  }
  const result = await quantizeModelFolder(await nodeDir(model), {
    to,
    blocksize,
    doubleQuant: o['no-double-quant'] !== true,
    computeDtype,
    onTensor: (name, done, total) => log(`${done}/${total} ${name}`),
  });
  await writeOutputFiles(outDir, result.files);
  // The weights go out piece by piece: no second copy of the whole file in memory.
  const handle = await open(join(outDir, 'model.safetensors'), 'w');
  try {
    for (const chunk of result.weights) {
      for (let at = 0; at < chunk.byteLength; ) {
        const { bytesWritten } = await handle.write(chunk, at, Math.min(chunk.byteLength - at, 1 << 30));
        at += bytesWritten;
      }
    }
  } finally {
    await handle.close();
  }
  return {
    done: true,
    out: outDir,
    to,
    quantized: result.quantized.length,
    kept: result.kept.length,
    bytes: result.bytes,
  };
}

export async function cmdQuantize(o: Record<string, unknown>): Promise<void> {
  const summary = await quantizeFolder(o);
  log(`wrote ${summary.out}: ${summary.quantized} weights quantized (${summary.to}), ${summary.kept} tensors kept`);
  out(summary);
}

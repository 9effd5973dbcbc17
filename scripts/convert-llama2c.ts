/**
 * Converts a llama2.c checkpoint + tokenizer to a Hugging Face Llama folder.
 *   node scripts/convert-llama2c.mjs [model.bin] [tokenizer.bin] [out-dir]
 * Defaults: the stories260K fixture -> public/demo/model/ (the app's embedded demo model).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { llama2cToHfFolder } from '../src/model/formats/llama2c-hf';
import { nodeFile } from '../src/model/formats/node-source';

const FIXTURE = 'test/fixtures/models/stories260K_llama2c';
const [
  modelPath = `${FIXTURE}/stories260K.bin`,
  tokenizerPath = `${FIXTURE}/tok512.bin`,
  outDir = 'public/demo/model',
] = process.argv.slice(2);

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function readme(
  name: string,
  h: {
    dim: number;
    hiddenDim: number;
    layers: number;
    heads: number;
    kvHeads: number;
    vocabSize: number;
    seqLen: number;
  },
  modelSha: string,
  tokenizerSha: string,
): string {
  return `# ${name} (Hugging Face format)

Andrej Karpathy's llama2.c "${name}" TinyStories model and its ${h.vocabSize}-token tokenizer, converted to a
Hugging Face \`LlamaForCausalLM\` folder. It is the embedded demo model of LoRA Studio.

- Source: github.com/karpathy/llama2.c and huggingface.co/karpathy/tinyllamas (${name}/); the files used are
  test/fixtures/models/stories260K_llama2c in this repository (see its SOURCE.txt).
  sha256 ${basename(modelPath)}: ${modelSha}
  sha256 ${basename(tokenizerPath)}: ${tokenizerSha}
- License: MIT (llama2.c).
- Architecture: Llama, hidden ${h.dim}, intermediate ${h.hiddenDim}, ${h.layers} layers, ${h.heads} heads, ${h.kvHeads} KV heads,
  vocabulary ${h.vocabSize}, context ${h.seqLen}, RMSNorm eps 1e-5, RoPE theta 10000, tied embeddings, float32.

## How it was made

\`node scripts/convert-llama2c.mjs\` (scripts/convert-llama2c.ts, src/model/formats/llama2c*.ts,
src/tokenizer/llama2c-to-hf.ts). The conversion is deterministic:

- Weights are renamed to Hugging Face Llama names. llama2.c applies RoPE to interleaved pairs (x[2i], x[2i+1]),
  Hugging Face to halves (x[i], x[i + d/2]); the rows of q_proj and k_proj are permuted within each head as
  transformers' convert_llama_weights_to_hf.py does, so the model gives the same outputs under HF's RoPE.
  The freq_cis tables of the checkpoint are dropped (HF recomputes them). No lm_head.weight: it is tied.
- tokenizer.json is a BPE model with byte fallback whose merges come from the sentencepiece scores of the
  llama2.c tokenizer; it encodes exactly as llama2.c's encode() (checked in test/formats).
  Ids: <unk> 0, <s> 1, </s> 2, bytes <0x00>..<0xFF> 3..258.
`;
}

const modelSource = await nodeFile(modelPath);
const tokenizerBytes = new Uint8Array(await readFile(tokenizerPath));
const name = basename(modelPath).replace(/\.bin$/, '');
const { files, header } = await llama2cToHfFolder(modelSource, tokenizerBytes, name);
files['README.md'] = readme(name, header, sha256(await readFile(modelPath)), sha256(tokenizerBytes));

await mkdir(outDir, { recursive: true });
for (const [file, content] of Object.entries(files)) {
  await writeFile(join(outDir, file), content);
  console.error(
    `wrote ${join(outDir, file)} (${typeof content === 'string' ? Buffer.byteLength(content) : content.length} bytes)`,
  );
}

/**
 * The studio's export zip: its layout agrees with its README, the PEFT versions it asks for are the real minimums
 * per format, and train_peft.py stops with a clear message (no training rows, a base model Python cannot resolve,
 * too old a PEFT) instead of failing inside torch or transformers. Where python3 is installed the script is parsed,
 * and run against small stand-ins for torch, transformers, peft, accelerate and datasets (none are needed here).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strFromU8, unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { adapterZip, mergedZip } from '../../src/worker/export-files';
import { MIN_PEFT, trainPeftScript } from '../../src/worker/snippets';
import type { AdapterFormat } from '../../src/adapters/options';

const spec = parseConfig(JSON.parse(readFileSync('public/demo/model/config.json', 'utf8')));
const loraConfig = {
  peft_type: 'LORA',
  r: 4,
  lora_alpha: 4,
  target_modules: ['model.layers.0.self_attn.q_proj'],
  base_model_name_or_path: 'stories260K',
};
const graloraConfig = {
  peft_type: 'GRALORA',
  r: 4,
  alpha: 8,
  gralora_k: 2,
  hybrid_r: 0,
  target_modules: ['model.layers.0.self_attn.q_proj'],
};

const adaloraConfig = {
  peft_type: 'ADALORA',
  init_r: 6,
  target_r: 4,
  lora_alpha: 8,
  tinit: 0,
  tfinal: 0,
  deltaT: 1,
  beta1: 0.85,
  beta2: 0.85,
  orth_reg_weight: 0.5,
  rank_pattern: { 'model.layers.0.self_attn.q_proj': [true, true, false, true, true, false] },
  target_modules: ['model.layers.0.self_attn.q_proj'],
};

function zipFiles(format: AdapterFormat, baseModel = 'stories260K') {
  const config = { lora: loraConfig, gralora: graloraConfig, adalora: adaloraConfig }[format];
  const { fileName, bytes } = adapterZip('LoRA q,v r=4', {
    modelKey: 'k',
    baseModel,
    spec,
    format,
    config,
    safetensors: new Uint8Array(8),
  });
  const files = unzipSync(bytes);
  return { fileName, files, readme: strFromU8(files['README.md']), script: strFromU8(files['train_peft.py']) };
}

describe('export zip', () => {
  it("a method's raw save is its own zip (-raw), with the method's words; a variant the run lacks is refused", () => {
    const snapshot = {
      modelKey: 'k',
      baseModel: 'stories260K',
      spec,
      format: 'lora' as const,
      config: { ...loraConfig, r: 8, lora_alpha: 8 },
      safetensors: new Uint8Array(8),
      raw: {
        config: { ...loraConfig, init_lora_weights: 'pissa' },
        safetensors: new Uint8Array(8),
        what: 'the raw PiSSA adapter as PEFT saves it by default',
      },
    };
    const raw = adapterZip('PiSSA r=4', snapshot, 'raw');
    expect(raw.fileName).toBe('pissa-r-4-raw.zip');
    const files = unzipSync(raw.bytes);
    expect(JSON.parse(strFromU8(files['adapter_config.json'])).init_lora_weights).toBe('pissa');
    expect(strFromU8(files['README.md'])).toContain(
      'A PEFT LoRA adapter for `stories260K`: the raw PiSSA adapter as PEFT saves it by default.',
    );
    expect(adapterZip('PiSSA r=4', snapshot).fileName).toBe('pissa-r-4.zip');
    expect(() => adapterZip('PiSSA r=4', snapshot, 'lora')).toThrow('"PiSSA r=4" has no plain-LoRA export.');
  });

  it('has its files at the top, as its README says, and tells how to unzip into the named folder', () => {
    const { fileName, files, readme } = zipFiles('lora');
    expect(fileName).toBe('lora-q-v-r-4.zip');
    expect(Object.keys(files).sort()).toEqual([
      'README.md',
      'accelerate_config.yaml',
      'adapter_config.json',
      'adapter_model.safetensors',
      'train_peft.py',
    ]);
    expect(readme).toContain(
      'Unzip it into a folder named `lora-q-v-r-4` (`unzip lora-q-v-r-4.zip -d lora-q-v-r-4`: the files sit at the top of the zip)',
    );
    expect(readme).toContain('PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), "lora-q-v-r-4")');
    const merged = unzipSync(
      mergedZip('Full r', { 'config.json': '{}', 'model.safetensors': new Uint8Array(8) }).bytes,
    );
    expect(Object.keys(merged).sort()).toEqual(['README.md', 'config.json', 'model.safetensors']);
    expect(strFromU8(merged['README.md'])).toContain(
      '(`unzip full-r.zip -d full-r`: the files sit at the top of the zip)',
    );
  });

  it('asks for the same, real, PEFT minimum in the README and train_peft.py: 0.9 for LoRA, 0.19 for GraLoRA, 0.14 for AdaLoRA', () => {
    expect(MIN_PEFT).toEqual({ lora: '0.9', gralora: '0.19', adalora: '0.14' });
    for (const format of ['lora', 'gralora', 'adalora'] as const) {
      const { readme, script } = zipFiles(format);
      const wanted = `"peft>=${MIN_PEFT[format]}"`;
      expect(readme).toContain(wanted);
      expect(script).toContain(wanted);
      expect(readme + script).not.toMatch(/peft>=0\.15/);
      expect(script).toContain(`MIN_PEFT = {"LORA": "0.9", "GRALORA": "0.19", "ADALORA": "0.14"}`);
    }
    expect(zipFiles('lora').readme).toMatch(/`use_dora`, PEFT 0\.9; PEFT before 0\.14 refuses keys it does not know/);
    expect(zipFiles('lora').readme).toMatch(/The base model is `stories260K`.*pass `--base`/s);
  });
});

const python = spawnSync('python3', ['--version']).status === 0;

/** Minimal stand-ins for the libraries train_peft.py imports: enough to run it up to training. */
const STUBS: Record<string, string> = {
  'torch/__init__.py': '',
  'torch/utils/__init__.py': '',
  // What torch says for an empty dataset: the message train_peft.py must never leave the user with.
  'torch/utils/data/__init__.py': `
def DataLoader(data, **kw):
    if len(data) == 0:
        raise ValueError("num_samples should be a positive integer value, but got num_samples=0")
    raise SystemExit("reached the DataLoader with %d rows" % len(data))
`,
  'accelerate/__init__.py': `
import contextlib
class Accelerator:
    is_main_process = True
    def __init__(self, **kw): pass
    def main_process_first(self): return contextlib.nullcontext()
    def print(self, *a): print(*a)
`,
  'accelerate/utils/__init__.py': 'def set_seed(seed): pass\n',
  'peft/__init__.py': `
import os
__version__ = os.environ.get("STUB_PEFT_VERSION", "0.19.1")
class LoraConfig:
    def __init__(self, **kw): self.kw = kw
class PeftModel:
    @staticmethod
    def from_pretrained(model, path, is_trainable=False): return model
def get_peft_model(model, config): return model
`,
  'transformers/__init__.py': `
class _Tok:
    eos_token_id = 0
    pad_token_id = None
    def __call__(self, text, add_special_tokens=True, return_offsets_mapping=False, truncation=False, max_length=None):
        ids = [1 + ord(c) % 50 for c in text][:max_length]
        return {"input_ids": ids, "offset_mapping": [(i, i + 1) for i in range(len(ids))]}
class AutoTokenizer:
    @staticmethod
    def from_pretrained(name): return _Tok()
class _Model:
    def print_trainable_parameters(self): pass
    def parameters(self): return []
class AutoModelForCausalLM:
    @staticmethod
    def from_pretrained(name, **kw): return _Model()
`,
  'datasets/__init__.py': `
import json
class Dataset:
    def __init__(self, rows): self.rows = rows
    @property
    def column_names(self): return list(self.rows[0]) if self.rows else []
    def __len__(self): return len(self.rows)
    def __getitem__(self, key): return [r[key] for r in self.rows]
    def map(self, fn, remove_columns=None, batched=False):
        if not batched:
            return Dataset([fn(r) for r in self.rows])
        out = []
        for i in range(0, len(self.rows), 1000):
            chunk = self.rows[i : i + 1000]
            res = fn({k: [r[k] for r in chunk] for k in chunk[0]})
            out += [dict(zip(res, values)) for values in zip(*res.values())]
        return Dataset(out)
    def filter(self, fn): return Dataset([r for r in self.rows if fn(r)])
def load_dataset(builder, data_files, split, sample_by=None):
    text = open(data_files).read()
    if builder == "text":
        return Dataset([{"text": p} for p in text.split("\\n\\n") if p.strip()])
    return Dataset([json.loads(line) for line in text.splitlines() if line.strip()])
`,
};

describe.skipIf(!python)('train_peft.py (python3, stand-in libraries)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'train-peft-'));
  for (const [path, text] of Object.entries(STUBS)) {
    mkdirSync(join(dir, 'stubs', path, '..'), { recursive: true });
    writeFileSync(join(dir, 'stubs', path), text);
  }
  const bundle = (format: AdapterFormat, base: string) => {
    const folder = mkdtempSync(join(dir, 'bundle-'));
    const config = {
      ...{ lora: loraConfig, gralora: graloraConfig, adalora: adaloraConfig }[format],
      base_model_name_or_path: base,
    };
    writeFileSync(join(folder, 'adapter_config.json'), JSON.stringify(config));
    writeFileSync(join(folder, 'train_peft.py'), trainPeftScript('run', base, format));
    return folder;
  };
  const data = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const runScript = (folder: string, args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync('python3', [join(folder, 'train_peft.py'), ...args], {
      encoding: 'utf8',
      cwd: dir,
      env: { ...process.env, PYTHONPATH: join(dir, 'stubs'), ...env },
    });
    return { code: r.status, out: r.stdout + r.stderr };
  };

  it('parses as Python, for every format', () => {
    for (const format of ['lora', 'gralora', 'adalora'] as const) {
      const path = join(bundle(format, 'HuggingFaceTB/SmolLM2-135M'), 'train_peft.py');
      const parsed = spawnSync('python3', ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read())', path], {
        encoding: 'utf8',
      });
      expect(parsed.stderr).toBe('');
      expect(parsed.status).toBe(0);
    }
  });

  it('says --base is required when base_model_name_or_path is neither a folder nor a Hub id', () => {
    const rows = data('ok.jsonl', '{"prompt": "Say hi: ", "completion": "hi there"}\n');
    const local = runScript(bundle('lora', 'stories260K'), ['--data', rows]);
    expect(local.code).toBe(1);
    expect(local.out).toContain(
      "--base is required: adapter_config.json names the base model 'stories260K', which is neither a folder here nor a Hugging Face Hub id (owner/name)",
    );
    expect(local.out).not.toMatch(/Traceback/);
    // A Hub id, an existing folder, or --base: on to training (the stand-in DataLoader stops there).
    mkdirSync(join(dir, 'stories260K'), { recursive: true });
    for (const [base, args] of [
      ['HuggingFaceTB/SmolLM2-135M', []],
      ['stories260K', []],
      ['/nowhere/model', ['--base', 'owner/model']],
    ] as const) {
      const r = runScript(bundle('lora', base), ['--data', rows, ...args]);
      expect(r.out).toContain('reached the DataLoader with 1 rows');
    }
  });

  it("stops with a clear message when no training row is left, instead of torch's DataLoader error", () => {
    const folder = bundle('lora', 'owner/model');
    const short = runScript(folder, [
      '--data',
      data('short.txt', 'Once upon a time.\n\nThe end.\n'),
      '--seq-len',
      '64',
    ]);
    expect(short.code).toBe(1);
    expect(short.out).toMatch(
      /short\.txt: no training rows: its text is 28 tokens, less than one row of --seq-len 64 tokens/,
    );
    expect(short.out).not.toMatch(/num_samples|Traceback/);
    const masked = data(
      'masked.jsonl',
      '{"input_ids": [1, 2, 3], "labels": [-100, -100, -100]}\n{"input_ids": [4, 5], "labels": [4, -100]}\n',
    );
    const unsupervised = runScript(folder, ['--data', masked]);
    expect(unsupervised.code).toBe(1);
    expect(unsupervised.out).toMatch(/masked\.jsonl: no training rows: none of its 2 examples has a supervised token/);
    expect(unsupervised.out).not.toMatch(/num_samples|Traceback/);
    // Enough text for one row trains.
    expect(runScript(folder, ['--data', join(dir, 'short.txt'), '--seq-len', '16']).out).toContain(
      'reached the DataLoader with 1 rows',
    );
  });

  it('names the PEFT version to install when the installed one cannot read the adapter', () => {
    const rows = data('ok2.jsonl', '{"prompt": "a", "completion": "b"}\n');
    const gralora = runScript(bundle('gralora', 'owner/model'), ['--data', rows], { STUB_PEFT_VERSION: '0.18.1' });
    expect(gralora.code).toBe(1);
    expect(gralora.out).toContain(
      'this GRALORA adapter needs PEFT >= 0.19, and PEFT 0.18.1 is installed: pip install -U "peft>=0.19"',
    );
    expect(runScript(bundle('lora', 'owner/model'), ['--data', rows], { STUB_PEFT_VERSION: '0.8.2' }).out).toContain(
      'needs PEFT >= 0.9',
    );
    expect(runScript(bundle('lora', 'owner/model'), ['--data', rows], { STUB_PEFT_VERSION: '0.9.0' }).out).toContain(
      'reached the DataLoader',
    );
  });
});

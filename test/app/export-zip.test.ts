/**
 * The adapter zip the Export panel downloads (src/worker/export-files.ts): a scale-out bundle whose train_peft.py
 * is valid Python that reads the adapter's own config. Moved from e2e/helpers.spec.ts (no browser needed); the
 * bundle's other promises are in test/worker/export-bundle.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strFromU8, unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { adapterZip } from '../../src/worker/export-files';

const spec = parseConfig(JSON.parse(readFileSync('public/demo/model/config.json', 'utf8')));
const hasPython = spawnSync('python3', ['--version']).status === 0;

function bundle() {
  const config = {
    peft_type: 'LORA',
    r: 4,
    lora_alpha: 4,
    target_modules: ['model.layers.0.self_attn.q_proj'],
    rank_pattern: { 'model.layers.0.self_attn.q_proj': 4 },
    alpha_pattern: { 'model.layers.0.self_attn.q_proj': 4 },
    use_rslora: false,
  };
  return adapterZip('GoRA "quoted" \\ name\nwith a newline', {
    modelKey: 'k',
    baseModel: 'stories260K',
    spec,
    format: 'lora',
    config,
    safetensors: new Uint8Array(8),
  });
}

describe('the adapter zip', () => {
  it('is named from the run (quotes, backslashes and newlines dropped) and holds the scale-out bundle', () => {
    const { fileName, bytes } = bundle();
    expect(fileName).toBe('gora-quoted-name-with-a-newline.zip');
    const files = unzipSync(bytes);
    expect(Object.keys(files).sort()).toEqual([
      'README.md',
      'accelerate_config.yaml',
      'adapter_config.json',
      'adapter_model.safetensors',
      'train_peft.py',
    ]);
    expect(strFromU8(files['train_peft.py'])).toContain('json.load(f)');
    expect(strFromU8(files['README.md'])).toContain(
      'accelerate launch --config_file accelerate_config.yaml train_peft.py --data your.jsonl',
    );
  });

  it.skipIf(!hasPython)('train_peft.py parses as Python (python3)', () => {
    const files = unzipSync(bundle().bytes);
    const dir = mkdtempSync(join(tmpdir(), 'bundle-'));
    writeFileSync(join(dir, 'train_peft.py'), files['train_peft.py']);
    const parsed = spawnSync(
      'python3',
      ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read())', join(dir, 'train_peft.py')],
      { encoding: 'utf8' },
    );
    expect(parsed.stderr).toBe('');
    expect(parsed.status).toBe(0);
  });
});

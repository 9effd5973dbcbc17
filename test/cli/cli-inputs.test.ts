/**
 * What the CLI accepts as input: a model folder without tokenizer.json (transformers loads those) trains and
 * evaluates on pre-tokenized {"input_ids"} data; anything that must encode or decode text says which file is
 * missing and why it is needed.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, lastJson, run } from '../helpers/cli';

const FIXTURE = 'test/fixtures/models/tiny-gpt2-vocab100_hf';

describe('cli: a model folder without tokenizer.json', () => {
  let dir: string;
  let model: string;
  let ids: string;
  let text: string;
  beforeAll(async () => {
    await run('node', ['scripts/build-cli.mjs']);
    dir = await mkdtemp(join(tmpdir(), 'lora-cli-inputs-'));
    model = join(dir, 'no-tokenizer');
    await mkdir(model);
    for (const f of await readdir(FIXTURE))
      if (f !== 'tokenizer.json') await copyFile(join(FIXTURE, f), join(model, f));
    ids = join(dir, 'ids.jsonl');
    const rows = [
      { input_ids: [5, 6, 7, 8, 9, 10, 11, 12] },
      { input_ids: [20, 21, 22, 23, 24, 25], labels: [-100, -100, -100, 23, 24, 25] },
      { input_ids: [30, 31, 32, 33, 34, 35, 36] },
      { input_ids: [1, 2, 3, 4] },
    ];
    await writeFile(ids, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    text = join(dir, 'stories.txt');
    await writeFile(text, 'Once upon a time there was a cat.\n\nThe end.\n');
  }, 120_000);

  it('trains on pre-tokenized data, and eval reads the adapter; the loss equals the folder with its tokenizer', async () => {
    const out = join(dir, 'adapter');
    const r = await cli([
      'train',
      '--model',
      model,
      '--data',
      ids,
      '--rank',
      '2',
      '--alpha',
      '4',
      '--steps',
      '2',
      '--batch',
      '2',
      '--seq-len',
      '8',
      '--val-fraction',
      '0',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /has no tokenizer\.json: only pre-tokenized \{"input_ids"\} data can be used.*padded with token 0/,
    );
    expect(lastJson(r.stdout)).toMatchObject({ done: true, steps: 2, train_examples: 4 });
    expect(JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'))).toMatchObject({
      peft_type: 'LORA',
      r: 2,
    });

    const without = await cli(['eval', '--model', model, '--data', ids, '--adapter', out]);
    expect(without.code, without.stderr).toBe(0);
    const withTokenizer = await cli(['eval', '--model', FIXTURE, '--data', ids, '--adapter', out]);
    expect(withTokenizer.code, withTokenizer.stderr).toBe(0);
    expect(lastJson(without.stdout)).toEqual(lastJson(withTokenizer.stdout));
  }, 300_000);

  it('refuses text data, generation and exact match, naming the missing file and why it is needed', async () => {
    for (const cmd of ['eval', 'train']) {
      const r = await cli([
        cmd,
        '--model',
        model,
        '--data',
        text,
        ...(cmd === 'train' ? ['--steps', '1', '--out', join(dir, 'x')] : []),
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        'error: `no-tokenizer` has no tokenizer.json: `stories.txt` is text and must be tokenized; pre-tokenized {"input_ids"} data works without one',
      );
    }
    const gen = await cli(['generate', '--model', model, '--prompt', 'Once']);
    expect(gen.code).toBe(1);
    expect(gen.stderr).toMatch(
      /`no-tokenizer` has no tokenizer\.json: generate encodes the prompt and decodes the continuation/,
    );
    expect(gen.stderr).not.toMatch(/GPU:/); // refused before the GPU is opened
    const em = await cli(['eval', '--model', model, '--data', ids, '--exact-match', '2']);
    expect(em.code).toBe(1);
    expect(em.stderr).toMatch(/has no tokenizer\.json: --exact-match decodes the greedy answers/);
  }, 300_000);
});

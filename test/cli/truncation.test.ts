/**
 * Alpaca prompts longer than the model's context (issue: the loss was NaN at step 0): keep-answer truncation
 * trains on every answer; a plain right cut leaves none, and the run is refused before step 0 with the reason.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, jsonLines, lastJson, run } from '../helpers/cli';

// hf-golden's Qwen3: 128 positions, a 320-token byte-level BPE: every Alpaca prompt is 120 to 160 tokens.
const MODEL = 'test/fixtures/hf-golden/models/qwen3';
const DATA = 'test/fixtures/datasets/alpaca_handmade/alpaca.csv';
const TRAIN = [
  'train',
  '--model',
  MODEL,
  '--data',
  DATA,
  '--seq-len',
  '64',
  '--steps',
  '3',
  '--batch',
  '2',
  '--val-fraction',
  '0',
  '--rank',
  '2',
];

describe('cli train: prompts longer than --seq-len', () => {
  beforeAll(async () => {
    await run('node', ['scripts/build-cli.mjs']);
  });

  it('keep-answer (the default) trains: finite losses, every example kept with its answer', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'lora-trunc-')), 'adapter');
    const r = await cli([...TRAIN, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const steps = jsonLines(r.stdout).filter((l) => 'loss' in l);
    expect(steps).toHaveLength(3);
    for (const s of steps) {
      expect(Number.isFinite(s.loss)).toBe(true);
      expect(s.tokens).toBeGreaterThan(0);
    }
    expect(lastJson(r.stdout)).toMatchObject({
      done: true,
      stop_reason: 'done',
      truncated_examples: 6,
      dropped_examples: 0,
      skipped_batches: 0,
    });
    expect(r.stderr).toMatch(/data: 6 examples \(alpaca\).*; 6 truncated to 64 tokens \(keep-answer\), 0 dropped/);
    // No Hub id in config.json: PEFT's base_model_name_or_path is the path as given, which Python can resolve.
    const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    expect(config.base_model_name_or_path).toBe(MODEL);
  });

  it('right truncation leaves no answer: refused before step 0, naming the flags to change', async () => {
    const r = await cli([...TRAIN, '--truncation', 'right', '--out', '/tmp/never-written']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      'alpaca.csv: none of its 6 examples keeps a supervised token at 64 tokens (truncation "right")',
    );
    expect(r.stderr).toMatch(
      /To train on it, use --truncation keep-answer, which cuts the prompt instead of the answer, raise --seq-len to at least 1[0-2]\d or use shorter prompts\./,
    );
    expect(r.stderr).not.toMatch(/NaN|Seq\. length/);
  });

  it('an unknown --truncation or --prompt-join is refused with the choices', async () => {
    const r = await cli([...TRAIN, '--truncation', 'left', '--out', '/tmp/never-written']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--truncation must be one of keep-answer, right (got "left")');
    const join = await cli([...TRAIN, '--prompt-join', 'tab', '--out', '/tmp/never-written']);
    expect(join.stderr).toContain('--prompt-join must be one of none, space, newline, chat-template (got "tab")');
  });
});

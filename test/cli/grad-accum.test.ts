/** train --grad-accum: parsing and checks naming the flag, and a run that equals the one-batch run of the same rows. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliWithTokenRows, jsonLines, lastJson, tinyTrainArgs } from '../helpers/cli';

describe('cli: train --grad-accum', () => {
  let dir: string;
  let data: string;
  beforeAll(async () => {
    // Four rows (a multiple of both batches: the streams cut the same epochs) with different supervised counts.
    ({ dir, data } = await cliWithTokenRows('lora-cli-accum-'));
  });

  const train = (out: string, ...flags: string[]) => cli(tinyTrainArgs(data, join(dir, out), '--steps', '3', ...flags));

  it('is listed in the help with its default, and a bad value gets an error naming the flag', async () => {
    const help = await cli(['train', '--help']);
    expect(help.stdout).toMatch(/--grad-accum INT {2}micro-batches per optimizer step.*\(default 1\)/);
    for (const [value, message] of [
      ['0', '--grad-accum must be an integer >= 1 (got 0)'],
      ['-2', '--grad-accum must be an integer >= 1 (got -2)'],
      ['1.5', 'train: --grad-accum must be an integer (got "1.5")'],
      ['two', 'train: --grad-accum must be a number (got "two")'],
    ]) {
      const r = await train('bad', '--grad-accum', value);
      expect(r.code, value).toBe(1);
      expect(r.stderr, value).toContain(message);
    }
  });

  it('--batch 1 --grad-accum 2 trains as --batch 2: the same losses and tokens per step, the batch in allocation.json', async () => {
    const whole = await train('whole', '--batch', '2');
    const accum = await train('accum', '--batch', '1', '--grad-accum', '2');
    expect(whole.code, whole.stderr).toBe(0);
    expect(accum.code, accum.stderr).toBe(0);
    const steps = (stdout: string) => jsonLines(stdout).filter((l) => 'loss' in l && 'step' in l);
    const [a, b] = [steps(whole.stdout), steps(accum.stdout)];
    expect(b.map((s) => s.step)).toEqual([0, 1, 2]);
    expect(b.map((s) => s.tokens)).toEqual(a.map((s) => s.tokens));
    b.forEach((s, i) => expect(s.loss).toBeCloseTo(a[i].loss, 4));
    const done = lastJson(accum.stdout);
    expect(done.steps).toBe(3);
    expect(done.buffers_created_after_step0).toBe(0);
    expect(done.submits_per_step).toBe(1);
    const allocation = JSON.parse(await readFile(join(dir, 'accum', 'allocation.json'), 'utf8'));
    expect(allocation.training).toEqual({ batch: 1, gradAccum: 2, effectiveBatch: 2 });
  });
});

/**
 * train --checkpoint-every / --checkpoint-dir / --resume through the bundled CLI: a run killed with SIGKILL loses at
 * most N steps and, resumed, ends exactly as the uninterrupted run (same step lines, same adapter bytes); a resume
 * of a folder that is not a checkpoint, or with other settings, model or data, is refused naming the flag.
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliWithTokenRows, jsonLines, lastJson, tinyTrainArgs } from '../helpers/cli';

/** What a step line says about the run (tokens_per_s is a timing). */
const stepLines = (stdout: string) =>
  jsonLines(stdout)
    .filter((l) => 'loss' in l && 'step' in l)
    .map(({ step, loss, lr, grad_norm, tokens }) => ({ step, loss, lr, grad_norm, tokens }));

/** Runs the CLI and SIGKILLs it as soon as a step line with step >= `killAt` is on its stdout. */
function killedRun(args: string[], killAt: number): Promise<{ stdout: string; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn('node', ['dist-cli/cli.mjs', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stepLines(stdout.slice(0, stdout.lastIndexOf('\n') + 1)).some((l) => l.step >= killAt)) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => resolve({ stdout, signal }));
  });
}

describe('cli: train checkpoints and --resume', () => {
  let dir: string;
  let data: string;
  beforeAll(async () => {
    ({ dir, data } = await cliWithTokenRows('lora-cli-checkpoint-'));
  });

  const flags = (out: string, ...more: string[]) => tinyTrainArgs(data, join(dir, out), ...more);

  it('lists the flags, and refuses bad values naming them', async () => {
    const help = await cli(['train', '--help']);
    expect(help.stdout).toMatch(/--checkpoint-every INT {2}every N steps, write a checkpoint .*\(default 0\)/);
    expect(help.stdout).toMatch(
      /--checkpoint-dir STRING {2}where --checkpoint-every writes \(default: <--out>\/checkpoint\)/,
    );
    expect(help.stdout).toMatch(/--resume STRING {2}continue the run saved in this checkpoint folder exactly/);
    const negative = await cli(flags('bad', '--checkpoint-every', '-1'));
    expect(negative.code).toBe(1);
    expect(negative.stderr).toMatch(/error: --checkpoint-every must be an integer >= 0 \(got -1\)/);
    const dirOnly = await cli(flags('bad', '--checkpoint-dir', join(dir, 'x')));
    expect(dirOnly.stderr).toMatch(
      /error: --checkpoint-dir is where --checkpoint-every N writes .*give --checkpoint-every too/,
    );
  });

  it('kill -9 mid-run loses at most --checkpoint-every steps; --resume ends exactly as the uninterrupted run', async () => {
    const steps = ['--steps', '60'];
    const straight = await cli(flags('straight', ...steps));
    expect(straight.code, straight.stderr).toBe(0);
    const expected = stepLines(straight.stdout);
    expect(expected.map((l) => l.step)).toEqual([...Array(60).keys()]);

    const checkpointDir = join(dir, 'killed', 'checkpoint');
    const killed = await killedRun(flags('killed', ...steps, '--checkpoint-every', '2'), 9);
    expect(killed.signal, 'the run finished before it could be killed').toBe('SIGKILL');
    const printed = stepLines(killed.stdout.slice(0, killed.stdout.lastIndexOf('\n') + 1));
    // Checkpointing changes nothing the run trains: the killed run's steps are the uninterrupted run's.
    expect(printed).toEqual(expected.slice(0, printed.length));
    const manifest = JSON.parse(await readFile(join(checkpointDir, 'checkpoint.json'), 'utf8'));
    const lost = printed.length - manifest.step;
    console.log(`kill -9 after step ${printed.length - 1}: checkpoint at step ${manifest.step}, ${lost} step(s) lost`);
    expect(manifest.step % 2).toBe(0);
    expect(lost).toBeGreaterThanOrEqual(0);
    expect(lost).toBeLessThanOrEqual(2);

    // How often it checkpoints may change on resume: this one does not (each checkpoint is flushed to disk).
    const resumed = await cli(flags('resumed', ...steps, '--resume', checkpointDir));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming ${checkpointDir} at step ${manifest.step} of 60`);
    expect(stepLines(resumed.stdout)).toEqual(expected.slice(manifest.step));
    expect(lastJson(resumed.stdout)).toMatchObject({ done: true, steps: 60, resumed_from_step: manifest.step });
    const adapter = (run: string) => readFile(join(dir, run, 'adapter_model.safetensors'));
    expect((await adapter('resumed')).equals(await adapter('straight'))).toBe(true);
  });

  it('adalora: --resume continues its masks and budget schedule exactly', async () => {
    const adalora = ['--method', 'adalora', '--init-r', '4', '--tinit', '1', '--tfinal', '2', '--steps', '8'];
    const straight = await cli(flags('ada-straight', ...adalora, '--checkpoint-every', '4'));
    expect(straight.code, straight.stderr).toBe(0);
    // The folder keeps the latest checkpoint: after step 4 (none is written after the last step).
    const checkpointDir = join(dir, 'ada-straight', 'checkpoint');
    expect(jsonLines(straight.stdout).filter((l) => 'checkpoint' in l)).toEqual([
      { checkpoint: checkpointDir, steps: 4 },
    ]);
    const resumed = await cli(flags('ada-resumed', ...adalora, '--resume', checkpointDir));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(stepLines(resumed.stdout)).toEqual(stepLines(straight.stdout).slice(4));
    for (const file of ['adapter_model.safetensors', 'adapter_config.json']) {
      const [a, b] = await Promise.all(['ada-straight', 'ada-resumed'].map((r) => readFile(join(dir, r, file))));
      expect(b.equals(a), file).toBe(true);
    }
  });

  it('refuses a folder that is not a checkpoint, and a run with other settings, model or data, naming the flag', async () => {
    const checkpointDir = join(dir, 'source', 'checkpoint');
    const source = await cli(flags('source', '--steps', '4', '--checkpoint-every', '2'));
    expect(source.code, source.stderr).toBe(0);
    const resume = (...more: string[]) => cli(flags('other', '--steps', '4', '--resume', checkpointDir, ...more));

    const notCheckpoint = await cli(flags('other', '--steps', '4', '--resume', dir));
    expect(notCheckpoint.code).toBe(1);
    expect(notCheckpoint.stderr).toContain(
      `error: --resume ${dir}: not a training checkpoint (it has no checkpoint.json`,
    );
    const missing = await cli(flags('other', '--steps', '4', '--resume', join(dir, 'nowhere')));
    expect(missing.stderr).toContain(`error: --resume ${join(dir, 'nowhere')}: no such folder`);

    const settings = await resume('--lr', '0.02', '--method', 'dora', '--rank', '3');
    expect(settings.code).toBe(1);
    expect(settings.stderr).toContain(
      `error: --resume ${checkpointDir}: the checkpoint's run has other settings: --method lora there, dora here; ` +
        '--rank 2 there, 3 here; --lr 0.01 there, 0.02 here. Resume with its settings (only --out, --checkpoint-every',
    );
    const otherData = join(dir, 'other.jsonl');
    await writeFile(otherData, `${await readFile(data, 'utf8')}{"input_ids": [7, 8, 9]}\n`);
    const byData = await cli([...flags('other', '--steps', '4', '--resume', checkpointDir), '--data', otherData]);
    expect(byData.stderr).toContain(
      `error: --data ${otherData}: not the file the checkpoint's run trained on (${data})`,
    );
    const byModel = await resume('--model', 'test/fixtures/models/tiny-random-LlamaForCausalLM_hf');
    expect(byModel.stderr).toMatch(
      /error: --model .*tiny-random-LlamaForCausalLM_hf: not the model the checkpoint's run trained \(.*tiny-gpt2-vocab100_hf\): its config.json differs/,
    );
    // Where it writes and how often it checkpoints may change.
    const ok = await resume('--checkpoint-every', '1', '--checkpoint-dir', join(dir, 'moved'));
    expect(ok.code, ok.stderr).toBe(0);
    expect(lastJson(ok.stdout)).toMatchObject({ done: true, steps: 4, resumed_from_step: 2 });
  });
});

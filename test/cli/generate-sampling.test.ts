/** The generate command's sampling flags: greedy by default and unchanged by them, a seed repeats, --stop cuts. */
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, run } from '../helpers/cli';

const MODEL = 'public/demo/model';
const generate = async (...flags: string[]) => {
  const r = await cli([
    'generate',
    '--model',
    MODEL,
    '--prompt',
    'Once upon a time',
    '--max-new-tokens',
    '24',
    ...flags,
  ]);
  expect(r.code, r.stderr).toBe(0);
  return r;
};

describe('cli generate with sampling', () => {
  beforeAll(async () => {
    await run('node', ['scripts/build-cli.mjs']);
  });

  it('greedy by default; --temperature 0 ignores the filters (and says so); a seed repeats, other seeds differ', async () => {
    const greedy = (await generate()).stdout;
    expect(greedy.trim().length).toBeGreaterThan(10);
    const explicit = await generate('--temperature', '0', '--top-k', '5', '--seed', '9');
    expect(explicit.stdout).toBe(greedy);
    expect(explicit.stderr).toMatch(/--top-k ignored: --temperature 0 is greedy decoding/);

    const sampled = (seed: number) =>
      generate('--temperature', '1.2', '--top-k', '40', '--top-p', '0.95', '--seed', `${seed}`);
    const first = (await sampled(7)).stdout;
    expect((await sampled(7)).stdout).toBe(first);
    const others = [(await sampled(8)).stdout, (await sampled(9)).stdout];
    expect(others.some((o) => o !== first)).toBe(true);
    expect(first).not.toBe(greedy);

    // --stop: the output ends before the first stop string (a word of the sampled text, with an escaped comma beside it).
    const word = first.trim().split(/\s+/)[2];
    const stopped = (
      await generate(
        '--temperature',
        '1.2',
        '--top-k',
        '40',
        '--top-p',
        '0.95',
        '--seed',
        '7',
        '--stop',
        `${word},never\\,ever`,
      )
    ).stdout;
    expect(stopped.trimEnd()).toBe(first.slice(0, first.indexOf(word)).trimEnd());
  });

  it('refuses settings out of range, naming the flag', async () => {
    const r = await cli(['generate', '--model', MODEL, '--temperature', '1', '--top-p', '0', '--min-p', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: generate: --top-p must be in \(0, 1\] \(1 = off\) \(got 0\); --min-p must be in \[0, 1\] \(0 = off\) \(got 2\)$/m,
    );
    expect((await cli(['generate', '--help'])).stdout).toMatch(/--repetition-penalty NUMBER/);
  });
});

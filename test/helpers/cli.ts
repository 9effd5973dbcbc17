/** Runs the bundled CLI (dist-cli/cli.mjs) as other tools do, keeping stdout, stderr and the exit code. */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);

export async function cli(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run('node', ['dist-cli/cli.mjs', ...args], { maxBuffer: 1 << 24 });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}

/** The JSON object on stdout's last line. */
export const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!);

/** Every JSON line on stdout. */
export const jsonLines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));

/**
 * Builds the CLI and writes, in a new temporary folder, data.jsonl: four pre-tokenized rows of different lengths; the
 * second supervises only its last three positions (HF labels, -100 = ignored).
 */
export async function cliWithTokenRows(prefix: string): Promise<{ dir: string; data: string }> {
  await run('node', ['scripts/build-cli.mjs']);
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const data = join(dir, 'data.jsonl');
  const rows = [
    { input_ids: [5, 6, 7, 8, 9, 10, 11, 12] },
    { input_ids: [20, 21, 22, 23, 24, 25], labels: [-100, -100, -100, 23, 24, 25] },
    { input_ids: [30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41] },
    { input_ids: [1, 2, 3, 4] },
  ];
  await writeFile(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return { dir, data };
}

/**
 * `train` of the tiny GPT-2 fixture on `data` (cliWithTokenRows's rows) with the small, seeded settings the CLI's
 * training tests share, writing to `out`; `more` adds flags, or overrides these (the last of a flag wins).
 */
export const tinyTrainArgs = (data: string, out: string, ...more: string[]) => [
  'train',
  '--model',
  'test/fixtures/models/tiny-gpt2-vocab100_hf',
  '--data',
  data,
  '--rank',
  '2',
  '--alpha',
  '4',
  '--seq-len',
  '8',
  '--lr',
  '0.01',
  '--seed',
  '3',
  '--val-fraction',
  '0',
  '--out',
  out,
  ...more,
];

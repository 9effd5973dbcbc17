/**
 * `data`: a dataset read as `train` reads it, streamed. Its report equals an in-process load; with its heap capped
 * at 64 MB the process reads a 200 MB JSONL and a 200 MB CSV (either, read whole, would not fit), reporting progress
 * on stderr and its peak memory on stdout.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelDataset, loadModelDir } from '../../src/engine/load-model';
import { nodeDir } from '../../src/model/formats/node-source';
import { openDataFile } from '../../src/cli/node-files';
import { cli, lastJson, run } from '../helpers/cli';

const C4 = 'test/fixtures/datasets/c4_text_jsonl/c4_demo.jsonl';
const DEMO_MODEL = 'test/fixtures/models/stories260K_llama2c';
const MB = 2 ** 20;

/** Writes `bytes` of lines from `line(i)` to `path`, streaming (the test must not hold the file either). */
async function writeLines(path: string, header: string, bytes: number, line: (i: number) => string): Promise<number> {
  const out = createWriteStream(path);
  let written = 0;
  let rows = 0;
  const write = (s: string) => new Promise<void>((resolve) => (out.write(s) ? resolve() : out.once('drain', resolve)));
  await write(header);
  written += header.length;
  while (written < bytes) {
    let block = '';
    while (block.length < MB && written + block.length < bytes) block += line(rows++);
    await write(block);
    written += block.length;
  }
  await new Promise<void>((resolve) => out.end(resolve));
  return rows;
}

let dir: string;
beforeAll(async () => {
  await run('node', ['scripts/build-cli.mjs']);
  dir = await mkdtemp(join(tmpdir(), 'lora-cli-data-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('cli data', () => {
  it('reports a file as train would read it, equal to an in-process load; --seq-len needs --model', async () => {
    const read = await cli(['data', '--data', C4]);
    expect(read.code).toBe(0);
    expect(lastJson(read.stdout)).toMatchObject({ done: true, rows: 100, malformed: 0, format: 'text' });

    const tokenized = await cli(['data', '--data', C4, '--model', DEMO_MODEL, '--seq-len', '64']);
    expect(tokenized.code).toBe(0);
    const model = await loadModelDir(await nodeDir(DEMO_MODEL));
    const ds = await loadModelDataset(model, await openDataFile(C4), { seqLen: 64 });
    let supervised = 0;
    for (const ex of ds.examples) for (let t = 1; t < ex.labels.length; t++) if (ex.labels[t] !== -100) supervised++;
    expect(lastJson(tokenized.stdout)).toMatchObject({
      rows: 100,
      format: 'text',
      seqLen: 64,
      examples: ds.examples.length,
      tokens: ds.stats.tokens,
      supervisedTokens: supervised,
    });

    const bad = await cli(['data', '--data', C4, '--seq-len', '64']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--seq-len needs --model');
    const missing = await cli(['data', '--data', join(dir, 'nope.jsonl')]);
    expect(missing.stderr).toContain(`--data ${join(dir, 'nope.jsonl')}: no such file`);
  }, 120_000);

  it('streams a 200 MB JSONL and a 200 MB CSV in a 64 MB heap', async () => {
    const words = 'the quick brown fox jumps over the lazy dog and keeps on running far away '.repeat(3);
    const jsonl = join(dir, 'big.jsonl');
    const jsonlRows = await writeLines(jsonl, '', 200 * MB, (i) => `${JSON.stringify({ text: `${i} ${words}` })}\n`);
    const csv = join(dir, 'big.csv');
    const csvRows = await writeLines(
      csv,
      'prompt,completion\n',
      200 * MB,
      (i) => `"Question ${i}: ""why""?\n(two lines)",${words.slice(0, 80 + (i % 40))}\n`,
    );
    for (const [path, rows, format] of [
      [jsonl, jsonlRows, 'text'],
      [csv, csvRows, 'prompt_completion'],
    ] as const) {
      const { stdout, stderr } = await run(
        'node',
        ['--max-old-space-size=64', 'dist-cli/cli.mjs', 'data', '--data', path],
        {
          maxBuffer: 1 << 24,
        },
      );
      const report = lastJson(stdout);
      expect(report).toMatchObject({ done: true, rows, malformed: 0, format });
      expect(report.bytes).toBeGreaterThanOrEqual(200 * MB);
      // Node, V8 and the bundle take ~60 MB before the first byte; the file itself is 200.
      expect(report.peakRssBytes).toBeLessThan(200 * MB);
      expect(stderr).toContain(`data: ${path} 50% read`);
      expect(stderr).toContain(`data: ${path} 100% read`);
    }
  }, 180_000);
});

/**
 * scripts/build-cli.mjs runs before every `npm run cli`: it must skip an up-to-date bundle, and builds running at
 * once must never leave (or let a reader see) a truncated one. Builds into a temporary folder, so the dist-cli/
 * bundle that other tests run stays untouched.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const build = (out: string, ...flags: string[]) =>
  run('node', ['scripts/build-cli.mjs', 'src/cli/main.ts', out, ...flags]);
const identity = async (path: string) => {
  const st = await stat(path);
  return { ino: st.ino, mtimeMs: st.mtimeMs, size: st.size };
};

describe('build-cli', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lora-build-'));
  });

  it('concurrent builds both succeed and leave a whole bundle and map, with no temporary files', async () => {
    const out = join(dir, 'cli.mjs');
    const results = await Promise.allSettled([build(out), build(out), build(out)]);
    for (const r of results) expect(r.status, r.status === 'rejected' ? String(r.reason) : '').toBe('fulfilled');
    await run('node', ['--check', out]);
    expect((await readdir(dir)).sort()).toEqual(['cli.mjs', 'cli.mjs.map']);
    const cli = await run('node', [out, '--help']);
    expect(cli.stdout).toMatch(/Usage: npm run cli/);
  }, 120_000);

  it('skips the build while the bundle is newer than its sources, and rebuilds once a source is newer', async () => {
    const out = join(dir, 'again.mjs');
    await build(out);
    const first = await identity(out);
    const second = await build(out);
    expect(await identity(out)).toEqual(first); // not rewritten: same inode, same time
    expect(second.stderr).toBe('');
    // A bundle older than the sources (as after an edit) is rebuilt, atomically: a new file takes its place.
    await utimes(out, new Date(1_000_000), new Date(1_000_000));
    await build(out);
    const rebuilt = await identity(out);
    expect(rebuilt.mtimeMs).toBeGreaterThan(1_000_000);
    expect(rebuilt.ino).not.toBe(first.ino);
    // --force builds even an up-to-date bundle.
    await build(out, '--force');
    expect((await identity(out)).ino).not.toBe(rebuilt.ino);
  }, 120_000);

  it('a reader running while builds replace the bundle always finds a whole file', async () => {
    // Reading in a tight loop (as `node cli.mjs` does at start) catches a bundle written in place about a third of
    // the time ("SyntaxError: Unexpected end of input"); renamed into place, every read is whole.
    const out = join(dir, 'busy.mjs');
    await build(out);
    let building = true;
    const builds = (async () => {
      for (let i = 0; i < 3; i++) await build(out, '--force');
    })().finally(() => (building = false));
    let reads = 0;
    const truncated: number[] = [];
    while (building) {
      const text = readFileSync(out, 'utf8');
      if (!text.trimEnd().endsWith('//# sourceMappingURL=busy.mjs.map')) truncated.push(text.length);
      reads++;
      await new Promise((r) => setImmediate(r));
    }
    await builds;
    expect(reads).toBeGreaterThan(10);
    expect(truncated).toEqual([]);
    await run('node', ['--check', out]);
  }, 120_000);
});

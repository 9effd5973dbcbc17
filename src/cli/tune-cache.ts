/**
 * The matmul autotune's results between CLI runs: one JSON file per user, keyed by adapter
 * ($XDG_CACHE_HOME/lora-studio/matmul-tune.json, else ~/.cache/...). Delete it, or pass --retune to
 * the bench, to measure again.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TuneCache } from '../kernels/matmul-tune';

export function tuneCachePath(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'lora-studio', 'matmul-tune.json');
}

async function readAll(path: string): Promise<Record<string, string>> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8'));
    return v && typeof v === 'object' ? v : {};
  } catch {
    return {}; // missing or unreadable: tune again
  }
}

export function nodeTuneCache(path = tuneCachePath()): TuneCache {
  return {
    get: async (key) => (await readAll(path))[key] ?? null,
    async set(key, value) {
      const all = await readAll(path);
      all[key] = value;
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, JSON.stringify(all, null, 1));
    },
  };
}

/**
 * The studio's worker loading a large dropped file, in node on Dawn: the file is streamed in batches (Reading with
 * its bytes), a preview of its first rows comes after the first batch, the tokenizer streams it again (Tokenizing with
 * its bytes), and only then does it replace the dataset. A file dropped while another is still loading wins: the
 * older load stops without a word, and its progress never shows after the newer one started.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { WorkerEvent } from '../../src/worker/protocol';
import type { Studio as StudioType } from '../../src/worker/studio';
import { startDemoStudio, StudioHarness } from '../helpers/node-studio';

vi.mock('../../src/worker/tune-cache', () => import('../helpers/memory-tune-cache'));

class Harness extends StudioHarness {
  readonly events: WorkerEvent[] = [];
  protected override onEvent(e: WorkerEvent): void {
    if (e.type === 'datasetProgress' || e.type === 'dataset' || e.type === 'error') this.events.push(e);
  }
}

/** Alpaca rows as JSONL: `rows` of them, about 100 bytes each. */
function alpacaFile(name: string, rows: number): File {
  const lines = Array.from({ length: rows }, (_, i) =>
    JSON.stringify({ instruction: `Add ${i} and ${i + 1}.`, input: '', output: `The sum is ${2 * i + 1}.` }),
  );
  return new File([lines.join('\n')], name);
}

let h: Harness;

beforeAll(async () => {
  h = await startDemoStudio((Studio: typeof StudioType) => new Harness(Studio), { type: 'init' });
}, 180_000);

afterAll(() => vi.unstubAllGlobals());

describe('a large dataset file in the worker', () => {
  it('streams: Reading with bytes, a first-rows preview after the first batch, Tokenizing with bytes, then the dataset', async () => {
    h.events.length = 0;
    const file = alpacaFile('big.jsonl', 16_000);
    await h.send({ type: 'loadDataset', source: { kind: 'file', file } });
    const progress = h.events.filter((e) => e.type === 'datasetProgress');
    const reading = progress.filter((e) => e.stage === 'Reading' && e.total !== undefined);
    const tokenizing = progress.filter((e) => e.stage === 'Tokenizing');
    expect(reading.length).toBeGreaterThanOrEqual(1);
    expect(reading.every((e) => e.total === file.size)).toBe(true);
    const early = progress.filter((e) => e.preview);
    expect(early).toHaveLength(1);
    expect(early[0].preview).toMatchObject({ name: 'big.jsonl', format: 'alpaca', tokenized: true });
    expect(early[0].preview!.rows).toBeLessThan(16_000);
    expect(early[0].preview!.samples[0].segments.map((s) => s.text).join('')).toContain('Add 0 and 1.');
    expect(tokenizing.length).toBeGreaterThanOrEqual(2);
    for (const stage of [reading, tokenizing])
      for (let i = 1; i < stage.length; i++) expect(stage[i].done!).toBeGreaterThanOrEqual(stage[i - 1].done!);
    expect(tokenizing.at(-1)).toMatchObject({ done: file.size, total: file.size });
    // The early preview came before tokenizing started, and the dataset after everything.
    expect(h.events.indexOf(early[0])).toBeLessThan(h.events.indexOf(tokenizing[0]));
    const last = h.events.at(-1)!;
    expect(last.type).toBe('dataset');
    if (last.type === 'dataset')
      expect(last.preview).toMatchObject({ name: 'big.jsonl', rows: 16_000, examples: 16_000 });
  }, 240_000);

  it('a file dropped while another loads replaces it; the first stops silently', async () => {
    h.events.length = 0;
    const first = h.send({ type: 'loadDataset', source: { kind: 'file', file: alpacaFile('first.jsonl', 16_000) } });
    // Let the first load read a few batches (and start tokenizing) before the second file arrives.
    await h.next('datasetProgress', (e) => e.name === 'first.jsonl' && e.stage === 'Tokenizing');
    const secondStart = h.events.length;
    await h.send({ type: 'loadDataset', source: { kind: 'file', file: alpacaFile('second.jsonl', 50) } });
    await first;
    const after = h.events.slice(secondStart);
    expect(after.filter((e) => e.type === 'error')).toEqual([]);
    expect(after.filter((e) => e.type === 'datasetProgress' && e.name === 'first.jsonl')).toEqual([]);
    const datasets = h.events.filter((e) => e.type === 'dataset');
    expect(datasets.map((e) => e.type === 'dataset' && e.preview.name)).toEqual(['second.jsonl']);
  }, 240_000);
});

/**
 * Fuzzing streamed dataset files: however a file is cut into chunks (mid-line, mid-quoted-field, mid-UTF-8 character, between
 * '\r' and '\n') and however small the parsing batches, it reads exactly as it does in one piece: the same records,
 * warnings and errors. CSV is also checked against Papa.parse of the whole text, and a streamed load against a load
 * of the bytes, with progress reported in order. The token arena keeps a loaded file's tokens at 4 bytes each.
 */
import fc from 'fast-check';
import Papa from 'papaparse';
import { setFlagsFromString } from 'node:v8';
import { gzipSync } from 'node:zlib';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  loadDataset,
  readRecordBatches,
  type DatasetFile,
  type RawRecord,
  type ReadProgress,
  type StreamedFile,
  type TokenizeProgress,
} from '../../src/data/index';
import { FakeTokenizer } from '../data/fake-tokenizer';
import { fuzz, FUZZ_TIMEOUT, fuzzRuns, utf8 } from '../helpers/fuzz';

/**
 * `bytes` streamed in the given chunk sizes (cycled), as File.stream() or a Node read stream would deliver it; `lead`
 * bytes first in one chunk when given.
 */
function chunked(name: string, bytes: Uint8Array, sizes: number[], lead = 0): StreamedFile {
  return {
    name,
    size: bytes.length,
    async *chunks() {
      if (lead > 0) yield bytes.slice(0, lead);
      let offset = lead;
      for (let i = 0; offset < bytes.length; i++) {
        const size = sizes[i % sizes.length];
        yield bytes.slice(offset, offset + size);
        offset += size;
      }
    },
    read: async (offset, length) => bytes.slice(offset, offset + length),
  };
}

interface Outcome {
  records?: RawRecord[];
  rows?: number;
  warnings?: string[];
  malformed?: number;
  error?: string;
  progress: ReadProgress[];
}

async function readAll(file: DatasetFile, batchChars?: number): Promise<Outcome> {
  const records: RawRecord[] = [];
  const progress: ReadProgress[] = [];
  try {
    const summary = await readRecordBatches(
      file,
      (batch, p) => {
        for (const r of batch) records.push(r);
        progress.push(p);
      },
      batchChars === undefined ? {} : { batchChars },
    );
    return { records, ...summary, progress };
  } catch (err) {
    return { error: (err as Error).message, progress };
  }
}

/** The same outcome, and a progress that only moves forward and ends at the file's size. */
async function expectSameWhenStreamed(name: string, bytes: Uint8Array, sizes: number[], batchChars: number, lead = 0) {
  const whole = await readAll({ name, bytes }, Number.MAX_SAFE_INTEGER);
  const streamed = await readAll(chunked(name, bytes, sizes, lead), batchChars);
  const { progress, ...rest } = streamed;
  const { progress: _, ...expected } = whole;
  expect(rest).toEqual(expected);
  if (streamed.error) return 'refused' as const;
  for (let i = 1; i < progress.length; i++)
    expect(progress[i].bytesRead).toBeGreaterThanOrEqual(progress[i - 1].bytesRead);
  expect(progress.at(-1)).toEqual({ bytesRead: bytes.length, totalBytes: bytes.length, done: true });
  expect(progress.slice(0, -1).every((p) => !p.done)).toBe(true);
  return 'loaded' as const;
}

const newline = fc.constantFrom('\n', '\r\n', '\r');
/** Text with the characters that trip chunking: multi-byte and astral characters, quotes, tabs, backslashes. */
const awkwardText = fc
  .array(fc.constantFrom('a', 'Zz', ' ', '\t', '"', ',', 'é', '漢', '😀', '\\', 'line', '{', '}', '0'), {
    maxLength: 12,
  })
  .map((parts) => parts.join(''));
const chunkSizes = fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 6 });
const batchChars = fc.integer({ min: 1, max: 3000 });

const jsonlFile = fc
  .array(
    fc.oneof(
      awkwardText.map((text) => JSON.stringify({ text })),
      fc.record({ prompt: awkwardText, completion: awkwardText }).map((r) => JSON.stringify(r)),
      fc.constantFrom('', '   ', '{"broken": ', '[1, 2]', 'null', '"a string"'),
    ),
    { maxLength: 40 },
  )
  .chain((lines) => fc.tuple(fc.constant(lines), fc.array(newline, { minLength: 1, maxLength: 3 }), fc.boolean()))
  .map(([lines, breaks, bom]) => (bom ? '\ufeff' : '') + lines.map((l, i) => l + breaks[i % breaks.length]).join(''));

const textFile = fc
  .array(fc.oneof(awkwardText, fc.constantFrom('', ' ', '\t ', 'x')), { maxLength: 60 })
  .chain((lines) => fc.tuple(fc.constant(lines), fc.array(newline, { minLength: 1, maxLength: 3 })))
  .map(([lines, breaks]) => lines.map((l, i) => l + breaks[i % breaks.length]).join(''));

/** A CSV field: plain, or quoted with doubled quotes and line breaks inside. */
const csvField = fc.oneof(
  fc.constantFrom('a', 'b c', '42', '', 'é漢'),
  fc
    .array(fc.constantFrom('x', '""', '\n', '\r\n', ',', ' ', '😀'), { maxLength: 8 })
    .map((parts) => `"${parts.join('')}"`),
);
const csvRows = fc.array(fc.array(csvField, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 30 });
/**
 * Papa guesses the line ending from the first megabyte, so a CSV is parsed in pieces only after it: each case starts
 * with a megabyte of plain rows (with the case's line ending) for its generated rows to fall in the streamed part.
 */
function csvText(header: string[], rows: string[][], eol: string, delimiter: string, padding: boolean): string {
  // Long rows: few records to compare.
  const padRow = `${header.map((_, i) => `p${i}${'x'.repeat(1000)}`).join(delimiter)}${eol}`;
  const pad = padding ? padRow.repeat(Math.ceil((1 << 20) / padRow.length)) : '';
  return [header.join(delimiter), eol, pad, ...rows.map((r) => r.join(delimiter) + eol)].join('');
}

describe('streamed reads equal reads of the whole file', () => {
  it(
    'JSONL: any chunking, any batch size',
    async () => {
      const tally = await fuzz(
        'streamed jsonl',
        fc.record({ text: jsonlFile, sizes: chunkSizes, batch: batchChars }),
        fuzzRuns(150),
        ({ text, sizes, batch }) => expectSameWhenStreamed('s.jsonl', utf8(text), sizes, batch),
      );
      expect(tally.loaded).toBeGreaterThan(0);
      expect(tally.refused).toBeGreaterThan(0);
    },
    FUZZ_TIMEOUT,
  );

  it(
    'plain text: documents split at blank lines the same way, CR, LF or CRLF',
    async () => {
      const tally = await fuzz(
        'streamed txt',
        fc.record({ text: textFile, sizes: chunkSizes, batch: batchChars }),
        fuzzRuns(150),
        ({ text, sizes, batch }) => expectSameWhenStreamed('s.txt', utf8(text), sizes, batch),
      );
      expect(tally.loaded).toBeGreaterThan(0);
    },
    FUZZ_TIMEOUT,
  );

  it(
    'CSV and TSV: rows cut inside quoted multi-line fields, wrong field counts; records equal Papa.parse of the whole text',
    async () => {
      const tally = await fuzz(
        'streamed csv',
        fc.record({
          header: fc.uniqueArray(fc.constantFrom('prompt', 'completion', 'text', 'id'), { minLength: 1, maxLength: 4 }),
          rows: csvRows,
          eol: fc.constantFrom('\n', '\r\n'),
          tsv: fc.boolean(),
          sizes: chunkSizes,
          batch: batchChars,
          /** Where the padding's one chunk ends, around the end of the first megabyte. */
          lead: fc.integer({ min: -3000, max: 3000 }),
        }),
        fuzzRuns(40, 0.05),
        async ({ header, rows, eol, tsv, sizes, batch, lead }) => {
          const delimiter = tsv ? '\t' : ',';
          const text = csvText(header, rows, eol, delimiter, true);
          const bytes = utf8(text);
          const first = Math.min(bytes.length, (1 << 20) + lead);
          const outcome = await expectSameWhenStreamed(tsv ? 's.tsv' : 's.csv', bytes, sizes, batch, first);
          if (outcome === 'loaded') {
            const papa = Papa.parse<Record<string, string>>(text, { header: true, skipEmptyLines: true, delimiter });
            const mismatched = new Set(papa.errors.map((e) => e.row));
            const expected = papa.data.filter((_, i) => !mismatched.has(i));
            const { records } = await readAll(chunked(tsv ? 's.tsv' : 's.csv', bytes, sizes, first), batch);
            expect(records?.length).toBe(expected.length);
            expect(records?.slice(-rows.length)).toEqual(expected.slice(-rows.length));
          }
          return outcome;
        },
        20_000,
      );
      expect(tally.loaded).toBeGreaterThan(0);
    },
    FUZZ_TIMEOUT,
  );

  it('a doubled quote cut between two chunks stays one quote (found by the long run)', async () => {
    const rows = [[''], ['"😀\r\n"" ,x\n😀"', 'a', 'a'], ['', 'b c', '""', '"\n"" "']];
    const text = csvText(['id'], rows, '\r\n', ',', true);
    expect(await expectSameWhenStreamed('s.csv', utf8(text), [115, 64], 7, (1 << 20) - 3)).toBe('loaded');
  });

  it('a broken quote in the streamed part names its line, as a whole read does', async () => {
    const text = csvText(['a', 'b'], [['1', '2']], '\n', ',', true) + '3,"open\nmore,rows\n';
    const whole = await readAll({ name: 'q.csv', bytes: utf8(text) }, Number.MAX_SAFE_INTEGER);
    const streamed = await readAll(chunked('q.csv', utf8(text), [65536]), 4096);
    expect(streamed.error).toBe(whole.error);
    expect(streamed.error).toMatch(/^q\.csv: broken CSV quoting in row 525 \(line 526\): Quoted field unterminated/);
  });

  it(
    'gzip: a compressed JSONL, CSV or text file reads as its plain bytes; progress counts compressed bytes',
    async () => {
      const tally = await fuzz(
        'streamed gzip',
        fc.record({
          text: fc.oneof(
            jsonlFile.map((t) => ['s.jsonl', t] as const),
            textFile.map((t) => ['s.txt', t] as const),
            csvRows.map((rows) => ['s.csv', csvText(['a', 'b'], rows, '\n', ',', false)] as const),
          ),
          sizes: chunkSizes,
          batch: batchChars,
        }),
        fuzzRuns(60, 0.2),
        async ({ text: file, sizes, batch }) => {
          const name = file[0];
          const text = file[1];
          const plain = await readAll({ name, bytes: utf8(text) }, Number.MAX_SAFE_INTEGER);
          const compressed = gzipSync(text);
          const gz = await readAll(chunked(`${name}.gz`, compressed, sizes), batch);
          // Messages name the file: the .gz's own name.
          const renamed = (o: object) => JSON.parse(JSON.stringify(o).replaceAll(`${name}: `, `${name}.gz: `));
          expect({ ...gz, progress: [] }).toEqual(renamed({ ...plain, progress: [] }));
          if (!gz.error)
            expect(gz.progress.at(-1)).toEqual({
              bytesRead: compressed.length,
              totalBytes: compressed.length,
              done: true,
            });
          return gz.error ? 'refused' : 'loaded';
        },
      );
      expect(tally.loaded).toBeGreaterThan(0);
    },
    FUZZ_TIMEOUT,
  );

  it('a damaged or cut gzip file, or a compressed type that does not stream, is refused naming the file', async () => {
    const compressed = gzipSync('{"text": "a"}\n'.repeat(1000));
    const cut = await readAll(chunked('cut.jsonl.gz', compressed.slice(0, compressed.length - 20), [100]));
    expect(cut.error).toMatch(/^cut\.jsonl\.gz: not a readable gzip file \(/);
    const flipped = compressed.slice();
    flipped[30] ^= 0xff;
    const damaged = await readAll(chunked('bad.jsonl.gz', flipped, [100]));
    expect(damaged.error).toMatch(/^bad\.jsonl\.gz: not a readable gzip file \(/);
    const notGzip = await readAll({ name: 'plain.csv.gz', bytes: utf8('a,b\n1,2\n') });
    expect(notGzip.error).toMatch(/^plain\.csv\.gz: not a readable gzip file \(/);
    const parquet = await readAll({ name: 'x.parquet.gz', bytes: compressed });
    expect(parquet.error).toBe(
      'x.parquet.gz: compressed .parquet is not supported; supported compressed: .txt.gz, .jsonl.gz, .ndjson.gz, .csv.gz, .tsv.gz (Parquet is compressed inside already)',
    );
  });

  it('a JSON array or Parquet file over its limit is refused with what to use instead, without being read', async () => {
    let reads = 0;
    const huge: StreamedFile = {
      name: 'huge.json',
      size: 300 * 2 ** 20,
      chunks: () => {
        throw new Error('not streamed');
      },
      read: async () => {
        reads++;
        return new Uint8Array(0);
      },
    };
    await expect(readRecordBatches(huge, () => {})).rejects.toThrow(
      'huge.json: 300 MB is too large for this format, which is read whole (at most 256 MB); save it as JSONL (one object per line) or CSV, which are read in pieces of any size',
    );
    expect(reads).toBe(0);
  });
});

describe('streamed loads', () => {
  const rows = Array.from({ length: 450 }, (_, i) => ({
    instruction: `Say ${i} twice.`,
    input: i % 3 === 0 ? '' : `context é ${i}`,
    output: `${i} ${i}`,
  }));
  const bytes = utf8(rows.map((r) => JSON.stringify(r)).join('\n'));

  it('equal a load of the bytes: detection from the first 100 rows across batches, rows numbered across batches', async () => {
    const tok = new FakeTokenizer();
    const progress: TokenizeProgress[] = [];
    const file = chunked('a.jsonl', bytes, [97, 4096, 13]);
    const streamed = await loadDataset(file, tok, {
      seqLen: 64,
      batchChars: 2000,
      onProgress: (p) => progress.push(p),
    });
    const whole = await loadDataset({ name: 'a.jsonl', bytes }, tok, { seqLen: 64 });
    const plain = (ds: typeof whole) => ({
      ...ds,
      examples: ds.examples.map((e) => [Array.from(e.inputIds), Array.from(e.labels)]),
    });
    expect(plain(streamed)).toEqual(plain(whole));
    expect(streamed.format).toBe('alpaca');
    expect(streamed.stats.rows).toBe(450);
    expect(progress.length).toBeGreaterThan(5);
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i].bytesRead).toBeGreaterThanOrEqual(progress[i - 1].bytesRead);
      expect(progress[i].examples).toBeGreaterThanOrEqual(progress[i - 1].examples);
    }
    expect(progress.at(-1)).toMatchObject({
      bytesRead: bytes.length,
      totalBytes: bytes.length,
      rows: 450,
      examples: 450,
    });
  });

  it('a bad row far into the file is named by its row number in the whole file', async () => {
    const bad = [...rows.slice(0, 300).map((r) => JSON.stringify({ input_ids: [5, 6], labels: [5, 6], n: r.output }))];
    bad.push('{"input_ids": [5, 999999]}');
    const err = loadDataset(chunked('t.jsonl', utf8(bad.join('\n')), [500]), new FakeTokenizer(), { batchChars: 700 });
    await expect(err).rejects.toThrow(/^t\.jsonl: row 300: input_ids\[1\] = 999999 is not a token id/);
  });
});

describe('the token arena', () => {
  it('holds a loaded file at 8 bytes a token (id and label) whatever the document length, pieces included', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // 4 MB of plain-text documents: about 3.9 million single-character tokens with the fake tokenizer.
    const doc = 'the quick brown fox jumps over the lazy dog. '.repeat(200);
    const text = Array.from({ length: 460 }, (_, i) => `${i} ${doc}`).join('\n\n');
    const bytes = utf8(text);
    gc();
    const before = process.memoryUsage();
    const ds = await loadDataset(chunked('big.txt', bytes, [65536]), new FakeTokenizer(), { seqLen: 128 });
    gc();
    const after = process.memoryUsage();
    const tokens = ds.stats.tokens;
    expect(tokens).toBeGreaterThan(3_500_000);
    const retained = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    // 8 bytes a token in the arena (its last block at most a quarter unused), and ~270 bytes per 128-token piece
    // for the example and its two views. As number[] (8 bytes an element in Node, plus growth slack) ids and labels
    // alone would take 16+.
    expect(retained / tokens).toBeLessThan(12);
    expect(ds.examples[1].inputIds).toBeInstanceOf(Int32Array);
  });
});

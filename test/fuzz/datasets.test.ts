/**
 * Fuzzing dataset files: the real fixtures (JSONL, JSON, CSV, plain text, Parquet) with their bytes mutated, small
 * Parquet files written here with their page headers and footer mutated, generated records of every format with
 * odd field values (through detection, tokenization, chat templates and truncation), and generated Parquet schemas.
 * Each file either loads, with every row accounted for (an example or a counted skip), or fails naming the file.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeMessages } from '../../src/data/chat';
import { loadDataset, readRecords, TRUNCATIONS, type BytesFile, type LoadOptions } from '../../src/data/index';
import { schemaOnlyParquet, type SchemaNode } from '../data/tiny-parquet';
import { FakeTokenizer } from '../data/fake-tokenizer';
import {
  applyByteMutations,
  byteMutations,
  fuzz,
  FUZZ_TIMEOUT,
  fuzzRuns,
  guardAllocations,
  loadsOrRefuses,
  oddValues,
  utf8,
} from '../helpers/fuzz';
import { parquetFile } from './parquet-writer';

const DATA = 'test/fixtures/datasets';
const lines = (path: string, n: number) => readFileSync(`${DATA}/${path}`, 'utf8').split('\n').slice(0, n).join('\n');
const alpacaRows = JSON.parse(readFileSync(`${DATA}/alpaca_handmade/alpaca.json`, 'utf8')) as Record<string, string>[];

/** Text fixtures, cut to a few KB so a case stays fast. */
const TEXT_FILES: BytesFile[] = [
  { name: 'c4.jsonl', bytes: utf8(lines('c4_text_jsonl/c4_demo.jsonl', 6)) },
  { name: 'sft.jsonl', bytes: utf8(lines('chat_messages/v1_sft_demo.jsonl', 8)) },
  { name: 'tools.jsonl', bytes: utf8(lines('chat_messages/reason_tool_use_demo_50.jsonl', 2)) },
  { name: 'alpaca.json', bytes: new Uint8Array(readFileSync(`${DATA}/alpaca_handmade/alpaca.json`)) },
  {
    name: 'kto.json',
    bytes: utf8(JSON.stringify(JSON.parse(readFileSync(`${DATA}/chat_messages/kto_en_demo.json`, 'utf8')).slice(0, 4))),
  },
  { name: 'alpaca.csv', bytes: new Uint8Array(readFileSync(`${DATA}/alpaca_handmade/alpaca.csv`)) },
  { name: 'shakespeare.txt', bytes: utf8(readFileSync(`${DATA}/tinyshakespeare/input.txt`, 'utf8').slice(0, 3000)) },
];

/** Small Parquet files of the alpaca rows (strings, an optional column, integers) in each page layout written. */
const PARQUET_LAYOUTS = [
  {},
  { dictionary: true, snappy: true },
  { v2: true },
  { dictionary: true, v2: true, snappy: true },
];
const ALPACA_PARQUET: BytesFile[] = PARQUET_LAYOUTS.map((layout, i) => ({
  name: `alpaca-${i}.parquet`,
  bytes: parquetFile([
    { name: 'instruction', kind: 'string', values: alpacaRows.map((r) => r.instruction), ...layout },
    { name: 'input', kind: 'string', values: alpacaRows.map((r) => r.input || null), optional: true, ...layout },
    { name: 'output', kind: 'string', values: alpacaRows.map((r) => r.output), ...layout },
    { name: 'id', kind: 'int64', values: alpacaRows.map((_, i) => i), ...layout },
  ]),
}));
const GSM8K: BytesFile = {
  name: 'gsm8k.parquet',
  bytes: new Uint8Array(readFileSync(`${DATA}/gsm8k_parquet_verl/test.parquet`)),
};

const QWEN_TEMPLATE = JSON.parse(readFileSync('test/fixtures/tokenizers/qwen2.5/tokenizer_config.json', 'utf8'))
  .chat_template as string;
const tokenizers = [new FakeTokenizer(), new FakeTokenizer({ chatTemplate: QWEN_TEMPLATE, withBos: false })];

/** Parquet decoding quotes the library's reason, after naming the file and what failed. */
const PARQUET_WRAPPED = /not a readable Parquet file \(|could not decode the Parquet data \(/;
/** Decoding may expand a file (text to records, records to token ids): the limit is generous but not header-sized. */
const allocationLimit = (size: number) => 64 * size + (4 << 20);

const loadOptions: fc.Arbitrary<LoadOptions> = fc.record(
  {
    format: fc.constantFrom('text', 'prompt_completion', 'alpaca', 'chat', 'tokens'),
    seqLen: fc.integer({ min: 2, max: 64 }),
    truncation: fc.constantFrom(...TRUNCATIONS),
    promptJoin: fc.constantFrom('none', 'space', 'newline', 'chat-template'),
  },
  { requiredKeys: [] },
);

/**
 * Loads `file` and checks what any load must satisfy: examples of valid ids with aligned labels, within seqLen, and
 * (without seqLen) every record read either an example or a counted skip: nothing dropped without a word.
 */
async function checkDataset(file: BytesFile, tokenizer: FakeTokenizer, opts: LoadOptions = {}) {
  return guardAllocations(allocationLimit(file.bytes.length), () =>
    loadsOrRefuses(() => loadDataset(file, tokenizer, opts), [file.name], {
      wrapped: PARQUET_WRAPPED,
      async verify(loaded) {
        // Plain loops, one assertion: an expect() per token would make each case a hundred times slower.
        const isId = (id: number) => Number.isInteger(id) && id >= 0 && id < tokenizer.vocabSize;
        const bad = loaded.examples.findIndex(
          (ex) =>
            ex.labels.length !== ex.inputIds.length ||
            ex.inputIds.length === 0 ||
            (opts.seqLen !== undefined && ex.inputIds.length > opts.seqLen) ||
            !ex.inputIds.every(isId) ||
            !ex.labels.every((l) => l === -100 || isId(l)),
        );
        expect(bad, `example ${bad}: ${JSON.stringify(loaded.examples[bad])?.slice(0, 200)}`).toBe(-1);
        expect(loaded.stats.tokens).toBe(loaded.examples.reduce((n, ex) => n + ex.inputIds.length, 0));
        if (opts.seqLen === undefined) {
          const read = await readRecords(file);
          const skippedRecords = loaded.stats.skipped - read.malformed;
          expect(loaded.examples.length + skippedRecords).toBe(loaded.stats.rows);
        }
      },
    }),
  );
}

/** readRecords alone: JSONL and JSON rows are records or counted as malformed, never lost. */
async function checkRecords(file: BytesFile) {
  return guardAllocations(allocationLimit(file.bytes.length), () =>
    loadsOrRefuses(() => readRecords(file), [file.name], {
      wrapped: PARQUET_WRAPPED,
      verify(read) {
        const text = new TextDecoder().decode(file.bytes);
        if (file.name.endsWith('.jsonl')) {
          const nonBlank = text.split(/\r?\n/).filter((l) => l.trim() !== '').length;
          expect(read.records.length + read.malformed).toBe(nonBlank);
        }
        for (const r of read.records) expect(r !== null && typeof r === 'object' && !Array.isArray(r)).toBe(true);
      },
    }),
  );
}

describe('fuzz: dataset files', () => {
  it('real text fixtures with mutated bytes: read and loaded', { timeout: FUZZ_TIMEOUT }, async () => {
    const cases = fc.nat(TEXT_FILES.length - 1).chain((i) =>
      fc.record({
        file: fc.constant(i),
        mutations: byteMutations(TEXT_FILES[i].bytes.length, undefined, 4),
        tokenizer: fc.nat(tokenizers.length - 1),
      }),
    );
    const tally = await fuzz('datasets text files', cases, fuzzRuns(250, 0.5), async (c) => {
      const file = { name: TEXT_FILES[c.file].name, bytes: applyByteMutations(TEXT_FILES[c.file].bytes, c.mutations) };
      await checkRecords(file);
      return checkDataset(file, tokenizers[c.tokenizer]);
    });
    expect(tally.loaded).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('written Parquet files read back exactly', { timeout: FUZZ_TIMEOUT }, async () => {
    for (const file of ALPACA_PARQUET) {
      const read = await readRecords(file);
      expect(read.records, file.name).toEqual(
        alpacaRows.map((r, id) => ({ instruction: r.instruction, input: r.input || null, output: r.output, id })),
      );
    }
  });

  it('written Parquet files with mutated page headers, levels, indices, values and footer', {
    timeout: FUZZ_TIMEOUT,
  }, async () => {
    const cases = fc
      .nat(ALPACA_PARQUET.length - 1)
      .chain((i) => fc.tuple(fc.constant(i), byteMutations(ALPACA_PARQUET[i].bytes.length, undefined, 3)));
    const tally = await fuzz('datasets parquet written', cases, fuzzRuns(300, 0.5), async ([i, mutations]) => {
      const file = { name: ALPACA_PARQUET[i].name, bytes: applyByteMutations(ALPACA_PARQUET[i].bytes, mutations) };
      await checkRecords(file);
      return checkDataset(file, tokenizers[0]);
    });
    expect(tally.loaded).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('the real gsm8k Parquet file with a mutated footer', { timeout: FUZZ_TIMEOUT }, async () => {
    const size = GSM8K.bytes.length;
    const tally = await fuzz(
      'datasets parquet gsm8k',
      byteMutations(size, [size - 12_300, size], 2),
      fuzzRuns(12, 0.005),
      (mutations) => checkRecords({ name: 'gsm8k.parquet', bytes: applyByteMutations(GSM8K.bytes, mutations) }),
    );
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('generated records of every format, with odd values and options', { timeout: FUZZ_TIMEOUT }, async () => {
    const message = fc.record(
      {
        role: fc.oneof(
          fc.constantFrom('user', 'assistant', 'system', 'gpt', 'human', 'tool', 'constructor', '__proto__'),
          oddValues,
        ),
        from: fc.constantFrom('human', 'gpt'),
        content: fc.oneof(
          fc.string({ maxLength: 12 }),
          fc.array(
            fc.record(
              {
                type: fc.constantFrom('text', 'reasoning', 'tool_call', 'image', 7),
                text: fc.oneof(
                  fc.string({ maxLength: 8 }),
                  fc.constant('{"name": "f", "arguments": {"x": 1}}'),
                  oddValues,
                ),
                value: oddValues,
              },
              { requiredKeys: ['type'] },
            ),
            { maxLength: 3 },
          ),
          oddValues,
        ),
        value: fc.string({ maxLength: 8 }),
        tool_calls: oddValues,
      },
      { requiredKeys: [] },
    );
    const record = fc.record(
      {
        text: fc.oneof(fc.string({ maxLength: 30 }), oddValues),
        prompt: fc.oneof(fc.string({ maxLength: 20 }), oddValues),
        completion: fc.oneof(fc.string({ maxLength: 20 }), oddValues),
        instruction: fc.oneof(fc.string({ maxLength: 20 }), oddValues),
        input: fc.oneof(fc.string({ maxLength: 10 }), oddValues),
        output: fc.oneof(fc.string({ maxLength: 20 }), oddValues),
        messages: fc.oneof(fc.array(message, { maxLength: 4 }), oddValues),
        conversations: fc.array(message, { maxLength: 3 }),
        tools: fc.oneof(fc.constant('[{"type": "function", "function": {"name": "f"}}]'), oddValues),
        input_ids: fc.oneof(fc.array(fc.integer({ min: -2, max: 120 }), { maxLength: 8 }), oddValues),
        labels: fc.oneof(fc.array(fc.integer({ min: -101, max: 100 }), { maxLength: 8 }), oddValues),
      },
      { requiredKeys: [] },
    );
    const cases = fc.record({
      records: fc.array(record, { minLength: 1, maxLength: 6 }),
      options: fc.option(loadOptions, { nil: undefined }),
      tokenizer: fc.nat(tokenizers.length - 1),
    });
    const tally = await fuzz('datasets generated records', cases, fuzzRuns(400), (c) => {
      const file = { name: 'gen.jsonl', bytes: utf8(c.records.map((r) => JSON.stringify(r)).join('\n')) };
      return checkDataset(file, tokenizers[c.tokenizer], c.options ?? {});
    });
    expect(tally.loaded).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('chat messages normalize to string roles and contents, or fail saying which message', {
    timeout: FUZZ_TIMEOUT,
  }, async () => {
    const part = fc.oneof(
      oddValues,
      fc.record({ type: oddValues, text: oddValues, value: oddValues }, { requiredKeys: [] }),
      fc.record({ type: fc.constant('tool_call'), text: fc.oneof(oddValues, fc.constant('{"name": "f"}')) }),
    );
    const message = fc.oneof(
      oddValues,
      fc.record(
        {
          role: fc.oneof(
            fc.constantFrom('user', 'ASSISTANT', 'gpt', 'constructor', '__proto__', 'toString', 'hasOwnProperty'),
            oddValues,
          ),
          from: oddValues,
          content: fc.oneof(fc.string({ maxLength: 6 }), fc.array(part, { maxLength: 3 }), oddValues),
          value: oddValues,
          tool_calls: oddValues,
          reasoning_content: oddValues,
        },
        { requiredKeys: [] },
      ),
    );
    await fuzz(
      'chat normalizeMessages',
      fc.oneof(fc.array(message, { maxLength: 4 }), oddValues),
      fuzzRuns(500),
      (messages) =>
        loadsOrRefuses(() => normalizeMessages(messages), ['message', 'messages'], {
          verify(normalized) {
            normalized.forEach((m, i) => {
              const raw = (messages as Record<string, unknown>[])[i];
              expect(typeof m.role).toBe('string');
              expect(typeof m.content).toBe('string');
              // Text content is kept as it is; tool calls are a list (the record's own, then its parts').
              if (typeof raw.content === 'string') expect(m.content).toBe(raw.content);
              if (m.tool_calls !== undefined && m.tool_calls !== null) expect(Array.isArray(m.tool_calls)).toBe(true);
            });
          },
        }),
    );
  });

  it('generated Parquet schemas (lists, maps, structs, legacy repeated fields)', {
    timeout: FUZZ_TIMEOUT,
  }, async () => {
    const leaf: fc.Arbitrary<SchemaNode> = fc.record({
      name: fc.constantFrom('text', 'prompt', 'messages', 'element', 'item', 'array', 'list', 'key', 'value', ''),
      type: fc.option(fc.constantFrom(1, 2, 6), { nil: undefined }),
      repetition: fc.option(fc.constantFrom(0, 1, 2), { nil: undefined }),
      converted: fc.option(fc.constantFrom(0, 1, 2, 3), { nil: undefined }),
    });
    const node: fc.Memo<SchemaNode> = fc.memo((depth) =>
      depth <= 1
        ? leaf
        : fc.record({
            name: leaf.map((l: SchemaNode) => l.name),
            repetition: fc.option(fc.constantFrom(0, 1, 2), { nil: undefined }),
            converted: fc.option(fc.constantFrom(1, 2, 3), { nil: undefined }),
            children: fc.array(node(depth - 1), { maxLength: 2 }),
          }),
    );
    const tally = await fuzz(
      'datasets parquet schemas',
      fc.array(node(4), { minLength: 1, maxLength: 3 }),
      fuzzRuns(400),
      (columns) => checkRecords({ name: 'schema.parquet', bytes: schemaOnlyParquet(columns) }),
    );
    expect(tally.loaded).toBeGreaterThan(0);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SchemaTree } from 'hyparquet';
import { planParquetColumns, readRecords } from '../../src/data/readers';
import { schemaOnlyParquet } from './tiny-parquet';

const FIXTURES = 'test/fixtures/datasets';

function fixture(path: string) {
  return { name: path.split('/').pop()!, bytes: new Uint8Array(readFileSync(`${FIXTURES}/${path}`)) };
}

function inline(name: string, text: string) {
  return { name, bytes: new TextEncoder().encode(text) };
}

describe('txt', () => {
  it('splits documents on one or more blank lines', async () => {
    const text = 'first doc\nline two\n\n\nsecond doc\n  \t\nthird\r\n\r\nfourth\n\n';
    const { records } = await readRecords(inline('a.txt', text));
    expect(records).toEqual([
      { text: 'first doc\nline two' },
      { text: 'second doc' },
      { text: 'third' },
      { text: 'fourth' },
    ]);
  });

  it('keeps a file without blank lines as one document, BOM stripped', async () => {
    const { records } = await readRecords(inline('a.txt', '\uFEFFone\ntwo\nthree\n'));
    expect(records).toEqual([{ text: 'one\ntwo\nthree' }]);
  });

  it('reads the tinyshakespeare fixture', async () => {
    const { records } = await readRecords(fixture('tinyshakespeare/input.txt'));
    expect(records.length).toBeGreaterThan(1000);
    expect(String(records[0].text).startsWith('First Citizen:')).toBe(true);
  });
});

describe('jsonl', () => {
  it('reads the c4 fixture slice', async () => {
    const { records, malformed } = await readRecords(fixture('c4_text_jsonl/c4_demo.jsonl'));
    expect(records).toHaveLength(100);
    expect(malformed).toBe(0);
    expect(typeof records[0].text).toBe('string');
  });

  it('skips malformed lines, counting them and naming their line numbers', async () => {
    const text = '{"text": "a"}\n{"text": oops}\n\n[1, 2]\n{"text": "b"}\n';
    const { records, malformed, warnings } = await readRecords(inline('bad.jsonl', text));
    expect(records).toEqual([{ text: 'a' }, { text: 'b' }]);
    expect(malformed).toBe(2);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^bad\.jsonl: skipped 2 malformed lines: line 2 \(.*\); line 4 \(expected a JSON object, got an array\)/,
    );
  });

  it('fails when no line parses', async () => {
    await expect(readRecords(inline('all-bad.jsonl', 'nope\nnope\n'))).rejects.toThrow(
      /^all-bad\.jsonl: no valid JSON lines; first problem: line 1/,
    );
  });
});

describe('json', () => {
  it('reads an array of objects (chat fixture)', async () => {
    const { records } = await readRecords(fixture('chat_messages/kto_en_demo.json'));
    expect(records).toHaveLength(100);
    expect(Array.isArray(records[0].messages)).toBe(true);
  });

  it('reads the handmade alpaca JSON', async () => {
    const { records } = await readRecords(fixture('alpaca_handmade/alpaca.json'));
    expect(records).toHaveLength(4);
    expect(records[1]).toEqual({
      instruction: 'Translate the sentence into French.',
      input: 'The cat sleeps on the sofa.',
      output: 'Le chat dort sur le canapé.',
    });
  });

  it('unwraps {"data": [...]} and skips non-object items', async () => {
    const { records, malformed, warnings } = await readRecords(inline('d.json', '{"data": [{"text": "x"}, 3]}'));
    expect(records).toEqual([{ text: 'x' }]);
    expect(malformed).toBe(1);
    expect(warnings[0]).toContain('item 1 (expected an object, got a number)');
  });

  it('reports syntax errors with a line number, and wrong shapes', async () => {
    await expect(readRecords(inline('s.json', '[\n{"a": 1},\n{"a" 2}\n]'))).rejects.toThrow(
      /^s\.json: invalid JSON: .*line 3/,
    );
    await expect(readRecords(inline('o.json', '{"rows": []}'))).rejects.toThrow(
      /^o\.json: expected a JSON array of objects or \{"data": \[\.\.\.\]\}, got an object/,
    );
  });
});

describe('csv', () => {
  it('reads quoted multi-line fields and doubled quotes (handmade alpaca CSV)', async () => {
    const { records, malformed } = await readRecords(fixture('alpaca_handmade/alpaca.csv'));
    expect(malformed).toBe(0);
    expect(records).toHaveLength(6);
    expect(records[2].response).toBe(
      'Soft rain on the roof,\npuddles gather the grey sky,\nthe street hums and shines.',
    );
    expect(records[3].input).toBe('She said "hello" twice.');
    expect(records[0]).toEqual({
      instruction: 'Name the largest planet in the solar system.',
      input: '',
      response: 'Jupiter is the largest planet in the solar system.',
      id: '1',
    });
  });

  it('names the row and line of broken quoting', async () => {
    const text = 'prompt,completion\n"multi\nline",ok\nfine,"unterminated\nmore,rows\n';
    await expect(readRecords(inline('q.csv', text))).rejects.toThrow(
      /^q\.csv: broken CSV quoting in row 2 \(line 4\): Quoted field unterminated/,
    );
    const trailing = 'a,b\n1,2\n3,"x"y\n';
    await expect(readRecords(inline('t.csv', trailing))).rejects.toThrow(
      /^t\.csv: broken CSV quoting in row 2 \(line 3\)/,
    );
  });

  it('skips rows with the wrong number of fields', async () => {
    const { records, malformed, warnings } = await readRecords(inline('f.csv', 'a,b\n1,2\n3\n4,5\n'));
    expect(records).toEqual([
      { a: '1', b: '2' },
      { a: '4', b: '5' },
    ]);
    expect(malformed).toBe(1);
    expect(warnings[0]).toMatch(/^f\.csv: skipped 1 malformed row: row 2 \(Too few fields/);
  });

  it('reads TSV', async () => {
    const { records } = await readRecords(inline('t.tsv', 'text\tid\nhello, world\t1\n'));
    expect(records).toEqual([{ text: 'hello, world', id: '1' }]);
  });
});

describe('parquet', () => {
  it('reads the verl GSM8K file: flat columns, message lists, flattened structs', async () => {
    const { records, warnings } = await readRecords(fixture('gsm8k_parquet_verl/test.parquet'));
    expect(records).toHaveLength(1319);
    expect(warnings).toEqual([]);
    const first = records[0];
    expect(first.data_source).toBe('openai/gsm8k');
    expect(first['reward_model.ground_truth']).toBe('18');
    expect(first['extra_info.index']).toBe(0); // INT64 -> number
    expect(String(first['extra_info.question']).startsWith('Janet’s ducks lay 16 eggs')).toBe(true);
    expect(String(first['extra_info.answer']).endsWith('#### 18')).toBe(true);
    expect(first.prompt).toEqual([
      { role: 'system', content: expect.stringContaining('math expert') },
      { role: 'user', content: expect.stringContaining('Janet’s ducks') },
    ]);
  });

  it('rejects a file whose columns are all nested (real schema-only file)', async () => {
    const mapColumn = {
      name: 'meta',
      converted: 1,
      children: [
        {
          name: 'key_value',
          repetition: 2,
          children: [
            { name: 'key', type: 6, repetition: 0, converted: 0 },
            { name: 'value', type: 6, converted: 0 },
          ],
        },
      ],
    };
    const listOfLists = {
      name: 'grid',
      converted: 3,
      children: [
        {
          name: 'list',
          repetition: 2,
          children: [
            {
              name: 'element',
              converted: 3,
              children: [{ name: 'list', repetition: 2, children: [{ name: 'element', type: 1 }] }],
            },
          ],
        },
      ],
    };
    const bytes = schemaOnlyParquet([mapColumn, listOfLists]);
    await expect(readRecords({ name: 'nested.parquet', bytes })).rejects.toThrow(
      /^nested\.parquet: every column is nested \(meta: map, grid: deeply nested list\); supported Parquet columns are flat values/,
    );
  });

  it('reads a schema-only file with usable columns as zero records', async () => {
    const bytes = schemaOnlyParquet([{ name: 'text', type: 6, converted: 0 }]);
    expect(await readRecords({ name: 'empty.parquet', bytes })).toEqual({ records: [], warnings: [], malformed: 0 });
  });

  it('plans columns from a schema: flattens structs, ignores deep nesting (mocked schema)', () => {
    const node = (
      name: string,
      extra: Partial<SchemaTree['element']> = {},
      children: SchemaTree[] = [],
    ): SchemaTree => ({
      element: { name, ...extra },
      children,
      count: 1,
      path: [name],
    });
    const schema = node('schema', {}, [
      node('id', { type: 'INT64' }),
      node('input_ids', { converted_type: 'LIST' }, [
        node('list', { repetition_type: 'REPEATED' }, [node('element', { type: 'INT32' })]),
      ]),
      node('meta', {}, [
        node('source', { type: 'BYTE_ARRAY' }),
        node('tags', { converted_type: 'MAP' }, [
          node('key_value', { repetition_type: 'REPEATED' }, [node('key'), node('value')]),
        ]),
      ]),
      node('messages', { logical_type: { type: 'LIST' } }, [
        node('list', { repetition_type: 'REPEATED' }, [node('element', {}, [node('role'), node('content')])]),
      ]),
      node('legacy', { repetition_type: 'REPEATED', type: 'INT32' }),
    ]);
    const plan = planParquetColumns('m.parquet', schema);
    expect(plan.columns).toEqual(['id', 'input_ids', 'meta', 'messages', 'legacy']);
    expect(plan.fields.map((f) => f.key)).toEqual(['id', 'input_ids', 'meta.source', 'messages', 'legacy']);
    expect(plan.ignored).toEqual(['meta.tags: map']);

    const onlyNested = node('schema', {}, [node('tags', { converted_type: 'MAP' }, [])]);
    expect(() => planParquetColumns('n.parquet', onlyNested)).toThrow(
      /^n\.parquet: every column is nested \(tags: map\)/,
    );
  });

  it('rejects bytes that are not Parquet', async () => {
    await expect(readRecords(inline('x.parquet', 'not parquet at all'))).rejects.toThrow(
      /^x\.parquet: not a readable Parquet file/,
    );
  });
});

describe('unsupported files', () => {
  it('lists the supported extensions', async () => {
    await expect(readRecords(inline('data.xlsx', ''))).rejects.toThrow(
      'data.xlsx: unsupported file type ".xlsx"; supported: .txt, .jsonl, .ndjson, .json, .csv, .tsv, .parquet, and gzip-compressed .txt.gz, .jsonl.gz, .ndjson.gz, .csv.gz, .tsv.gz',
    );
    await expect(readRecords(inline('README', ''))).rejects.toThrow(
      /^README: unsupported file type "\(no extension\)"/,
    );
  });
});

/**
 * A minimal Parquet writer for fuzzing: flat columns of strings (BYTE_ARRAY UTF8) or integers (INT64), one row group,
 * one data page per column (v1 or v2), REQUIRED or OPTIONAL (definition levels, RLE), PLAIN or dictionary-encoded
 * (a dictionary page, then RLE_DICTIONARY indices), uncompressed or snappy (literal blocks only). Small real files
 * whose page headers, levels, indices and values the reader decodes, so mutations reach the decoding and not only
 * the footer.
 */

export interface ParquetColumn {
  name: string;
  kind: 'string' | 'int64';
  /** null only in optional columns. */
  values: (string | number | null)[];
  optional?: boolean;
  dictionary?: boolean;
  v2?: boolean;
  snappy?: boolean;
}

const I32 = 5;
const I64 = 6;
const BINARY = 8;
const LIST = 9;
const STRUCT = 12;

class Compact {
  bytes: number[] = [];
  private last: number[] = [0];

  varint(n: number): void {
    while (n > 0x7f) {
      this.bytes.push((n % 128) | 0x80);
      n = Math.floor(n / 128);
    }
    this.bytes.push(n);
  }

  private field(id: number, type: number): void {
    const delta = id - this.last[this.last.length - 1];
    this.bytes.push((delta << 4) | type);
    this.last[this.last.length - 1] = id;
  }

  i32(id: number, n: number): void {
    this.field(id, I32);
    this.varint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  i64(id: number, n: number): void {
    this.field(id, I64);
    this.varint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  binary(id: number, s: string): void {
    this.field(id, BINARY);
    const utf8 = new TextEncoder().encode(s);
    this.varint(utf8.length);
    this.bytes.push(...utf8);
  }

  bool(id: number, value: boolean): void {
    this.field(id, value ? 1 : 2);
  }

  list(id: number, size: number, type: number): void {
    this.field(id, LIST);
    if (size < 15) this.bytes.push((size << 4) | type);
    else {
      this.bytes.push(0xf0 | type);
      this.varint(size);
    }
  }

  /** A list element (no field header) or a field's struct value. */
  struct(id: number | null, body: () => void): void {
    if (id !== null) this.field(id, STRUCT);
    this.last.push(0);
    body();
    this.bytes.push(0);
    this.last.pop();
  }

  elementI32(n: number): void {
    this.varint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  elementBinary(s: string): void {
    const utf8 = new TextEncoder().encode(s);
    this.varint(utf8.length);
    this.bytes.push(...utf8);
  }
}

const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];

/** RLE definition levels: one run per value (header = 1 << 1, then the level in one byte). */
function levels(column: ParquetColumn): number[] {
  return column.values.flatMap((v) => [1 << 1, v === null ? 0 : 1]);
}

/** PLAIN encoding of values (nulls left out). */
function plain(column: ParquetColumn, values: (string | number | null)[]): number[] {
  const out: number[] = [];
  for (const v of values) {
    if (v === null) continue;
    if (column.kind === 'string') {
      const utf8 = new TextEncoder().encode(String(v));
      out.push(...u32(utf8.length), ...utf8);
    } else {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setBigInt64(0, BigInt(v as number), true);
      out.push(...bytes);
    }
  }
  return out;
}

/** RLE_DICTIONARY indices: the bit width, then one RLE run per value. */
function dictionaryIndices(column: ParquetColumn, dictionary: (string | number)[]): number[] {
  const width = Math.max(1, 32 - Math.clz32(dictionary.length - 1));
  const out = [width];
  for (const v of column.values) {
    if (v === null) continue;
    const index = dictionary.indexOf(v);
    out.push(1 << 1);
    for (let b = 0; b < (width + 7) >> 3; b++) out.push((index >> (8 * b)) & 0xff);
  }
  return out;
}

/** Snappy with literal blocks only (valid, no compression): the length, then blocks of up to 60 bytes. */
function snappy(raw: number[]): number[] {
  const out: number[] = [];
  let n = raw.length;
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  for (let i = 0; i < raw.length; i += 60) {
    const block = raw.slice(i, i + 60);
    out.push((block.length - 1) << 2, ...block);
  }
  return out;
}

interface Page {
  header: number[];
  body: number[];
}

function pageHeader(body: () => void, c: Compact): number[] {
  c.struct(null, body);
  return c.bytes;
}

/** The column's pages: an optional dictionary page, then its data page (v1: levels and values, v2: levels apart). */
function pages(column: ParquetColumn): Page[] {
  const out: Page[] = [];
  const dictionary = [...new Set(column.values.filter((v) => v !== null))] as (string | number)[];
  const encode = (raw: number[]) => (column.snappy ? snappy(raw) : raw);
  if (column.dictionary) {
    const raw = plain(column, dictionary);
    const body = encode(raw);
    const d = new Compact();
    const header = pageHeader(() => {
      d.i32(1, 2); // DICTIONARY_PAGE
      d.i32(2, raw.length);
      d.i32(3, body.length);
      d.struct(7, () => {
        d.i32(1, dictionary.length);
        d.i32(2, 0); // PLAIN
      });
    }, d);
    out.push({ header, body });
  }
  const values = column.dictionary ? dictionaryIndices(column, dictionary) : plain(column, column.values);
  const encoding = column.dictionary ? 8 : 0; // RLE_DICTIONARY : PLAIN
  const defs = column.optional ? levels(column) : [];
  const nulls = column.values.filter((v) => v === null).length;
  const h = new Compact();
  if (column.v2) {
    const body = [...defs, ...encode(values)];
    const header = pageHeader(() => {
      h.i32(1, 3); // DATA_PAGE_V2
      h.i32(2, defs.length + values.length);
      h.i32(3, body.length);
      h.struct(8, () => {
        h.i32(1, column.values.length);
        h.i32(2, nulls);
        h.i32(3, column.values.length);
        h.i32(4, encoding);
        h.i32(5, defs.length);
        h.i32(6, 0);
        h.bool(7, !!column.snappy);
      });
    }, h);
    out.push({ header, body });
  } else {
    const raw = [...(column.optional ? [...u32(defs.length), ...defs] : []), ...values];
    const body = encode(raw);
    const header = pageHeader(() => {
      h.i32(1, 0); // DATA_PAGE
      h.i32(2, raw.length);
      h.i32(3, body.length);
      h.struct(5, () => {
        h.i32(1, column.values.length);
        h.i32(2, encoding);
        h.i32(3, 3); // RLE
        h.i32(4, 3);
      });
    }, h);
    out.push({ header, body });
  }
  return out;
}

export function parquetFile(columns: ParquetColumn[]): Uint8Array {
  const rows = columns[0]?.values.length ?? 0;
  const file: number[] = [0x50, 0x41, 0x52, 0x31];
  const chunks: { offset: number; dataOffset: number; size: number; column: ParquetColumn }[] = [];
  for (const column of columns) {
    const offset = file.length;
    let dataOffset = offset;
    for (const page of pages(column)) {
      dataOffset = file.length;
      file.push(...page.header, ...page.body);
    }
    chunks.push({ offset, dataOffset, size: file.length - offset, column });
  }
  const meta = new Compact();
  meta.struct(null, () => {
    meta.i32(1, 1);
    meta.list(2, columns.length + 1, STRUCT);
    meta.struct(null, () => {
      meta.binary(4, 'schema');
      meta.i32(5, columns.length);
    });
    for (const c of columns) {
      meta.struct(null, () => {
        meta.i32(1, c.kind === 'string' ? 6 : 2);
        meta.i32(3, c.optional ? 1 : 0);
        meta.binary(4, c.name);
        if (c.kind === 'string') meta.i32(6, 0); // UTF8
      });
    }
    meta.i64(3, rows);
    meta.list(4, 1, STRUCT);
    meta.struct(null, () => {
      meta.list(1, chunks.length, STRUCT);
      for (const chunk of chunks) {
        meta.struct(null, () => {
          meta.i64(2, chunk.offset);
          meta.struct(3, () => {
            meta.i32(1, chunk.column.kind === 'string' ? 6 : 2);
            meta.list(2, 1, I32);
            meta.elementI32(chunk.column.dictionary ? 8 : 0);
            meta.list(3, 1, BINARY);
            meta.elementBinary(chunk.column.name);
            meta.i32(4, chunk.column.snappy ? 1 : 0); // SNAPPY : UNCOMPRESSED
            meta.i64(5, chunk.column.values.length);
            meta.i64(6, chunk.size);
            meta.i64(7, chunk.size);
            meta.i64(9, chunk.dataOffset);
            if (chunk.column.dictionary) meta.i64(11, chunk.offset);
          });
        });
      }
      meta.i64(
        2,
        chunks.reduce((n, c) => n + c.size, 0),
      );
      meta.i64(3, rows);
    });
  });
  const length = meta.bytes.length;
  file.push(...meta.bytes, length & 0xff, (length >> 8) & 0xff, (length >> 16) & 0xff, length >>> 24);
  file.push(0x50, 0x41, 0x52, 0x31);
  return new Uint8Array(file);
}

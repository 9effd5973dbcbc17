/**
 * Writes a schema-only Parquet file (zero rows, zero row groups): "PAR1", the FileMetaData in
 * Thrift's compact protocol, its length, "PAR1". Enough to drive the real reader's schema checks
 * without a Parquet writer library.
 */

export interface SchemaNode {
  name: string;
  /** Parquet physical type for leaves: 1 INT32, 2 INT64, 6 BYTE_ARRAY. */
  type?: number;
  /** 0 REQUIRED, 1 OPTIONAL, 2 REPEATED. */
  repetition?: number;
  /** 0 UTF8, 1 MAP, 2 MAP_KEY_VALUE, 3 LIST. */
  converted?: number;
  children?: SchemaNode[];
}

// Thrift compact protocol type codes.
const I32 = 5;
const I64 = 6;
const BINARY = 8;
const LIST = 9;
const STRUCT = 12;

class CompactWriter {
  bytes: number[] = [];
  private lastField: number[] = [0];

  varint(n: number): void {
    while (n > 0x7f) {
      this.bytes.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    this.bytes.push(n);
  }

  zigzag(n: number): void {
    this.varint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  field(id: number, type: number): void {
    const delta = id - this.lastField[this.lastField.length - 1];
    this.bytes.push((delta << 4) | type);
    this.lastField[this.lastField.length - 1] = id;
  }

  i32(id: number, n: number): void {
    this.field(id, I32);
    this.zigzag(n);
  }

  i64(id: number, n: number): void {
    this.field(id, I64);
    this.zigzag(n);
  }

  string(id: number, s: string): void {
    this.field(id, BINARY);
    const utf8 = new TextEncoder().encode(s);
    this.varint(utf8.length);
    this.bytes.push(...utf8);
  }

  listHeader(id: number, size: number, elementType: number): void {
    this.field(id, LIST);
    if (size < 15) this.bytes.push((size << 4) | elementType);
    else {
      this.bytes.push(0xf0 | elementType);
      this.varint(size);
    }
  }

  beginStruct(): void {
    this.lastField.push(0);
  }

  endStruct(): void {
    this.bytes.push(0);
    this.lastField.pop();
  }
}

/** Depth-first, as Parquet stores the schema: each group followed by its children. */
function flattenSchema(node: SchemaNode, out: SchemaNode[] = []): SchemaNode[] {
  out.push(node);
  for (const child of node.children ?? []) flattenSchema(child, out);
  return out;
}

export function schemaOnlyParquet(columns: SchemaNode[]): Uint8Array {
  const elements = flattenSchema({ name: 'schema', children: columns });
  const w = new CompactWriter();
  w.beginStruct(); // FileMetaData
  w.i32(1, 2); // version
  w.listHeader(2, elements.length, STRUCT);
  for (const e of elements) {
    w.beginStruct(); // SchemaElement
    if (e.type !== undefined) w.i32(1, e.type);
    if (e !== elements[0]) w.i32(3, e.repetition ?? 1);
    w.string(4, e.name);
    if (e.children) w.i32(5, e.children.length);
    if (e.converted !== undefined) w.i32(6, e.converted);
    w.endStruct();
  }
  w.i64(3, 0); // num_rows
  w.listHeader(4, 0, STRUCT); // row_groups
  w.endStruct();
  const meta = w.bytes;
  const magic = [0x50, 0x41, 0x52, 0x31];
  const length = [meta.length & 0xff, (meta.length >> 8) & 0xff, (meta.length >> 16) & 0xff, meta.length >>> 24];
  return new Uint8Array([...magic, ...meta, ...length, ...magic]);
}

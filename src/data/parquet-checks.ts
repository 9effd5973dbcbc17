/**
 * Checks of a Parquet file before hyparquet decodes it. hyparquet trusts the sizes a file states: each Thrift list of
 * the footer becomes `new Array(size)`, each page `new Array(num_values)`, each row group `Array(num_rows)`, and one
 * run of the RLE/bit-packed hybrid encoding (levels, dictionary indices) may repeat its value 2^31 times, past the
 * array it fills. A few damaged bytes would then take gigabytes or minutes. These checks bound every such size by
 * the file's own bytes and refuse the file, saying what is wrong, before any of it happens. Whatever they do not
 * understand is left to hyparquet, whose own errors the reader quotes.
 */
import { snappyUncompress, type FileMetaData, type SchemaTree } from 'hyparquet';

// Thrift compact protocol types.
const STOP = 0;
const TRUE = 1;
const FALSE = 2;
const BYTE = 3;
const I16 = 4;
const I32 = 5;
const I64 = 6;
const DOUBLE = 7;
const BINARY = 8;
const LIST = 9;
const STRUCT = 12;

/** FileMetaData nests about six levels (row group, column chunk, metadata, statistics...). */
const MAX_DEPTH = 64;

/**
 * Values (and rows) per byte of file beyond which a file is damage: real datasets hold text, numbers and token ids,
 * a few values per byte at most, and only columns of one repeated value come near this.
 */
const VALUES_PER_BYTE = 64;
const MIN_VALUES = 1 << 20;

/** Snappy expands at most about 21 times (a 3-byte copy of 64 bytes). */
const SNAPPY_EXPANSION = 32;

/** A size a file states that no real file could, or a structure cut short: the file is refused with this reason. */
class Damage extends Error {}

class Reader {
  offset: number;
  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.offset = start;
  }

  get left(): number {
    return this.end - this.offset;
  }

  byte(): number {
    if (this.offset >= this.end) throw new Damage('it ends inside a value');
    return this.bytes[this.offset++];
  }

  /** An unsigned varint of up to 64 bits, as a number (exact up to 2^53). */
  varint(): number {
    let result = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return result;
    }
    throw new Damage('a variable-length integer runs past 10 bytes');
  }

  /** hyparquet's 32-bit varint (shifts wrap, as in its readVarInt): the number it will act on. */
  varint32(): number {
    let result = 0;
    for (let shift = 0; ; shift += 7) {
      const b = this.byte();
      result |= (b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
    }
  }

  skip(n: number): void {
    if (n > this.left) throw new Damage(`a value of ${n} bytes runs past its end`);
    this.offset += n;
  }
}

type Thrift = number | boolean | null | ThriftStruct;
interface ThriftStruct {
  [field: number]: Thrift;
}

/** One value of `type`: numbers and structs are kept, strings and lists skipped (after checking their sizes). */
function readValue(r: Reader, type: number, depth: number): Thrift {
  switch (type) {
    case TRUE:
      return true;
    case FALSE:
      return false;
    case BYTE:
      r.skip(1);
      return null;
    case I16:
    case I32: {
      const n = r.varint32();
      return (n >>> 1) ^ -(n & 1);
    }
    case I64: {
      const n = r.varint();
      return n % 2 ? -(n + 1) / 2 : n / 2;
    }
    case DOUBLE:
      r.skip(8);
      return null;
    case BINARY:
      r.skip(r.varint());
      return null;
    case LIST: {
      const header = r.byte();
      const elementType = header & 0x0f;
      const size = header >> 4 === 15 ? r.varint() : header >> 4;
      // Every element takes at least one byte.
      if (size > r.left) throw new Damage(`a list of ${size} elements is longer than the ${r.left} bytes left`);
      const element = elementType === TRUE || elementType === FALSE ? BYTE : elementType;
      for (let i = 0; i < size; i++) readValue(r, element, depth + 1);
      return null;
    }
    case STRUCT:
      return readStruct(r, depth + 1);
    default:
      throw new Unreadable();
  }
}

/** A Thrift type hyparquet does not read either: it reports that itself. */
class Unreadable extends Error {}

function readStruct(r: Reader, depth: number): ThriftStruct {
  if (depth > MAX_DEPTH) throw new Damage(`its structures nest more than ${MAX_DEPTH} levels deep`);
  const out: ThriftStruct = {};
  let field = 0;
  for (;;) {
    const header = r.byte();
    const type = header & 0x0f;
    if (type === STOP) return out;
    const delta = header >> 4;
    field = delta ? field + delta : (readValue(r, I16, depth) as number);
    out[field] = readValue(r, type, depth);
  }
}

/** Runs `check`, turning Damage into its reason and anything it cannot read into null (hyparquet's to report). */
function problemOf(check: () => void): string | null {
  try {
    check();
    return null;
  } catch (e) {
    if (e instanceof Damage) return e.message;
    if (e instanceof Unreadable || e instanceof RangeError) return null;
    throw e;
  }
}

/** Why the footer of a Parquet file cannot be read safely, or null (also when it is not Parquet at all). */
export function parquetFooterProblem(bytes: Uint8Array): string | null {
  const size = bytes.length;
  if (size < 12) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, size);
  if (view.getUint32(size - 4, true) !== 0x31524150) return null;
  const length = view.getUint32(size - 8, true);
  if (length > size - 8) return null;
  const problem = problemOf(() => readStruct(new Reader(bytes, size - 8 - length, size - 8), 0));
  return problem && `its footer is damaged: ${problem}`;
}

// ---------------------------------------------------------------------------------------------
// Pages

const DATA_PAGE = 0;
const DICTIONARY_PAGE = 2;
const DATA_PAGE_V2 = 3;
const PLAIN_DICTIONARY = 2;
const RLE = 3;
const RLE_DICTIONARY = 8;

const num = (v: Thrift | undefined): number => (typeof v === 'number' ? v : 0);
const struct = (v: Thrift | undefined): ThriftStruct | null => (v !== null && typeof v === 'object' ? v : null);

/** hyparquet's bitWidth: bits to store levels up to `value`. */
const bitWidth = (value: number) => 32 - Math.clz32(value);

/**
 * One RLE/bit-packed hybrid run sequence as hyparquet reads it (until `expected` values are seen): every run must
 * stay within the values the page declares, since hyparquet writes a whole run even past its array.
 */
function checkHybrid(page: Uint8Array, start: number, end: number, width: number, expected: number, what: string) {
  const r = new Reader(page, start, Math.min(end, page.length));
  let seen = 0;
  while (seen < expected) {
    const header = r.varint32();
    const count = header & 1 ? (header >> 1) << 3 : header >>> 1;
    if (count < 0 || count > expected + 8) {
      throw new Damage(`a run of ${count} ${what} in a page of ${expected} values`);
    }
    if (header & 1) r.skip(Math.min(r.left, Math.max(1, Math.ceil((count * width) / 8))));
    else r.skip(Math.min(r.left, (width + 7) >> 3));
    seen += count;
    if (r.left === 0) return;
  }
}

interface ColumnLevels {
  name: string;
  maxRep: number;
  maxDef: number;
  boolean: boolean;
}

/** The levels of the column at `path` as hyparquet computes them, or null when the schema has no such column. */
function columnLevels(schema: SchemaTree, path: string[]): ColumnLevels | null {
  let node = schema;
  let maxRep = 0;
  let maxDef = 0;
  for (const part of path) {
    const child = node.children.find((c) => c.element.name === part);
    if (!child) return null;
    node = child;
    if (node.element.repetition_type === 'REPEATED') maxRep++;
    if (node.element.repetition_type !== 'REQUIRED') maxDef++;
  }
  return { name: path.join('.'), maxRep, maxDef, boolean: node.element.type === 'BOOLEAN' };
}

/** A page's bytes as hyparquet decodes them (snappy expanded), or null when hyparquet would fail on them itself. */
function pageBytes(compressed: Uint8Array, size: number, codec: string): Uint8Array | null {
  if (codec === 'UNCOMPRESSED') return compressed;
  if (codec !== 'SNAPPY') return null;
  if (size < 0 || size > SNAPPY_EXPANSION * compressed.length + 1024) {
    throw new Damage(`a snappy page of ${compressed.length} bytes says it expands to ${size}`);
  }
  const page = new Uint8Array(size);
  try {
    snappyUncompress(compressed, page);
  } catch {
    return null;
  }
  return page;
}

/** Levels, then dictionary indices (or RLE booleans), of one data page as hyparquet reads them. */
function checkDataPage(
  page: Uint8Array,
  start: number,
  values: number,
  encoding: number,
  column: ColumnLevels,
  levelLengths: { rep: number; def: number } | null,
): void {
  const r = new Reader(page, start, page.length);
  const levels = (max: number, length: number | null, what: string) => {
    if (!max) return;
    if (length === null && r.left < 4) throw new RangeError('no level length'); // hyparquet fails reading it too
    const size = length ?? new DataView(page.buffer, page.byteOffset).getUint32(r.offset, true);
    if (length === null) r.skip(4);
    checkHybrid(page, r.offset, r.offset + size, bitWidth(max), values, what);
    r.skip(Math.min(r.left, size));
  };
  levels(column.maxRep, levelLengths?.rep ?? null, 'repetition levels');
  levels(column.maxDef, levelLengths?.def ?? null, 'definition levels');
  if (levelLengths) return; // v2 values may be compressed apart: checked by the caller
  checkValues(page, r.offset, values, encoding, column);
}

function checkValues(page: Uint8Array, start: number, values: number, encoding: number, column: ColumnLevels): void {
  if (start >= page.length) return;
  if (encoding === RLE && column.boolean) {
    if (start + 4 > page.length) return;
    const size = new DataView(page.buffer, page.byteOffset).getUint32(start, true);
    checkHybrid(page, start + 4, start + 4 + size, 1, values, 'booleans');
  } else if ((encoding === PLAIN_DICTIONARY || encoding === RLE_DICTIONARY) && !column.boolean) {
    const width = page[start];
    if (width) checkHybrid(page, start + 1, page.length, width, values, 'dictionary indices');
  }
}

/**
 * The fields the Parquet format requires of page headers. hyparquet computes offsets from them: an absent one makes
 * an offset NaN, which DataView reads as 0 and never advances, so a decoding loop would run forever.
 */
const PAGE_HEADER: [number, string][] = [
  [1, 'type'],
  [2, 'uncompressed_page_size'],
  [3, 'compressed_page_size'],
];
const DATA_PAGE_HEADER: [number, string][] = [
  [1, 'num_values'],
  [2, 'encoding'],
  [3, 'definition_level_encoding'],
  [4, 'repetition_level_encoding'],
];
const DATA_PAGE_HEADER_V2: [number, string][] = [
  [1, 'num_values'],
  [2, 'num_nulls'],
  [3, 'num_rows'],
  [4, 'encoding'],
  [5, 'definition_levels_byte_length'],
  [6, 'repetition_levels_byte_length'],
];
const DICTIONARY_PAGE_HEADER: [number, string][] = [
  [1, 'num_values'],
  [2, 'encoding'],
];

function requireFields(fields: ThriftStruct, required: [number, string][], what: string): void {
  for (const [id, name] of required) {
    if (typeof fields[id] !== 'number') throw new Damage(`a ${what} has no ${name}`);
  }
}

interface ChunkValues {
  /** Values every page declares (dictionary entries included). */
  declared: number;
  /** Level entries of the data pages: a flat column's rows. */
  data: number;
  /** False when a page could not be read through (hyparquet then reports it itself). */
  complete: boolean;
}

/** Every page of one column chunk: sizes against the file, runs against their page. */
function checkChunk(bytes: Uint8Array, begin: number, end: number, codec: string, column: ColumnLevels): ChunkValues {
  const r = new Reader(bytes, begin, end);
  const out: ChunkValues = { declared: 0, data: 0, complete: true };
  try {
    while (r.offset < end - 1) {
      const header = readStruct(r, 0);
      requireFields(header, PAGE_HEADER, 'page header');
      const compressedSize = num(header[3]);
      if (compressedSize < 0 || compressedSize > r.left) return { ...out, complete: false };
      const compressed = bytes.subarray(r.offset, r.offset + compressedSize);
      r.offset += compressedSize;
      const type = num(header[1]);
      const v1 = struct(header[5]);
      const v2 = struct(header[8]);
      const dictionary = struct(header[7]);
      if (type === DATA_PAGE && v1) requireFields(v1, DATA_PAGE_HEADER, 'data page header');
      if (type === DATA_PAGE_V2 && v2) requireFields(v2, DATA_PAGE_HEADER_V2, 'data page header (v2)');
      if (type === DICTIONARY_PAGE && dictionary)
        requireFields(dictionary, DICTIONARY_PAGE_HEADER, 'dictionary page header');
      const values = Math.max(0, num((type === DATA_PAGE ? v1 : type === DATA_PAGE_V2 ? v2 : dictionary)?.[1]));
      out.declared += values;
      if (type === DATA_PAGE && v1) {
        out.data += values;
        const page = pageBytes(compressed, num(header[2]), codec);
        if (page) checkDataPage(page, 0, values, num(v1[2]), column, null);
      } else if (type === DATA_PAGE_V2 && v2) {
        out.data += values;
        const rep = num(v2[6]);
        const def = num(v2[5]);
        checkDataPage(compressed, 0, values, num(v2[4]), column, { rep, def });
        const rest = compressed.subarray(Math.min(compressed.length, Math.max(0, rep + def)));
        const page = v2[7] === false ? rest : pageBytes(rest, num(header[2]) - rep - def, codec);
        if (page) checkValues(page, 0, values, num(v2[4]), column);
      } else if (type === DICTIONARY_PAGE) {
        pageBytes(compressed, num(header[2]), codec);
      }
    }
  } catch (e) {
    if (e instanceof Damage) throw new Damage(`column ${column.name}: ${e.message}`);
    if (e instanceof Unreadable || e instanceof RangeError) return { ...out, complete: false };
    throw e;
  }
  return out;
}

/**
 * Why the pages of `columns` (top-level names, as the reader decodes them) cannot be decoded safely, or null: values
 * and rows bounded by the file's size, every run within its page, flat columns holding their row group's rows.
 */
export function parquetPagesProblem(
  bytes: Uint8Array,
  metadata: FileMetaData,
  schema: SchemaTree,
  columns: string[],
): string | null {
  const limit = Math.max(MIN_VALUES, VALUES_PER_BYTE * bytes.length);
  const rows = metadata.row_groups.reduce((n, g) => n + Number(g.num_rows), 0);
  if (rows > limit) return `its row groups declare ${rows} rows, more than a ${bytes.length}-byte file can hold`;
  let total = 0;
  return problemOf(() => {
    metadata.row_groups.forEach((group, g) => {
      for (const chunk of group.columns) {
        const meta = chunk.meta_data;
        if (!meta || !columns.includes(meta.path_in_schema[0])) continue;
        const column = columnLevels(schema, meta.path_in_schema);
        if (!column) continue;
        const begin = Number(meta.dictionary_page_offset || meta.data_page_offset);
        const end = begin + Number(meta.total_compressed_size);
        if (!(begin >= 0 && end <= bytes.length && begin <= end)) {
          throw new Damage(`column ${column.name} of row group ${g} says it lies at bytes ${begin}..${end}`);
        }
        const values = checkChunk(bytes, begin, end, meta.codec, column);
        total += values.declared;
        if (total > limit) throw new Damage(`its pages declare more than ${limit} values`);
        if (values.complete && !column.maxRep && values.data < Number(group.num_rows)) {
          throw new Damage(
            `row group ${g} declares ${group.num_rows} rows, but column ${column.name} holds ${values.data} values`,
          );
        }
      }
    });
  });
}

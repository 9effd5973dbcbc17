/**
 * File -> raw records. One reader per file type, chosen by extension. Readers never guess the
 * dataset format (detect.ts does); they only turn bytes into rows, counting and reporting rows
 * they had to skip. Every error message starts with the file name.
 */
import Papa from 'papaparse';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import type { SchemaTree } from 'hyparquet';
import { parquetFooterProblem, parquetPagesProblem } from './parquet-checks';
import type { DatasetFile, RawRecord } from './types';

export interface ReadResult {
  records: RawRecord[];
  /** Human-readable notes about skipped rows or ignored columns. */
  warnings: string[];
  /** Rows that could not be parsed and were skipped. */
  malformed: number;
}

export const SUPPORTED_EXTENSIONS = ['.txt', '.jsonl', '.ndjson', '.json', '.csv', '.tsv', '.parquet'] as const;

/** How many offending line/row numbers a warning lists before "and N more". */
const LISTED_PROBLEMS = 5;

export async function readRecords(file: DatasetFile): Promise<ReadResult> {
  const ext = extensionOf(file.name);
  switch (ext) {
    case '.txt':
      return readText(decodeUtf8(file.bytes));
    case '.jsonl':
    case '.ndjson':
      return readJsonl(file.name, decodeUtf8(file.bytes));
    case '.json':
      return readJson(file.name, decodeUtf8(file.bytes));
    case '.csv':
      return readCsv(file.name, decodeUtf8(file.bytes), ',');
    case '.tsv':
      return readCsv(file.name, decodeUtf8(file.bytes), '\t');
    case '.parquet':
      return readParquet(file.name, file.bytes);
    default:
      throw new Error(
        `${file.name}: unsupported file type "${ext || '(no extension)'}"; supported: ${SUPPORTED_EXTENSIONS.join(', ')}`,
      );
  }
}

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(dot).toLowerCase();
}

/** UTF-8 without the byte-order mark some editors write (it would end up in the first field name). */
function decodeUtf8(bytes: Uint8Array): string {
  const text = new TextDecoder('utf-8').decode(bytes);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Plain text: documents are separated by one or more blank lines; no blank line = one document. */
export function readText(text: string): ReadResult {
  const documents = text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n(?:[ \t]*\n)*/)
    .map((doc) => doc.replace(/^(?:[ \t]*\n)+/, '').trimEnd())
    .filter((doc) => doc.trim().length > 0);
  return { records: documents.map((text) => ({ text })), warnings: [], malformed: 0 };
}

/** One JSON object per line. Bad lines are skipped and reported with their 1-based line numbers. */
export function readJsonl(name: string, text: string): ReadResult {
  const records: RawRecord[] = [];
  const problems: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    try {
      const value: unknown = JSON.parse(line);
      if (isPlainObject(value)) records.push(value);
      else problems.push(`line ${i + 1} (expected a JSON object, got ${describeJson(value)})`);
    } catch (err) {
      problems.push(`line ${i + 1} (${(err as Error).message})`);
    }
  }
  if (records.length === 0 && problems.length > 0) {
    throw new Error(`${name}: no valid JSON lines; first problem: ${problems[0]}`);
  }
  return { records, warnings: problemWarning(name, 'malformed line', problems), malformed: problems.length };
}

/** A JSON array of objects, or an object wrapping that array as {"data": [...]}. */
export function readJson(name: string, text: string): ReadResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${name}: invalid JSON: ${withLineNumber(text, (err as Error).message)}`);
  }
  const rows = Array.isArray(value) ? value : isPlainObject(value) && Array.isArray(value.data) ? value.data : null;
  if (rows === null) {
    throw new Error(`${name}: expected a JSON array of objects or {"data": [...]}, got ${describeJson(value)}`);
  }
  const records: RawRecord[] = [];
  const problems: string[] = [];
  rows.forEach((row: unknown, i: number) => {
    if (isPlainObject(row)) records.push(row);
    else problems.push(`item ${i} (expected an object, got ${describeJson(row)})`);
  });
  if (records.length === 0 && problems.length > 0) {
    throw new Error(`${name}: the array holds no objects; first problem: ${problems[0]}`);
  }
  return { records, warnings: problemWarning(name, 'malformed item', problems), malformed: problems.length };
}

/** JSON.parse reports a character position; people look for lines. */
function withLineNumber(text: string, message: string): string {
  const match = /position (\d+)/.exec(message);
  if (!match) return message;
  const position = Number(match[1]);
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `${message} (line ${line}, column ${column})`;
}

/**
 * CSV/TSV with a header row (RFC 4180 quoting, multi-line quoted fields). Broken quoting throws:
 * an unterminated quote swallows the rest of the file, so no row after it can be trusted.
 * Rows with the wrong number of fields are skipped and reported.
 */
export function readCsv(name: string, text: string, delimiter: ',' | '\t'): ReadResult {
  const parsed = Papa.parse<Record<string, string>>(text, { header: true, skipEmptyLines: true, delimiter });
  const quoteError = parsed.errors.find((e) => e.type === 'Quotes');
  if (quoteError) {
    const line = quoteError.index === undefined ? '?' : text.slice(0, quoteError.index).split('\n').length;
    throw new Error(
      `${name}: broken CSV quoting in row ${quoteError.row} (line ${line}): ${quoteError.message}. ` +
        'A quoted field must end with a quote, and a quote inside a field is written twice ("").',
    );
  }
  const badRows = new Set<number>();
  const problems: string[] = [];
  for (const e of parsed.errors) {
    if (e.row === undefined || badRows.has(e.row)) continue;
    badRows.add(e.row);
    // Papa counts field-mismatch rows from 0 after the header; people count data rows from 1.
    problems.push(`row ${e.row + 1} (${e.message})`);
  }
  const fields = parsed.meta.fields ?? [];
  if (fields.length === 0) throw new Error(`${name}: the CSV has no header row`);
  const records = parsed.data.filter((_, i) => !badRows.has(i));
  // Not "the file is empty": say what it does hold.
  if (records.length === 0 && badRows.size === 0)
    throw new Error(`${name}: the header row (${fields.join(', ')}) has no data rows under it`);
  if (records.length === 0)
    throw new Error(
      `${name}: none of its ${badRows.size} data row${badRows.size > 1 ? 's' : ''} has the header's ${fields.length} fields (${fields.join(', ')}): ${problems.slice(0, 3).join('; ')}`,
    );
  return { records, warnings: problemWarning(name, 'malformed row', problems), malformed: badRows.size };
}

// ---------------------------------------------------------------------------------------------
// Parquet

/** One usable field: its name in the records and the path that reaches it in a decoded row. */
interface ParquetField {
  key: string;
  path: string[];
}

export interface ParquetPlan {
  /** Top-level columns to decode. */
  columns: string[];
  /** Fields the records will hold; struct members are flattened to dotted names ("meta.source"). */
  fields: ParquetField[];
  /** Columns (or struct members) skipped because they nest too deeply, with what they are. */
  ignored: string[];
}

/**
 * Decides which columns a Parquet file contributes. Usable: flat values (strings, numbers),
 * lists of flat values (input_ids) and lists of flat structs (chat messages: [{role, content}]).
 * Struct columns are flattened into dotted fields. Anything deeper (maps, lists of lists,
 * lists of structs holding lists) is ignored; a file with nothing but such columns is an error.
 */
export function planParquetColumns(name: string, schema: SchemaTree): ParquetPlan {
  const plan: ParquetPlan = { columns: [], fields: [], ignored: [] };
  for (const column of schema.children) {
    const before = plan.fields.length;
    collectFields(column, [], plan);
    if (plan.fields.length > before) plan.columns.push(column.element.name);
  }
  if (plan.fields.length === 0) {
    throw new Error(
      `${name}: every column is nested (${plan.ignored.join(', ') || 'no columns'}); ` +
        'supported Parquet columns are flat values (strings, numbers), lists of values (input_ids) ' +
        'and lists of flat structs (chat messages); flatten the nested columns before loading the file',
    );
  }
  return plan;
}

function collectFields(node: SchemaTree, parents: string[], plan: ParquetPlan): void {
  const path = [...parents, node.element.name];
  const key = path.join('.');
  const shape = describeNode(node);
  if (shape === 'struct') {
    for (const child of node.children) collectFields(child, path, plan);
  } else if (shape === 'value' || shape === 'list of values' || shape === 'list of structs') {
    plan.fields.push({ key, path });
  } else {
    plan.ignored.push(`${key}: ${shape}`);
  }
}

type NodeShape =
  | 'value'
  | 'struct'
  | 'list of values'
  | 'list of structs'
  | 'map'
  | 'deeply nested list'
  | 'list annotation without a repeated field';

function describeNode(node: SchemaTree): NodeShape {
  const { element } = node;
  if (isMapNode(node)) return 'map';
  // A LIST must wrap a repeated field; a file that annotates anything else is damaged: its column is ignored.
  if (isListNode(node) && node.children.length === 0) return 'list annotation without a repeated field';
  if (isListNode(node)) {
    const item = listItem(node);
    if (item.children.length === 0) return 'list of values';
    const flatStruct = !isListNode(item) && !isMapNode(item) && item.children.every((c) => isFlatValue(c));
    return flatStruct ? 'list of structs' : 'deeply nested list';
  }
  if (element.repetition_type === 'REPEATED') {
    // Legacy (un-annotated) repeated field: the node itself is the list item.
    if (node.children.length === 0) return 'list of values';
    return node.children.every((c) => isFlatValue(c)) ? 'list of structs' : 'deeply nested list';
  }
  return node.children.length === 0 ? 'value' : 'struct';
}

function isFlatValue(node: SchemaTree): boolean {
  return node.children.length === 0 && node.element.repetition_type !== 'REPEATED';
}

function isListNode(node: SchemaTree): boolean {
  return node.element.converted_type === 'LIST' || node.element.logical_type?.type === 'LIST';
}

function isMapNode(node: SchemaTree): boolean {
  const { element } = node;
  return (
    element.converted_type === 'MAP' ||
    element.converted_type === 'MAP_KEY_VALUE' ||
    element.logical_type?.type === 'MAP'
  );
}

/** The element node of a LIST column (3-level standard layout, or the 2-level legacy one). */
function listItem(node: SchemaTree): SchemaTree {
  const repeated = node.children[0];
  if (repeated.children.length === 1 && !['array', `${node.element.name}_tuple`].includes(repeated.element.name)) {
    return repeated.children[0];
  }
  return repeated;
}

export async function readParquet(name: string, bytes: Uint8Array): Promise<ReadResult> {
  const footer = parquetFooterProblem(bytes);
  if (footer) throw new Error(`${name}: not a readable Parquet file (${footer})`);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let metadata: ReturnType<typeof parquetMetadata>;
  let schema: SchemaTree;
  try {
    metadata = parquetMetadata(buffer);
    // The schema tree follows num_children as written: a damaged count reads past the schema's elements.
    schema = parquetSchema(metadata);
  } catch (err) {
    throw new Error(`${name}: not a readable Parquet file (${(err as Error).message})`);
  }
  const plan = planParquetColumns(name, schema);
  const pages = parquetPagesProblem(bytes, metadata, schema, plan.columns);
  if (pages) throw new Error(`${name}: could not decode the Parquet data (${pages})`);
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file: buffer, metadata, columns: plan.columns });
  } catch (err) {
    throw new Error(`${name}: could not decode the Parquet data (${(err as Error).message})`);
  }
  const records = rows.map((row) => {
    const record: RawRecord = {};
    for (const field of plan.fields) record[field.key] = plainValue(pathValue(row, field.path));
    return record;
  });
  const warnings = plan.ignored.length
    ? [`${name}: ignored ${plan.ignored.length} nested column(s): ${plan.ignored.join(', ')}`]
    : [];
  return { records, warnings, malformed: 0 };
}

function pathValue(row: Record<string, unknown>, path: string[]): unknown {
  let value: unknown = row;
  for (const part of path) {
    if (!isPlainObject(value)) return undefined;
    value = value[part];
  }
  return value;
}

/** Parquet INT64 decodes to BigInt; the rest of the pipeline works with plain numbers. */
function plainValue(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView))) {
    return Array.from(value as ArrayLike<unknown>, plainValue);
  }
  if (isPlainObject(value)) {
    const out: RawRecord = {};
    for (const [k, v] of Object.entries(value)) out[k] = plainValue(v);
    return out;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function problemWarning(name: string, what: string, problems: string[]): string[] {
  if (problems.length === 0) return [];
  const listed = problems.slice(0, LISTED_PROBLEMS).join('; ');
  const more = problems.length > LISTED_PROBLEMS ? `; and ${problems.length - LISTED_PROBLEMS} more` : '';
  return [`${name}: skipped ${problems.length} ${what}${problems.length === 1 ? '' : 's'}: ${listed}${more}`];
}

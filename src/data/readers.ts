/**
 * File -> raw records. One reader per file type, chosen by extension. Readers never guess the
 * dataset format (detect.ts does); they only turn bytes into rows, counting and reporting rows
 * they had to skip. Every error message starts with the file name.
 */
import Papa from 'papaparse';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import type { SchemaTree } from 'hyparquet';
import { parquetFooterProblem, parquetPagesProblem } from './parquet-checks';
import { datasetFileSize, fileChunks, readWholeFile } from './dataset-file';
import { gunzipStream, plainStream, type ByteStream } from './gzip';
import type { DatasetFile, RawRecord } from './types';

export interface ReadResult {
  records: RawRecord[];
  /** Human-readable notes about skipped rows or ignored columns. */
  warnings: string[];
  /** Rows that could not be parsed and were skipped. */
  malformed: number;
}

/** What a streamed read reports at the end: the records went to the batch handler. */
export type ReadSummary = Omit<ReadResult, 'records'> & { rows: number };

export interface ReadProgress {
  bytesRead: number;
  totalBytes: number;
  /** The last batch: every record has been handed over. */
  done: boolean;
}

export type RecordBatchHandler = (records: RawRecord[], progress: ReadProgress) => void | Promise<void>;

export interface StreamOptions {
  /** Characters of text parsed per batch: what is held in memory at once, and the step of the progress. */
  batchChars?: number;
}

export const SUPPORTED_EXTENSIONS = ['.txt', '.jsonl', '.ndjson', '.json', '.csv', '.tsv', '.parquet'] as const;
/** The line formats also stream gzip-compressed (`data.jsonl.gz`). */
export const GZIP_EXTENSIONS = ['.txt.gz', '.jsonl.gz', '.ndjson.gz', '.csv.gz', '.tsv.gz'] as const;

/** About a megabyte of text per batch. */
const BATCH_CHARS = 1 << 20;
/** A JSON array or a Parquet file is parsed whole: above these sizes the tab would run out of memory first. */
const WHOLE_JSON_LIMIT = 256 * 2 ** 20;
const WHOLE_PARQUET_LIMIT = 512 * 2 ** 20;
const STREAMED_INSTEAD = 'save it as JSONL (one object per line) or CSV, which are read in pieces of any size';

/** How many offending line/row numbers a warning lists before "and N more". */
const LISTED_PROBLEMS = 5;

/** The whole file's records (small files, tests). Large files go through readRecordBatches. */
export async function readRecords(file: DatasetFile): Promise<ReadResult> {
  const records: RawRecord[] = [];
  const summary = await readRecordBatches(file, (batch) => {
    for (const record of batch) records.push(record);
  });
  return { records, warnings: summary.warnings, malformed: summary.malformed };
}

/**
 * Streams the file's records to `onBatch`, a batch at a time, in file order; the last call has read every byte.
 * JSONL, CSV/TSV and text are parsed in pieces and never held whole; a JSON array and Parquet are read whole
 * (up to a limit). Errors start with the file name.
 */
export async function readRecordBatches(
  file: DatasetFile,
  onBatch: RecordBatchHandler,
  opts: StreamOptions = {},
): Promise<ReadSummary> {
  const gzip = file.name.toLowerCase().endsWith('.gz');
  const ext = extensionOf(gzip ? file.name.slice(0, -3) : file.name);
  const parser = lineParser(file.name, ext);
  if (parser) {
    const bytes = gzip ? gunzipStream(file.name, fileChunks(file)) : plainStream(fileChunks(file));
    return streamText(bytes, datasetFileSize(file), parser, onBatch, opts);
  }
  if (gzip) {
    throw new Error(
      `${file.name}: compressed ${ext || 'files of this type'} is not supported; supported compressed: ${GZIP_EXTENSIONS.join(', ')} (Parquet is compressed inside already)`,
    );
  }
  switch (ext) {
    case '.json': {
      const bytes = await readWholeFile(file, WHOLE_JSON_LIMIT, STREAMED_INSTEAD);
      return wholeRead(readJson(file.name, decodeUtf8(bytes)), bytes.length, onBatch);
    }
    case '.parquet': {
      const bytes = await readWholeFile(file, WHOLE_PARQUET_LIMIT, STREAMED_INSTEAD);
      return wholeRead(await readParquet(file.name, bytes), bytes.length, onBatch);
    }
    default:
      throw new Error(
        `${file.name}: unsupported file type "${ext || '(no extension)'}"; supported: ${SUPPORTED_EXTENSIONS.join(', ')}, and gzip-compressed ${GZIP_EXTENSIONS.join(', ')}`,
      );
  }
}

/** The parser of a format read line by line (and so streamed), or null. */
function lineParser(name: string, ext: string): TextRecordParser | null {
  switch (ext) {
    case '.txt':
      return new TextRecords(name);
    case '.jsonl':
    case '.ndjson':
      return new JsonlRecords(name);
    case '.csv':
      return new CsvRecords(name, ',');
    case '.tsv':
      return new CsvRecords(name, '\t');
    default:
      return null;
  }
}

async function wholeRead(read: ReadResult, bytes: number, onBatch: RecordBatchHandler): Promise<ReadSummary> {
  await onBatch(read.records, { bytesRead: bytes, totalBytes: bytes, done: true });
  return { rows: read.records.length, warnings: read.warnings, malformed: read.malformed };
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

/** A format parsed from text in pieces: each piece gives the records it completes. */
interface TextRecordParser {
  push(text: string): RawRecord[];
  /** The records left at the end of the file; throws when the file as a whole holds none. */
  end(): RawRecord[];
  summary(): Omit<ReadResult, 'records'>;
}

async function streamText(
  bytes: ByteStream,
  totalBytes: number,
  parser: TextRecordParser,
  onBatch: RecordBatchHandler,
  opts: StreamOptions,
): Promise<ReadSummary> {
  const batchChars = opts.batchChars ?? BATCH_CHARS;
  // Stream mode keeps a character split between two chunks whole; the byte-order mark is dropped.
  const decoder = new TextDecoder('utf-8');
  let pending = '';
  let rows = 0;
  for await (const chunk of bytes.chunks) {
    pending += decoder.decode(chunk, { stream: true });
    if (pending.length < batchChars) continue;
    const records = parser.push(pending);
    pending = '';
    rows += records.length;
    await onBatch(records, { bytesRead: bytes.position(), totalBytes, done: false });
  }
  const last = parser.push(pending + decoder.decode());
  for (const record of parser.end()) last.push(record);
  rows += last.length;
  await onBatch(last, { bytesRead: bytes.position(), totalBytes, done: true });
  return { rows, ...parser.summary() };
}

/** The first few problems and how many there were: a bad 200 MB file must not keep a message per line. */
class Problems {
  readonly listed: string[] = [];
  count = 0;

  add(problem: string): void {
    if (this.listed.length < LISTED_PROBLEMS) this.listed.push(problem);
    this.count++;
  }

  warning(name: string, what: string): string[] {
    if (this.count === 0) return [];
    const more = this.count > this.listed.length ? `; and ${this.count - this.listed.length} more` : '';
    return [`${name}: skipped ${this.count} ${what}${this.count === 1 ? '' : 's'}: ${this.listed.join('; ')}${more}`];
  }
}

/** Blank lines between documents; the lines around them may hold spaces or tabs. */
const DOCUMENT_SEPARATOR = /\n[ \t]*\n(?:[ \t]*\n)*/;
/** A document this long without a blank line (a corpus of one sentence per line) is cut at a line break. */
const MAX_DOCUMENT_CHARS = 8 * 2 ** 20;

/** Plain text: documents are separated by one or more blank lines; no blank line = one document. */
class TextRecords implements TextRecordParser {
  private carry = '';
  /** A '\r' ending a piece may be the first half of '\r\n'. */
  private heldCr = false;
  private cut = 0;

  constructor(private readonly name: string) {}

  push(text: string): RawRecord[] {
    let piece = (this.heldCr ? '\r' : '') + text;
    this.heldCr = piece.endsWith('\r');
    if (this.heldCr) piece = piece.slice(0, -1);
    const documents = (this.carry + piece.replace(/\r\n?/g, '\n')).split(DOCUMENT_SEPARATOR);
    this.carry = documents.pop() ?? '';
    while (this.carry.length > MAX_DOCUMENT_CHARS) {
      const at = this.carry.lastIndexOf('\n', MAX_DOCUMENT_CHARS);
      const end = at > 0 ? at : MAX_DOCUMENT_CHARS;
      documents.push(this.carry.slice(0, end));
      this.carry = this.carry.slice(end);
      this.cut++;
    }
    return textDocuments(documents);
  }

  end(): RawRecord[] {
    const last = this.carry + (this.heldCr ? '\n' : '');
    this.carry = '';
    this.heldCr = false;
    return textDocuments([last]);
  }

  summary(): Omit<ReadResult, 'records'> {
    const warnings =
      this.cut > 0
        ? [
            `${this.name}: cut ${this.cut} time(s) a document longer than ${MAX_DOCUMENT_CHARS / 2 ** 20}M characters with no blank line, at a line break`,
          ]
        : [];
    return { warnings, malformed: 0 };
  }
}

function textDocuments(pieces: string[]): RawRecord[] {
  const records: RawRecord[] = [];
  for (const piece of pieces) {
    const text = piece.replace(/^(?:[ \t]*\n)+/, '').trimEnd();
    if (text.trim().length > 0) records.push({ text });
  }
  return records;
}

/** Plain text in memory: documents are separated by one or more blank lines. */
export function readText(text: string): ReadResult {
  const parser = new TextRecords('text');
  const records = [...parser.push(text), ...parser.end()];
  return { records, ...parser.summary() };
}

/** One JSON object per line. Bad lines are skipped and reported with their 1-based line numbers. */
class JsonlRecords implements TextRecordParser {
  private carry = '';
  private line = 0;
  private records = 0;
  private readonly problems = new Problems();

  constructor(private readonly name: string) {}

  push(text: string): RawRecord[] {
    const lines = (this.carry + text).split('\n');
    this.carry = lines.pop() ?? '';
    return this.parse(lines);
  }

  end(): RawRecord[] {
    const records = this.parse([this.carry]);
    this.carry = '';
    if (this.records === 0 && this.problems.count > 0) {
      throw new Error(`${this.name}: no valid JSON lines; first problem: ${this.problems.listed[0]}`);
    }
    return records;
  }

  summary(): Omit<ReadResult, 'records'> {
    return { warnings: this.problems.warning(this.name, 'malformed line'), malformed: this.problems.count };
  }

  private parse(lines: string[]): RawRecord[] {
    const records: RawRecord[] = [];
    for (const raw of lines) {
      this.line++;
      const line = raw.trim();
      if (line === '') continue;
      try {
        const value: unknown = JSON.parse(line);
        if (isPlainObject(value)) records.push(value);
        else this.problems.add(`line ${this.line} (expected a JSON object, got ${describeJson(value)})`);
      } catch (err) {
        this.problems.add(`line ${this.line} (${(err as Error).message})`);
      }
    }
    this.records += records.length;
    return records;
  }
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
  const problems = new Problems();
  rows.forEach((row: unknown, i: number) => {
    if (isPlainObject(row)) records.push(row);
    else problems.add(`item ${i} (expected an object, got ${describeJson(row)})`);
  });
  if (records.length === 0 && problems.count > 0) {
    throw new Error(`${name}: the array holds no objects; first problem: ${problems.listed[0]}`);
  }
  return { records, warnings: problems.warning(name, 'malformed item'), malformed: problems.count };
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

/** Papa's own chunked parser (what its file streamers use): rows cut by a chunk boundary wait for the next. */
interface PapaChunkParser {
  parse(input: string, baseIndex: number, ignoreLastRow: boolean): Papa.ParseResult<Record<string, string>>;
}
const PapaParserHandle = (Papa as unknown as { ParserHandle: new (config: object) => PapaChunkParser }).ParserHandle;
/** Papa guesses the line ending from the first megabyte: it must see as much as a whole-file parse would. */
const NEWLINE_GUESS_CHARS = 1 << 20;
/** A quoted field this long is an unterminated quote swallowing the file, not data. */
const MAX_PENDING_CSV_CHARS = 64 * 2 ** 20;

/**
 * CSV/TSV with a header row (RFC 4180 quoting, multi-line quoted fields). Broken quoting throws:
 * an unterminated quote swallows the rest of the file, so no row after it can be trusted.
 * Rows with the wrong number of fields are skipped and reported.
 */
class CsvRecords implements TextRecordParser {
  private readonly parser: PapaChunkParser;
  /** Text not parsed yet: the start of a row cut by the chunk boundary. */
  private pending = '';
  private started = false;
  /** Characters and lines before `pending`, and the data rows parsed so far. */
  private baseIndex = 0;
  private linesBefore = 0;
  private dataRows = 0;
  private records = 0;
  private fields: string[] = [];
  private readonly problems = new Problems();

  constructor(
    private readonly name: string,
    delimiter: ',' | '\t',
  ) {
    // Papa.parse fills in dynamicTyping and transform before it makes its handle; so must we.
    this.parser = new PapaParserHandle({
      header: true,
      skipEmptyLines: true,
      delimiter,
      dynamicTyping: false,
      transform: false,
    });
  }

  push(text: string): RawRecord[] {
    this.pending += text;
    if (!this.started && this.pending.length < NEWLINE_GUESS_CHARS) return [];
    if (this.pending.length > MAX_PENDING_CSV_CHARS) {
      throw new Error(
        `${this.name}: broken CSV quoting near line ${this.linesBefore + 1}: a row runs on for more than ${MAX_PENDING_CSV_CHARS / 2 ** 20}M characters. ` +
          'A quoted field must end with a quote, and a quote inside a field is written twice ("").',
      );
    }
    return this.parse(false);
  }

  end(): RawRecord[] {
    const records = this.parse(true);
    if (this.fields.length === 0) throw new Error(`${this.name}: the CSV has no header row`);
    // Not "the file is empty": say what it does hold.
    if (this.records === 0 && this.problems.count === 0)
      throw new Error(`${this.name}: the header row (${this.fields.join(', ')}) has no data rows under it`);
    if (this.records === 0)
      throw new Error(
        `${this.name}: none of its ${this.problems.count} data row${this.problems.count > 1 ? 's' : ''} has the header's ${this.fields.length} fields (${this.fields.join(', ')}): ${this.problems.listed.slice(0, 3).join('; ')}`,
      );
    return records;
  }

  summary(): Omit<ReadResult, 'records'> {
    return { warnings: this.problems.warning(this.name, 'malformed row'), malformed: this.problems.count };
  }

  private parse(final: boolean): RawRecord[] {
    // Papa takes a quote at the end of its input for a closing one, even when it is the first of a doubled quote
    // whose second half is in the next chunk: a piece handed to it ends at a line break, never mid-line.
    const cut = final ? this.pending.length : lineBreakEnd(this.pending);
    const input = this.pending.slice(0, cut);
    const rest = this.pending.slice(cut);
    const parsed = this.parser.parse(input, this.baseIndex, !final);
    const quoteError = parsed.errors.find((e) => e.type === 'Quotes');
    if (quoteError) {
      const line =
        quoteError.index === undefined ? '?' : this.linesBefore + countLines(input.slice(0, quoteError.index)) + 1;
      // Papa counts rows from the header (row 0) within this piece.
      const row = (quoteError.row ?? 0) + (this.started ? this.dataRows + 1 : 0);
      throw new Error(
        `${this.name}: broken CSV quoting in row ${row} (line ${line}): ${quoteError.message}. ` +
          'A quoted field must end with a quote, and a quote inside a field is written twice ("").',
      );
    }
    const badRows = new Set<number>();
    for (const e of parsed.errors) {
      if (e.row === undefined || badRows.has(e.row)) continue;
      badRows.add(e.row);
      // Papa counts field-mismatch rows from 0 after the header; people count data rows from 1.
      this.problems.add(`row ${e.row + 1} (${e.message})`);
    }
    this.fields = parsed.meta.fields ?? this.fields;
    const records = parsed.data.filter((_, i) => !badRows.has(this.dataRows + i));
    this.dataRows += parsed.data.length;
    this.records += records.length;
    this.started = true;
    if (!final) {
      const consumed = parsed.meta.cursor - this.baseIndex;
      this.linesBefore += countLines(input.slice(0, consumed));
      this.pending = input.slice(consumed) + rest;
      this.baseIndex = parsed.meta.cursor;
    }
    return records;
  }
}

/** Where the text's last line break ends (0 when it has none); a final '\r' may be half of '\r\n' and waits. */
function lineBreakEnd(text: string): number {
  const lf = text.lastIndexOf('\n');
  if (lf >= 0) return lf + 1;
  return text.lastIndexOf('\r', text.length - 2) + 1;
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
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

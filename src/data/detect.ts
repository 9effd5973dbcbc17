/**
 * Record format detection: which of the supported layouts the rows follow and which field plays
 * each role. The user can force the format, rename fields through `columns`, or both.
 */
import type { ColumnMap, ColumnRole, DatasetFormat, RawRecord } from './types';

export interface FormatSpec {
  format: DatasetFormat;
  /** Role -> field name, resolved against the records (optional roles only when present). */
  columns: ColumnMap;
}

export interface FormatOverride {
  format?: DatasetFormat;
  columns?: ColumnMap;
}

interface FormatFields {
  required: ColumnRole[];
  optional: ColumnRole[];
  /** Field names tried, in order, for each role when the user names none. */
  aliases: Partial<Record<ColumnRole, string[]>>;
  /** How the format looks, for error messages. */
  shape: string;
}

/** In detection order: the most specific layouts first. */
export const FORMATS: Record<DatasetFormat, FormatFields> = {
  tokens: {
    required: ['input_ids'],
    optional: ['labels'],
    aliases: { input_ids: ['input_ids'], labels: ['labels'] },
    shape: '{input_ids, labels?}',
  },
  chat: {
    required: ['messages'],
    optional: [],
    aliases: { messages: ['messages', 'conversations', 'conversation'] },
    shape: '{messages: [{role, content}]} or {conversations: [{from, value}]}',
  },
  alpaca: {
    required: ['instruction', 'output'],
    optional: ['input'],
    aliases: { instruction: ['instruction'], input: ['input', 'context'], output: ['output', 'response'] },
    shape: '{instruction, input?, output}',
  },
  prompt_completion: {
    required: ['prompt', 'completion'],
    optional: [],
    aliases: { prompt: ['prompt', 'question'], completion: ['completion', 'answer', 'response'] },
    shape: '{prompt, completion}',
  },
  text: {
    required: ['text'],
    optional: [],
    aliases: { text: ['text'] },
    shape: '{text}',
  },
};

const DETECTION_ORDER = Object.keys(FORMATS) as DatasetFormat[];

/** Rows inspected to decide the format: a streamed file is detected from its first batches. */
export const DETECTION_ROWS = 100;

/** Appends `records` to `sample` until it holds the rows detection looks at. */
export function keepDetectionSample(sample: RawRecord[], records: RawRecord[]): void {
  for (let i = 0; i < records.length && sample.length < DETECTION_ROWS; i++) sample.push(records[i]);
}

export function supportedFormatsText(): string {
  return DETECTION_ORDER.map((f) => `${f} ${FORMATS[f].shape}`).join('; ');
}

export function detectFormat(records: RawRecord[], override: FormatOverride = {}): FormatSpec {
  const sample = records.slice(0, DETECTION_ROWS);
  const present: PresentFields = { mostly: presentFields(sample, 0.5), anywhere: presentFields(sample, 0) };
  const userColumns = override.columns ?? {};

  for (const [role, field] of Object.entries(userColumns)) {
    if (field !== undefined && !present.anywhere.has(field)) {
      throw new Error(
        `column "${field}" (given for ${role}) is not in the records; fields found: ${fieldList(sample)}`,
      );
    }
  }

  const candidates = override.format ? [override.format] : formatsAllowing(Object.keys(userColumns) as ColumnRole[]);
  for (const format of candidates) {
    const spec = resolveColumns(format, present, userColumns);
    if (spec) return spec;
  }

  if (override.format) {
    const missing = FORMATS[override.format].required.filter(
      (role) => !resolveRole(override.format!, role, present, userColumns),
    );
    throw new Error(
      `format "${override.format}" ${FORMATS[override.format].shape} needs a field for ${missing.join(', ')}; ` +
        `fields found: ${fieldList(sample)}; name them with columns, e.g. columns: { ${missing[0]}: "your_field" }`,
    );
  }
  throw new Error(
    `no supported dataset format matches the fields found (${fieldList(sample)}); supported formats: ` +
      `${supportedFormatsText()}. Map your fields with columns, e.g. ` +
      `{ format: "prompt_completion", columns: { prompt: "question", completion: "answer" } }`,
  );
}

/** The formats that have every role the user named a column for, in detection order. */
function formatsAllowing(roles: ColumnRole[]): DatasetFormat[] {
  return DETECTION_ORDER.filter((f) =>
    roles.every((r) => FORMATS[f].required.includes(r) || FORMATS[f].optional.includes(r)),
  );
}

/**
 * Required roles need a field most sampled rows hold (a few broken rows must not hide the
 * format, nor a stray field decide it); optional roles take a field any row holds.
 */
interface PresentFields {
  mostly: Set<string>;
  anywhere: Set<string>;
}

function resolveColumns(format: DatasetFormat, present: PresentFields, userColumns: ColumnMap): FormatSpec | null {
  const columns: ColumnMap = {};
  for (const role of FORMATS[format].required) {
    const field = resolveRole(format, role, present, userColumns);
    if (!field) return null;
    columns[role] = field;
  }
  for (const role of FORMATS[format].optional) {
    const field = resolveRole(format, role, present, userColumns);
    if (field) columns[role] = field;
  }
  return { format, columns };
}

function resolveRole(
  format: DatasetFormat,
  role: ColumnRole,
  present: PresentFields,
  userColumns: ColumnMap,
): string | null {
  const named = userColumns[role];
  if (named !== undefined) return present.anywhere.has(named) ? named : null;
  const fields = FORMATS[format].required.includes(role) ? present.mostly : present.anywhere;
  return (FORMATS[format].aliases[role] ?? []).find((alias) => fields.has(alias)) ?? null;
}

/** Fields holding a value in more than `fraction` of the sampled rows. */
function presentFields(sample: RawRecord[], fraction: number): Set<string> {
  const counts = new Map<string, number>();
  for (const record of sample) {
    for (const [key, value] of Object.entries(record)) {
      if (value !== undefined && value !== null) counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return new Set([...counts].filter(([, n]) => n > fraction * sample.length).map(([key]) => key));
}

function fieldList(sample: RawRecord[]): string {
  const all = new Set<string>();
  for (const record of sample) for (const key of Object.keys(record)) all.add(key);
  return all.size ? [...all].join(', ') : '(none)';
}

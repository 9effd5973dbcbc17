/**
 * Records -> Examples with Hugging Face style labels (aligned with inputIds, -100 = not
 * supervised; the next-token shift happens in batches.ts). Every format becomes a list of text
 * segments marked supervised or not, tokenized as one string so the tokens are exactly those
 * the model will see (see encodeSegments).
 */
import { normalizeMessages, recordTools, renderChat, type ChatContext, type ChatMessage, type Segment } from './chat';
import type { FormatSpec } from './detect';
import { supervisedTargets } from './truncation';
import { IGNORE_INDEX, type Example, type RawRecord, type TextTokenizer } from './types';
import type { PromptJoin } from './prompt-join';
import type { TokenArena } from './token-arena';

export interface TokenizeResult {
  examples: Example[];
  warnings: string[];
  /** Records that produced no example (malformed, empty, or nothing to learn). */
  skipped: number;
  /** Chat: assistant turns, and those that rendered empty (never supervised). */
  assistantTurns: number;
  emptyTurns: number;
  /** Record fields no role reads (e.g. KTO's `label`): named in a warning, never silently ignored. */
  unusedFields: string[];
}

export { PROMPT_JOINS, type PromptJoin } from './prompt-join';

const JOIN_TEXT: Record<Exclude<PromptJoin, 'chat-template'>, string> = { none: '', space: ' ', newline: '\n' };

export interface TokenizeOptions {
  promptJoin?: PromptJoin;
  /** Where examples are stored compactly (a large file); without one they stay plain arrays. */
  arena?: TokenArena;
}

/** Fields a format reads besides its column roles. */
const CONTEXT_FIELDS: Partial<Record<FormatSpec['format'], string[]>> = { chat: ['tools'] };

/** Stanford Alpaca's prompt (tatsu-lab/stanford_alpaca, train.py), with and without an input. */
export function alpacaPrompt(instruction: string, input: string): string {
  return input.trim() === ''
    ? 'Below is an instruction that describes a task. ' +
        'Write a response that appropriately completes the request.\n\n' +
        `### Instruction:\n${instruction}\n\n### Response:\n`
    : 'Below is an instruction that describes a task, paired with an input that provides further context. ' +
        'Write a response that appropriately completes the request.\n\n' +
        `### Instruction:\n${instruction}\n\n### Input:\n${input}\n\n### Response:\n`;
}

/** Skips a record: the reason is reported with a count and the first few row numbers. */
class SkipRow extends Error {
  constructor(
    readonly kind: 'malformed' | 'empty' | 'unsupervised',
    message: string,
  ) {
    super(message);
  }
}

const LISTED_ROWS = 3;

export function tokenizeRecords(
  records: RawRecord[],
  spec: FormatSpec,
  tokenizer: TextTokenizer,
  opts: TokenizeOptions = {},
): TokenizeResult {
  const recordTokenizer = new RecordTokenizer(spec, tokenizer, opts);
  recordTokenizer.add(records);
  return recordTokenizer.finish();
}

/**
 * Tokenizes records a batch at a time (a large file streams through it), numbering rows across batches, and
 * reports skips and unused fields for the whole file at the end.
 */
export class RecordTokenizer {
  private readonly promptJoin: PromptJoin;
  private readonly examples: Example[] = [];
  private readonly skips: Record<SkipRow['kind'], { listed: string[]; count: number }> = {
    malformed: { listed: [], count: 0 },
    empty: { listed: [], count: 0 },
    unsupervised: { listed: [], count: 0 },
  };
  private readonly turns = { assistant: 0, empty: 0 };
  private readonly readFields: Set<string>;
  private readonly unused = new Set<string>();
  private row = 0;
  private readonly arena: TokenArena | null;

  constructor(
    private readonly spec: FormatSpec,
    private readonly tokenizer: TextTokenizer,
    opts: TokenizeOptions = {},
  ) {
    this.promptJoin = opts.promptJoin ?? 'none';
    this.arena = opts.arena ?? null;
    if (this.promptJoin === 'chat-template' && !tokenizer.chatTemplate) {
      throw new Error(
        'the prompt/completion join "chat-template" needs a tokenizer with a chat template (tokenizer_config.json chat_template); this one has none',
      );
    }
    this.readFields = new Set<string>([
      ...Object.values(spec.columns).filter((f): f is string => !!f),
      ...(CONTEXT_FIELDS[spec.format] ?? []),
    ]);
  }

  get exampleCount(): number {
    return this.examples.length;
  }

  add(records: RawRecord[]): void {
    for (const record of records) {
      const row = this.row++;
      for (const field of Object.keys(record)) if (!this.readFields.has(field)) this.unused.add(field);
      try {
        const example = tokenizeRecord(record, row, this.spec, this.tokenizer, this.promptJoin, this.turns);
        if (example.inputIds.length === 0) throw new SkipRow('empty', 'no tokens');
        if (supervisedTargets(example) === 0) throw new SkipRow('unsupervised', 'no supervised token');
        this.examples.push(this.arena ? this.arena.store(example) : example);
      } catch (err) {
        if (!(err instanceof SkipRow)) throw err;
        const skip = this.skips[err.kind];
        if (skip.listed.length < LISTED_ROWS) skip.listed.push(`row ${row}: ${err.message}`);
        skip.count++;
      }
    }
  }

  finish(): TokenizeResult {
    const describe: Record<SkipRow['kind'], string> = {
      malformed: 'malformed rows',
      empty: 'empty examples',
      unsupervised: 'examples with no supervised token',
    };
    const warnings = (Object.keys(this.skips) as SkipRow['kind'][])
      .filter((kind) => this.skips[kind].count > 0)
      .map((kind) => {
        const { listed, count } = this.skips[kind];
        const more = count > LISTED_ROWS ? `; ...` : '';
        return `skipped ${count} ${describe[kind]} (${listed.join('; ')}${more})`;
      });
    const { turns } = this;
    if (turns.empty > 0) {
      warnings.push(
        `${turns.empty} of ${turns.assistant} assistant turns render empty with this chat template (for example tool calls or ` +
          `reasoning the template does not write) and are not trained on`,
      );
    }
    const unusedFields = [...this.unused];
    if (unusedFields.length > 0) {
      warnings.push(
        `field${unusedFields.length > 1 ? 's' : ''} ${unusedFields.map((f) => `"${f}"`).join(', ')} not used by the ${this.spec.format} format (ignored)`,
      );
    }
    const skipped = this.skips.malformed.count + this.skips.empty.count + this.skips.unsupervised.count;
    return {
      examples: this.examples,
      warnings,
      skipped,
      assistantTurns: turns.assistant,
      emptyTurns: turns.empty,
      unusedFields,
    };
  }
}

function tokenizeRecord(
  record: RawRecord,
  row: number,
  spec: FormatSpec,
  tokenizer: TextTokenizer,
  promptJoin: PromptJoin,
  turns: { assistant: number; empty: number },
): Example {
  const { columns } = spec;
  switch (spec.format) {
    case 'text': {
      const text = textField(record, columns.text!);
      if (text.trim() === '') throw new SkipRow('empty', `"${columns.text}" is empty`);
      return encodeSegments(tokenizer, [{ text, supervised: true }], true);
    }
    case 'prompt_completion': {
      const prompt = textField(record, columns.prompt!);
      const completion = textField(record, columns.completion!);
      if (promptJoin === 'chat-template') {
        if (completion.trim() === '') throw new SkipRow('empty', `"${columns.completion}" is empty`);
        return chatExample(
          [
            { role: 'user', content: prompt },
            { role: 'assistant', content: completion },
          ],
          {},
          tokenizer,
          turns,
        );
      }
      return promptCompletion(tokenizer, prompt + JOIN_TEXT[promptJoin], completion, columns.completion!);
    }
    case 'alpaca': {
      const instruction = textField(record, columns.instruction!);
      const input = columns.input && record[columns.input] != null ? textField(record, columns.input) : '';
      const output = textField(record, columns.output!);
      return promptCompletion(tokenizer, alpacaPrompt(instruction, input), output, columns.output!);
    }
    case 'chat': {
      let messages: ChatMessage[];
      try {
        messages = normalizeMessages(record[columns.messages!]);
      } catch (err) {
        throw new SkipRow('malformed', (err as Error).message);
      }
      if (messages.length === 0) throw new SkipRow('empty', 'no messages');
      if (!messages.some((m) => m.role === 'assistant')) throw new SkipRow('unsupervised', 'no assistant message');
      let tools: unknown[] | undefined;
      try {
        tools = recordTools(record.tools);
      } catch (err) {
        throw new SkipRow('malformed', (err as Error).message);
      }
      return chatExample(messages, tools ? { tools } : {}, tokenizer, turns);
    }
    case 'tokens':
      return tokenIds(record, row, columns.input_ids!, columns.labels, tokenizer.vocabSize);
  }
}

function chatExample(
  messages: ChatMessage[],
  context: ChatContext,
  tokenizer: TextTokenizer,
  turns: { assistant: number; empty: number },
): Example {
  let rendered: ReturnType<typeof renderChat>;
  try {
    rendered = renderChat(messages, tokenizer, context);
  } catch (err) {
    throw new SkipRow('malformed', (err as Error).message);
  }
  turns.assistant += rendered.assistantTurns;
  turns.empty += rendered.emptyTurns;
  return encodeSegments(tokenizer, rendered.segments, rendered.addBos);
}

function promptCompletion(tokenizer: TextTokenizer, prompt: string, completion: string, field: string): Example {
  if (completion.trim() === '') throw new SkipRow('empty', `"${field}" is empty`);
  return encodeSegments(
    tokenizer,
    [
      { text: prompt, supervised: false },
      { text: completion, supervised: true, eosAfter: true },
    ],
    true,
  );
}

/** Strings as they are; numbers and booleans (CSV/Parquet answers like 42) as text. */
function textField(record: RawRecord, field: string): string {
  const value = record[field];
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === undefined || value === null) throw new SkipRow('malformed', `"${field}" is missing`);
  throw new SkipRow('malformed', `"${field}" is ${Array.isArray(value) ? 'a list' : 'an object'}, expected text`);
}

/** Pre-tokenized rows are used as they are, but a bad id would index outside the embedding: error. */
function tokenIds(
  record: RawRecord,
  row: number,
  idsField: string,
  labelsField: string | undefined,
  vocabSize: number,
): Example {
  const ids = record[idsField];
  if (!Array.isArray(ids)) throw new Error(`row ${row}: "${idsField}" must be a list of token ids`);
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Error(`row ${row}: ${idsField}[${i}] = ${JSON.stringify(id)} is not a token id in [0, ${vocabSize})`);
    }
  });
  const rawLabels = labelsField === undefined ? undefined : record[labelsField];
  if (rawLabels === undefined || rawLabels === null) return { inputIds: ids.slice(), labels: ids.slice() };
  if (!Array.isArray(rawLabels) || rawLabels.length !== ids.length) {
    const got = Array.isArray(rawLabels) ? `${rawLabels.length} labels` : 'not a list';
    throw new Error(`row ${row}: "${labelsField}" must be a list as long as "${idsField}" (${ids.length}), got ${got}`);
  }
  rawLabels.forEach((label, i) => {
    if (label !== IGNORE_INDEX && (!Number.isInteger(label) || label < 0 || label >= vocabSize)) {
      throw new Error(
        `row ${row}: ${labelsField}[${i}] = ${JSON.stringify(label)} is neither ${IGNORE_INDEX} nor a token id in [0, ${vocabSize})`,
      );
    }
  });
  return { inputIds: ids.slice(), labels: rawLabels.slice() };
}

/**
 * Tokenizes the concatenated segments as ONE string (tokenizing pieces separately changes the
 * tokens at the joins, e.g. SentencePiece's leading "▁"), then finds each segment's first
 * token by tokenizing the text before it: where that is a prefix of the full tokenization, the
 * boundary is exact; otherwise a token straddles the join and goes to the later segment.
 * BOS (label -100: nothing predicts it) is prepended when asked and the tokenizer adds one.
 */
export function encodeSegments(tokenizer: TextTokenizer, segments: Segment[], addBos: boolean): Example {
  const full = segments.map((s) => s.text).join('');
  const ids = tokenizer.encode(full, { addSpecial: false });
  const inputIds: number[] = [];
  const labels: number[] = [];
  if (addBos && tokenizer.addBos && tokenizer.bosId !== null) {
    inputIds.push(tokenizer.bosId);
    labels.push(IGNORE_INDEX);
  }
  let chars = 0;
  let start = 0;
  segments.forEach((segment, i) => {
    chars += segment.text.length;
    const end =
      i === segments.length - 1 ? ids.length : Math.max(start, tokensBefore(tokenizer, full.slice(0, chars), ids));
    for (let t = start; t < end; t++) {
      inputIds.push(ids[t]);
      labels.push(segment.supervised ? ids[t] : IGNORE_INDEX);
    }
    if (segment.eosAfter && tokenizer.eosId !== null) {
      inputIds.push(tokenizer.eosId);
      labels.push(tokenizer.eosId);
    }
    start = end;
  });
  return { inputIds, labels };
}

/** Tokens of `full` that belong entirely to `prefix`: the common prefix of both tokenizations. */
function tokensBefore(tokenizer: TextTokenizer, prefix: string, full: number[]): number {
  const ids = tokenizer.encode(prefix, { addSpecial: false });
  let n = 0;
  while (n < ids.length && n < full.length && ids[n] === full[n]) n++;
  return n;
}

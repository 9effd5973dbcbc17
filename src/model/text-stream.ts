/**
 * Generated tokens to text while they arrive. A token can end in the middle of a character (byte-fallback and
 * byte-level BPE split UTF-8 sequences) or change how the previous one reads (SentencePiece's leading space), so
 * each new piece is decoded with a few tokens before it and shown only once it no longer ends in U+FFFD (the
 * incremental detokenizer of text-generation-inference). Stop strings end the text before them; while the text
 * ends with the start of one, that start is held back, so a stop string never flashes on screen.
 */
import type { TextTokenizer } from '../tokenizer/tokenizer';

/** Tokens of context decoded before the new ones (word boundaries and merged bytes depend on a few neighbours). */
const CONTEXT = 5;

export class TextStream {
  private readonly ids: number[];
  private readonly promptLength: number;
  /** ids[prefix, read) decoded to the text already emitted; ids[read, ...) not emitted yet. */
  private prefix: number;
  private read: number;
  private text = '';
  private stopped: string | null = null;

  constructor(
    private readonly tokenizer: Pick<TextTokenizer, 'decode'>,
    private readonly prompt: readonly number[],
    private readonly stopStrings: readonly string[] = [],
  ) {
    this.stopStrings = stopStrings.filter((s) => s.length > 0);
    this.ids = prompt.slice(-CONTEXT);
    this.promptLength = this.ids.length;
    this.prefix = 0;
    this.read = this.ids.length;
  }

  /** The stop string that ended the text, or null. */
  get stop(): string | null {
    return this.stopped;
  }

  /** Adds a generated token; true once the text contains a stop string (nothing after it is kept). */
  push(id: number): boolean {
    if (this.stopped !== null) return true;
    this.ids.push(id);
    const before = this.decode(this.prefix, this.read);
    const now = this.decode(this.prefix, this.ids.length);
    if (now.length > before.length && !now.endsWith('\uFFFD')) {
      this.append(now.slice(before.length));
      this.prefix = this.read;
      this.read = this.ids.length;
    }
    return this.stopped !== null;
  }

  /** The text to show now: no incomplete character at the end, nor the beginning of a possible stop string. */
  get visible(): string {
    if (this.stopped !== null) return this.text;
    let hold = 0;
    for (const s of this.stopStrings)
      for (let n = Math.min(s.length - 1, this.text.length); n > hold; n--)
        if (this.text.endsWith(s.slice(0, n))) hold = n;
    return this.text.slice(0, this.text.length - hold);
  }

  /**
   * The final text: the whole generation decoded in one piece after the whole prompt (so it reads as the prompt
   * and the answer decoded together would), cut before the first stop string.
   */
  finish(): string {
    const generated = this.ids.slice(this.promptLength);
    const head = this.tokenizer.decode([...this.prompt], { skipSpecial: true });
    const full = this.tokenizer.decode([...this.prompt, ...generated], { skipSpecial: true });
    let text = full.startsWith(head)
      ? full.slice(head.length)
      : this.tokenizer.decode(generated, { skipSpecial: true });
    const cut = firstStop(text, this.stopStrings, 0);
    if (cut) {
      text = text.slice(0, cut.index);
      this.stopped = cut.stop;
    }
    this.text = text;
    return text;
  }

  private decode(from: number, to: number): string {
    return this.tokenizer.decode(this.ids.slice(from, to), { skipSpecial: true });
  }

  private append(piece: string): void {
    const searchFrom = Math.max(0, this.text.length - Math.max(0, ...this.stopStrings.map((s) => s.length - 1)));
    this.text += piece;
    const cut = firstStop(this.text, this.stopStrings, searchFrom);
    if (cut) {
      this.text = this.text.slice(0, cut.index);
      this.stopped = cut.stop;
    }
  }
}

/** The earliest occurrence of any stop string at or after `from`. */
function firstStop(text: string, stops: readonly string[], from: number): { index: number; stop: string } | null {
  let best: { index: number; stop: string } | null = null;
  for (const stop of stops) {
    const index = text.indexOf(stop, from);
    if (index >= 0 && (best === null || index < best.index)) best = { index, stop };
  }
  return best;
}

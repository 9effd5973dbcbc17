/**
 * A tiny deterministic tokenizer for the dataset tests: greedy longest match over a fixed list
 * of pieces (special tokens, optional multi-character merges, then single printable ASCII
 * characters and "\n"). Special tokens written in the text become their ids, as Hugging Face
 * tokenizers do with added tokens. Unknown characters map to <unk>.
 */
import type { TextTokenizer } from '../../src/data/types';

export const PAD = 0;
export const BOS = 1;
export const EOS = 2;
export const UNK = 3;

export interface FakeTokenizerOptions {
  /** Multi-character pieces matched before single characters (to create straddling tokens). */
  merges?: string[];
  addBos?: boolean;
  withBos?: boolean;
  withEos?: boolean;
  chatTemplate?: string | null;
}

export class FakeTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null = PAD;
  readonly addBos: boolean;
  readonly chatTemplate: string | null;
  private readonly pieces: string[];
  private readonly special = new Set(['<pad>', '<s>', '</s>', '<unk>']);
  private readonly ids = new Map<string, number>();
  /** Candidate pieces by first character, longest first: specials and merges beat single characters. */
  private readonly byFirstChar = new Map<string, string[]>();
  /** Every encode() call, so tests can check how the text was split. */
  readonly encoded: string[] = [];

  constructor(opts: FakeTokenizerOptions = {}) {
    const chars = ['\n', ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))];
    this.pieces = ['<pad>', '<s>', '</s>', '<unk>', ...chars, ...(opts.merges ?? [])];
    this.pieces.forEach((p, i) => this.ids.set(p, i));
    for (const piece of [...this.pieces].sort((a, b) => b.length - a.length)) {
      const list = this.byFirstChar.get(piece[0]) ?? [];
      list.push(piece);
      this.byFirstChar.set(piece[0], list);
    }
    this.vocabSize = this.pieces.length;
    this.bosId = opts.withBos === false ? null : BOS;
    this.eosId = opts.withEos === false ? null : EOS;
    this.addBos = opts.addBos ?? true;
    this.chatTemplate = opts.chatTemplate ?? null;
  }

  encode(text: string, opts: { addSpecial?: boolean } = {}): number[] {
    this.encoded.push(text);
    const out: number[] = [];
    if (opts.addSpecial && this.addBos && this.bosId !== null) out.push(this.bosId);
    let i = 0;
    while (i < text.length) {
      const piece = this.byFirstChar.get(text[i])?.find((p) => text.startsWith(p, i));
      if (piece) {
        out.push(this.ids.get(piece)!);
        i += piece.length;
      } else {
        out.push(UNK);
        i += 1;
      }
    }
    return out;
  }

  decode(ids: number[] | Int32Array, opts: { skipSpecial?: boolean } = {}): string {
    return Array.from(ids)
      .filter((id) => !(opts.skipSpecial && this.special.has(this.pieces[id])))
      .map((id) => this.pieces[id] ?? '<unk>')
      .join('');
  }

  tokenToId(token: string): number | null {
    return this.ids.get(token) ?? null;
  }
}

/** Token ids of plain text, without specials: what the labels of supervised text must equal. */
export function idsOf(tok: FakeTokenizer, text: string): number[] {
  return tok.encode(text, { addSpecial: false });
}

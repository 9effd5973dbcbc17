/**
 * Chat conversations -> text segments, each marked supervised or not. With the tokenizer's chat
 * template (rendered by @huggingface/jinja) the assistant turns are found by rendering the
 * conversation incrementally: the text a turn adds after the generation prompt is that turn's
 * span (its content plus the template's end-of-turn marker). Without a template a simple
 * fallback is used, documented at FALLBACK_ROLE_HEADER.
 */
import { Template } from '@huggingface/jinja';
import { isPlainObject } from './readers';
import type { TextTokenizer } from './types';

export interface ChatMessage {
  role: string;
  content: string;
}

/** A piece of the rendered conversation. `eosAfter`: append the tokenizer's EOS id (supervised). */
export interface Segment {
  text: string;
  supervised: boolean;
  eosAfter?: boolean;
}

export interface RenderedChat {
  segments: Segment[];
  /** Whether the tokenizer's BOS must still be prepended (templates write their own). */
  addBos: boolean;
}

/** ShareGPT and other role spellings -> the OpenAI/Hugging Face ones chat templates expect. */
const ROLE_ALIASES: Record<string, string> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  bot: 'assistant',
  model: 'assistant',
  assistant: 'assistant',
  system: 'system',
};

/**
 * Accepts [{role, content}] (OpenAI / Hugging Face) and [{from, value}] (ShareGPT); content may be
 * a string or a list of parts [{type: 'text', text | value}] whose text parts are joined (other
 * part types, e.g. images or reasoning, are dropped). Throws a message describing the problem.
 */
export function normalizeMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value)) throw new Error(`messages must be a list, got ${typeof value}`);
  return value.map((message: unknown, i) => {
    if (!isPlainObject(message)) throw new Error(`message ${i} is not an object`);
    const rawRole = message.role ?? message.from;
    if (typeof rawRole !== 'string') throw new Error(`message ${i} has no role (or ShareGPT "from")`);
    const content = messageText(message.content ?? message.value);
    if (content === null) throw new Error(`message ${i} has no text content (or ShareGPT "value")`);
    return { role: ROLE_ALIASES[rawRole.toLowerCase()] ?? rawRole, content };
  });
}

function messageText(content: unknown): string | null {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return null;
  const texts: string[] = [];
  for (const part of content) {
    if (typeof part === 'string') texts.push(part);
    else if (isPlainObject(part) && (part.type === undefined || part.type === 'text')) {
      const text = part.text ?? part.value;
      if (typeof text === 'string') texts.push(text);
    }
  }
  return texts.join('');
}

export function renderChat(messages: ChatMessage[], tokenizer: TextTokenizer): RenderedChat {
  return tokenizer.chatTemplate ? renderWithTemplate(messages, tokenizer) : renderFallback(messages);
}

// ---------------------------------------------------------------------------------------------
// Template rendering

interface CompiledTemplate {
  template: Template;
  specialTokens: Record<string, string>;
}

const compiled = new WeakMap<TextTokenizer, CompiledTemplate>();

function compile(tokenizer: TextTokenizer): CompiledTemplate {
  let entry = compiled.get(tokenizer);
  if (!entry) {
    const tokenText = (id: number | null) => (id === null ? '' : tokenizer.decode([id], { skipSpecial: false }));
    entry = {
      template: new Template(tokenizer.chatTemplate!),
      specialTokens: {
        bos_token: tokenText(tokenizer.bosId),
        eos_token: tokenText(tokenizer.eosId),
        pad_token: tokenText(tokenizer.padId),
      },
    };
    compiled.set(tokenizer, entry);
  }
  return entry;
}

function renderWithTemplate(messages: ChatMessage[], tokenizer: TextTokenizer): RenderedChat {
  const { template, specialTokens } = compile(tokenizer);
  const render = (upTo: number, addGenerationPrompt: boolean) =>
    template.render({ ...specialTokens, messages: messages.slice(0, upTo), add_generation_prompt: addGenerationPrompt });

  const full = render(messages.length, false);
  const segments: Segment[] = [];
  let cursor = 0;
  messages.forEach((message, i) => {
    if (message.role !== 'assistant') return;
    const start = render(i, true).length;
    const withTurn = render(i + 1, false);
    // Templates that rewrite earlier turns (e.g. drop past reasoning) have no stable prefix.
    if (!full.startsWith(withTurn) || start > withTurn.length || start < cursor) {
      throw new Error('the chat template does not render the conversation incrementally; cannot find assistant turns');
    }
    segments.push({ text: full.slice(cursor, start), supervised: false });
    segments.push({ text: full.slice(start, withTurn.length), supervised: true });
    cursor = withTurn.length;
  });
  segments.push({ text: full.slice(cursor), supervised: false });
  return { segments: segments.filter((s) => s.text.length > 0), addBos: false };
}

// ---------------------------------------------------------------------------------------------
// Fallback

/**
 * Fallback layout when the tokenizer has no chat template: every turn is
 * "<|role|>\n" + content + "\n"; assistant content is supervised and followed by EOS (also
 * supervised, so the model learns to stop) when the tokenizer has one; BOS as for plain text.
 *
 *   <|system|>\nYou are terse.\n<|user|>\nHi\n<|assistant|>\nHello!</s>\n
 */
export const FALLBACK_ROLE_HEADER = (role: string) => `<|${role}|>\n`;

function renderFallback(messages: ChatMessage[]): RenderedChat {
  const segments: Segment[] = [];
  for (const { role, content } of messages) {
    const assistant = role === 'assistant';
    segments.push({ text: FALLBACK_ROLE_HEADER(role), supervised: false });
    segments.push({ text: content, supervised: assistant, eosAfter: assistant });
    segments.push({ text: '\n', supervised: false });
  }
  return { segments, addBos: true };
}

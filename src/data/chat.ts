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

/**
 * A message as the chat template receives it: role and content normalized, every other field the record
 * holds (reasoning_content, tool_calls, name, tool_call_id, ...) passed through as transformers'
 * apply_chat_template passes it.
 */
export interface ChatMessage {
  role: string;
  content: string;
  [field: string]: unknown;
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
  /** Assistant turns, and those that rendered nothing of their own (so are not trained on). */
  assistantTurns: number;
  emptyTurns: number;
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
  tool: 'tool',
  function_call: 'assistant',
  observation: 'tool',
  ipython: 'tool',
};

/** The role a template expects; own keys only, so a role named "constructor" or "__proto__" stays that text. */
function roleName(raw: string): string {
  const key = raw.toLowerCase();
  return Object.hasOwn(ROLE_ALIASES, key) ? ROLE_ALIASES[key] : raw;
}

/**
 * Accepts [{role, content}] (OpenAI / Hugging Face) and [{from, value}] (ShareGPT). Content may be a
 * string or a list of parts (OpenAI {type: 'text', text}, LLaMA-Factory v1 {type, value}): text parts are
 * joined, 'reasoning' parts become `reasoning_content` and 'tool_call' parts (JSON {name, arguments})
 * become OpenAI `tool_calls`, the fields chat templates read; other part types (images) are dropped.
 * Other message fields are kept for the template. An assistant message may have no text when it carries
 * tool calls or reasoning. Throws a message describing the problem.
 */
export function normalizeMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value)) throw new Error(`messages must be a list, got ${typeof value}`);
  return value.map((message: unknown, i) => {
    if (!isPlainObject(message)) throw new Error(`message ${i} is not an object`);
    const rawRole = message.role ?? message.from;
    if (typeof rawRole !== 'string') throw new Error(`message ${i} has no role (or ShareGPT "from")`);
    const { from: _from, value: _value, content: _content, ...fields } = message;
    // Templates loop over tool_calls: a string would render as its characters, a number fail inside the template.
    if (fields.tool_calls != null && !Array.isArray(fields.tool_calls))
      throw new Error(
        `message ${i} has tool_calls that is not a list (got ${JSON.stringify(fields.tool_calls).slice(0, 60)})`,
      );
    const parts = messageParts(message.content ?? message.value, i);
    const reasoning = parts.reasoning.length ? { reasoning_content: parts.reasoning.join('') } : {};
    const toolCalls = parts.toolCalls.length
      ? { tool_calls: [...((fields.tool_calls as unknown[]) ?? []), ...parts.toolCalls] }
      : {};
    const merged: ChatMessage = {
      ...fields,
      ...reasoning,
      ...toolCalls,
      role: roleName(rawRole),
      content: parts.text ?? '',
    };
    if (parts.text === null && merged.tool_calls == null && merged.reasoning_content == null) {
      throw new Error(`message ${i} has no text content (or ShareGPT "value")`);
    }
    return merged;
  });
}

interface MessageParts {
  /** null: no text part at all (a message of tool calls only, or no content). */
  text: string | null;
  reasoning: string[];
  toolCalls: unknown[];
}

function messageParts(content: unknown, index: number): MessageParts {
  const parts: MessageParts = { text: null, reasoning: [], toolCalls: [] };
  if (typeof content === 'string') return { ...parts, text: content };
  if (!Array.isArray(content)) return parts;
  const texts: string[] = [];
  for (const part of content) {
    if (typeof part === 'string') texts.push(part);
    if (!isPlainObject(part)) continue;
    const body = part.text ?? part.value;
    if (typeof body !== 'string') continue;
    if (part.type === undefined || part.type === 'text') texts.push(body);
    else if (part.type === 'reasoning' || part.type === 'thinking') parts.reasoning.push(body);
    else if (part.type === 'tool_call') parts.toolCalls.push(toolCall(body, index));
  }
  return { ...parts, text: texts.length ? texts.join('') : null };
}

/** A LLaMA-Factory tool_call part ('{"name": ..., "arguments": {...}}') as transformers' tool_calls entry. */
function toolCall(json: string, index: number): unknown {
  let call: unknown;
  try {
    call = JSON.parse(json);
  } catch {
    throw new Error(`message ${index} has a tool_call part that is not JSON`);
  }
  if (!isPlainObject(call) || typeof call.name !== 'string')
    throw new Error(`message ${index} has a tool_call part without a "name"`);
  return { type: 'function', function: { name: call.name, arguments: call.arguments ?? {} } };
}

/** A record's `tools`: a list, or a JSON string of one (LLaMA-Factory stores it as text). */
export function recordTools(value: unknown): unknown[] | undefined {
  if (value == null) return undefined;
  let tools = value;
  if (typeof tools === 'string') {
    try {
      tools = JSON.parse(tools);
    } catch {
      throw new Error('"tools" is text but not JSON');
    }
  }
  if (!Array.isArray(tools)) throw new Error('"tools" must be a list of tool definitions');
  return tools;
}

/** What a record adds to its messages: a `tools` list, passed to the template as apply_chat_template(tools=...) does. */
export interface ChatContext {
  tools?: unknown[];
}

export function renderChat(messages: ChatMessage[], tokenizer: TextTokenizer, context: ChatContext = {}): RenderedChat {
  return tokenizer.chatTemplate ? renderWithTemplate(messages, tokenizer, context) : renderFallback(messages);
}

// ---------------------------------------------------------------------------------------------
// Template rendering

interface CompiledTemplate {
  template: Template;
  specialTokens: Record<string, string>;
}

const compiled = new WeakMap<TextTokenizer, CompiledTemplate>();

/**
 * The special tokens a template sees are the tokenizer's own (tokenizer_config.json's bos_token, eos_token, ...),
 * as in transformers' apply_chat_template, which passes tokenizer.special_tokens_map.
 */
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

/** The assistant message with nothing of its own to show: what a turn looks like when it renders empty. */
function withoutContent(message: ChatMessage): ChatMessage {
  const { reasoning_content: _r, tool_calls: _t, thinking: _th, ...rest } = message;
  return { ...rest, content: '' };
}

function renderWithTemplate(messages: ChatMessage[], tokenizer: TextTokenizer, context: ChatContext): RenderedChat {
  const { template, specialTokens } = compile(tokenizer);
  const render = (list: ChatMessage[], addGenerationPrompt: boolean) =>
    template.render({
      ...specialTokens,
      ...(context.tools ? { tools: context.tools } : {}),
      messages: list,
      add_generation_prompt: addGenerationPrompt,
    });

  const full = render(messages, false);
  const segments: Segment[] = [];
  let cursor = 0;
  let assistantTurns = 0;
  let emptyTurns = 0;
  messages.forEach((message, i) => {
    if (message.role !== 'assistant') return;
    assistantTurns++;
    const start = render(messages.slice(0, i), true).length;
    const withTurn = render(messages.slice(0, i + 1), false);
    // Templates that rewrite earlier turns (e.g. drop past reasoning) have no stable prefix.
    if (!full.startsWith(withTurn) || start > withTurn.length || start < cursor) {
      throw new Error('the chat template does not render the conversation incrementally; cannot find assistant turns');
    }
    // A turn the template renders exactly like an empty one (e.g. tool_calls it does not write) teaches only its
    // end-of-turn marker: it is not supervised.
    const turn = withTurn.slice(start);
    const emptyTurn = render([...messages.slice(0, i), withoutContent(message)], false).slice(start);
    const empty = turn === emptyTurn;
    if (empty) emptyTurns++;
    segments.push({ text: full.slice(cursor, start), supervised: false });
    segments.push({ text: turn, supervised: !empty });
    cursor = withTurn.length;
  });
  segments.push({ text: full.slice(cursor), supervised: false });
  return { segments: segments.filter((s) => s.text.length > 0), addBos: false, assistantTurns, emptyTurns };
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
  let assistantTurns = 0;
  let emptyTurns = 0;
  for (const { role, content } of messages) {
    const assistant = role === 'assistant';
    const empty = assistant && content.trim() === '';
    if (assistant) assistantTurns++;
    if (empty) emptyTurns++;
    segments.push({ text: FALLBACK_ROLE_HEADER(role), supervised: false });
    segments.push({ text: content, supervised: assistant && !empty, eosAfter: assistant && !empty });
    segments.push({ text: '\n', supervised: false });
  }
  return { segments, addBos: true, assistantTurns, emptyTurns };
}

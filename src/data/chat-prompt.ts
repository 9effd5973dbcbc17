/**
 * The prompt a chat model answers next: the conversation so far rendered with the tokenizer's chat template and
 * add_generation_prompt, as transformers' apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
 * does (no special tokens added: the template writes its own). A tokenizer without a template gets the layout chat
 * datasets are trained with on it (chat.ts's fallback: "<|role|>\n" + content + "\n", EOS after each assistant
 * turn), followed by "<|assistant|>\n".
 */
import { Template } from '@huggingface/jinja';
import { FALLBACK_ROLE_HEADER, renderChat, type ChatMessage } from './chat';
import { encodeSegments } from './tokenize';
import type { TextTokenizer } from './types';

export interface ChatPrompt {
  ids: number[];
  /** 'template': the tokenizer's chat template; 'fallback': the plain layout above. */
  layout: 'template' | 'fallback';
  /** Tokens that end the answer: EOS, and the special token the template closes an assistant turn with. */
  stopIds: number[];
  /** Text that ends the answer: the fallback's role headers (a model that skips EOS starts the next turn). */
  stopStrings: string[];
}

export function chatPrompt(messages: ChatMessage[], tokenizer: TextTokenizer): ChatPrompt {
  const eos = tokenizer.eosId === null ? [] : [tokenizer.eosId];
  if (!tokenizer.chatTemplate) {
    const { segments, addBos } = renderChat(messages, tokenizer);
    const withHeader = [...segments, { text: FALLBACK_ROLE_HEADER('assistant'), supervised: false }];
    return {
      ids: Array.from(encodeSegments(tokenizer, withHeader, addBos).inputIds),
      layout: 'fallback',
      stopIds: eos,
      stopStrings: ['user', 'assistant', 'system'].map((role) => FALLBACK_ROLE_HEADER(role).trimEnd()),
    };
  }
  const render = templateRenderer(tokenizer);
  let text: string;
  try {
    text = render(messages, true);
  } catch (err) {
    throw new Error(`the chat template refused this conversation: ${(err as Error).message}`);
  }
  const endOfTurn = endOfTurnToken(render, tokenizer);
  return {
    ids: tokenizer.encode(text, { addSpecial: false }),
    layout: 'template',
    stopIds: endOfTurn === null || eos.includes(endOfTurn) ? eos : [...eos, endOfTurn],
    stopStrings: [],
  };
}

type Render = (messages: ChatMessage[], addGenerationPrompt: boolean) => string;

const renderers = new WeakMap<TextTokenizer, Render>();

/** The template with the tokenizer's own special tokens, as apply_chat_template passes special_tokens_map. */
function templateRenderer(tokenizer: TextTokenizer): Render {
  let render = renderers.get(tokenizer);
  if (!render) {
    const template = new Template(tokenizer.chatTemplate!);
    const tokenText = (id: number | null) => (id === null ? '' : tokenizer.decode([id], { skipSpecial: false }));
    const specialTokens = {
      bos_token: tokenText(tokenizer.bosId),
      eos_token: tokenText(tokenizer.eosId),
      pad_token: tokenText(tokenizer.padId),
    };
    render = (messages, addGenerationPrompt) =>
      template.render({ ...specialTokens, messages, add_generation_prompt: addGenerationPrompt });
    renderers.set(tokenizer, render);
  }
  return render;
}

/**
 * The special token the template writes right after an assistant message (<|im_end|>, <|eot_id|>,
 * <end_of_turn>, ...), found by rendering a short exchange; null when the template writes none there or refuses
 * the probe.
 */
function endOfTurnToken(render: Render, tokenizer: TextTokenizer): number | null {
  const marker = 'lorastudio';
  let text: string;
  try {
    text = render(
      [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: marker },
      ],
      false,
    );
  } catch {
    return null;
  }
  const at = text.lastIndexOf(marker);
  if (at < 0) return null;
  for (const id of tokenizer.encode(text.slice(at + marker.length), { addSpecial: false })) {
    const special = tokenizer.decode([id], { skipSpecial: true }) === '' && tokenizer.decode([id]) !== '';
    if (special) return id;
  }
  return null;
}

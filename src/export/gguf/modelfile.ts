/**
 * An Ollama Modelfile for an exported .gguf: FROM the file, a TEMPLATE in Ollama's Go template syntax where the
 * model's Jinja chat template is one of the plain layouts Ollama has templates for (ChatML, Llama 3), and the
 * end-of-sequence tokens as stop parameters. A chat template is taken as plain only when rendering it with
 * transformers' conventions gives exactly what the Go template gives on a few conversations; any other template
 * (a default system prompt, tools, date headers) is left to the GGUF, whose tokenizer.chat_template recent Ollama
 * versions read.
 */
import { Template } from '@huggingface/jinja';
import type { MergedModel } from '../merged-model';
import { type Json, namedToken, parseJsonFile } from './hf-tokenizer';

interface Message {
  role: string;
  content: string;
}

interface OllamaLayout {
  name: string;
  /** The Go template, as Ollama ships it for this layout. */
  template: string;
  /** What that template renders for `messages`, followed by the assistant's header. */
  render(messages: Message[]): string;
  /** The token that closes a turn. */
  endOfTurn: string;
}

const LAYOUTS: OllamaLayout[] = [
  {
    name: 'ChatML',
    template:
      '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n',
    render: (messages) =>
      messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + '<|im_start|>assistant\n',
    endOfTurn: '<|im_end|>',
  },
  {
    name: 'Llama 3',
    template:
      '{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>\n' +
      '{{- end }}<|start_header_id|>assistant<|end_header_id|>\n\n',
    render: (messages) =>
      messages.map((m) => `<|start_header_id|>${m.role}<|end_header_id|>\n\n${m.content}<|eot_id|>`).join('') +
      '<|start_header_id|>assistant<|end_header_id|>\n\n',
    endOfTurn: '<|eot_id|>',
  },
];

/** Conversations a plain layout must render exactly as the model's template does. */
const PROBES: Message[][] = [
  [{ role: 'user', content: 'Hi there' }],
  [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'What is 2+2?' },
    { role: 'assistant', content: '4' },
    { role: 'user', content: 'And 3+3?' },
  ],
];

/** An Ollama Modelfile for the .gguf file named `ggufFileName`, with the model's chat template where it has one. */
export function ollamaModelfile(model: MergedModel, ggufFileName: string): string {
  const configText = model.files['tokenizer_config.json'];
  const tokenizerConfig = configText === undefined ? null : parseJsonFile(configText, 'tokenizer_config.json');
  const chatTemplate = chatTemplateOf(tokenizerConfig, model.files['chat_template.jinja']);
  const lines = [`FROM ./${ggufFileName}`];
  let layout: OllamaLayout | null = null;
  if (chatTemplate === null) {
    lines.push('# The model has no chat template: prompts are passed through as they are (plain completion).');
    lines.push('TEMPLATE """{{ .Prompt }}"""');
  } else {
    layout = LAYOUTS.find((l) => rendersAs(chatTemplate, l, tokenizerConfig)) ?? null;
    if (layout) {
      lines.push(`# The model's chat template is the ${layout.name} layout.`);
      lines.push(`TEMPLATE """${layout.template}"""`);
    } else {
      lines.push(
        "# TEMPLATE: the model's chat template has no plain Go-template equivalent here (it is not exactly ChatML " +
          'or Llama 3); Ollama takes it from the GGUF file (tokenizer.chat_template).',
      );
    }
  }
  for (const stop of stopTokens(model, tokenizerConfig, layout)) lines.push(`PARAMETER stop ${JSON.stringify(stop)}`);
  return lines.join('\n') + '\n';
}

function chatTemplateOf(config: Json | null, jinjaFile: string | undefined): string | null {
  if (config === null) return null;
  const value = config.chat_template ?? jinjaFile ?? null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value as { name?: unknown; template?: unknown }[];
    const chosen = named.find((t) => t.name === 'default');
    return typeof chosen?.template === 'string' ? chosen.template : null;
  }
  return null;
}

/** Whether the Jinja template renders every probe (with the generation prompt) exactly as the layout does. */
function rendersAs(chatTemplate: string, layout: OllamaLayout, config: Json | null): boolean {
  const bos = namedToken(config, 'bos_token') ?? '';
  const eos = namedToken(config, 'eos_token') ?? '';
  try {
    const template = new Template(chatTemplate);
    return PROBES.every((messages) => {
      let text = template.render({ messages, add_generation_prompt: true, bos_token: bos, eos_token: eos });
      // The BOS a template writes first is the one llama.cpp adds itself (add_bos_token), as Ollama's templates assume.
      if (bos && text.startsWith(bos)) text = text.slice(bos.length);
      return text === layout.render(messages);
    });
  } catch {
    return false;
  }
}

/** EOS as tokenizer_config.json names it and as config.json / generation_config.json number it, and the turn end. */
function stopTokens(model: MergedModel, config: Json | null, layout: OllamaLayout | null): string[] {
  const vocab = tokenTexts(model);
  const stops: string[] = [];
  const add = (text: string | null | undefined) => {
    if (text && !stops.includes(text)) stops.push(text);
  };
  add(namedToken(config, 'eos_token'));
  for (const file of ['generation_config.json', 'config.json']) {
    const text = file === 'config.json' ? model.configJson : model.files[file];
    if (text === undefined) continue;
    const ids = parseJsonFile(text, file).eos_token_id;
    for (const id of Array.isArray(ids) ? ids : [ids]) if (typeof id === 'number') add(vocab.get(id));
  }
  if (layout && [...vocab.values()].includes(layout.endOfTurn)) add(layout.endOfTurn);
  return stops;
}

function tokenTexts(model: MergedModel): Map<number, string> {
  const texts = new Map<number, string>();
  const text = model.files['tokenizer.json'];
  if (text === undefined) return texts;
  const json = parseJsonFile(text, 'tokenizer.json');
  const vocab = ((json.model as Json | undefined)?.vocab ?? {}) as Record<string, number>;
  for (const [token, id] of Object.entries(vocab)) texts.set(id, token);
  for (const t of (json.added_tokens as { id: number; content: string }[] | undefined) ?? [])
    texts.set(t.id, t.content);
  return texts;
}

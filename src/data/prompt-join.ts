/**
 * What goes between a prompt and its completion. TRL's SFTTrainer joins them with nothing ('none', the
 * default); 'chat-template' renders them as a user and an assistant turn of the tokenizer's chat template.
 * Kept apart from tokenize.ts so forms and experiment files can check the setting without the tokenizer code.
 */
export type PromptJoin = 'none' | 'space' | 'newline' | 'chat-template';
export const PROMPT_JOINS: readonly PromptJoin[] = ['none', 'space', 'newline', 'chat-template'];

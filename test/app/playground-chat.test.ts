/**
 * The playground's conversation bookkeeping: shown answers join the turns before a new message replaces them (only
 * for the same model), failed answers are not sent back, and each source's history holds the turns it answered.
 */
import { describe, expect, it } from 'vitest';
import { chatRequestOf, finishedTurns, type ChatState } from '../../src/app/playground-chat';
import { chatMessagesFor } from '../../src/worker/studio-playground';
import type { GenerationResult } from '../../src/worker/protocol';

const answer = (source: string, text: string, extra: Partial<GenerationResult> = {}): GenerationResult => ({
  source: source === 'base' ? 'base' : { runId: source },
  text,
  tokens: 3,
  ms: 10,
  done: true,
  ...extra,
});

const state = (patch: Partial<ChatState> = {}): ChatState => ({
  turns: [{ user: 'hi', results: { base: answer('base', 'hello'), r1: answer('r1', 'hey') } }],
  chatModel: 'm',
  shownMode: 'chat',
  requestId: null,
  order: ['base', 'r1'],
  results: { base: answer('base', 'fine'), r1: answer('r1', '', { error: 'no adapter' }) },
  lastPrompt: 'how are you?',
  ...patch,
});

describe('playground chat turns', () => {
  it('fold the shown answers into the turns once they are a finished chat turn with the same model', () => {
    expect(finishedTurns(state(), 'm').map((t) => t.user)).toEqual(['hi', 'how are you?']);
    expect(finishedTurns(state({ requestId: 'still running' }), 'm')).toHaveLength(1);
    expect(finishedTurns(state({ shownMode: 'completion' }), 'm')).toHaveLength(1);
    // Another model: the conversation starts over.
    expect(finishedTurns(state(), 'other')).toEqual([]);
  });

  it("send each turn's successful answers, and give every source the turns it answered", () => {
    const request = chatRequestOf('Be brief.', finishedTurns(state(), 'm'));
    expect(request).toEqual({
      system: 'Be brief.',
      turns: [
        { user: 'hi', replies: { base: 'hello', r1: 'hey' } },
        { user: 'how are you?', replies: { base: 'fine' } },
      ],
    });
    expect(chatMessagesFor(request, 'base', 'bye')).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
      { role: 'user', content: 'how are you?' },
      { role: 'assistant', content: 'fine' },
      { role: 'user', content: 'bye' },
    ]);
    // r1 failed the second turn (and a new run took part in none): roles still alternate.
    expect(chatMessagesFor({ ...request, system: ' ' }, 'r1', 'bye').map((m) => m.role)).toEqual([
      'user',
      'assistant',
      'user',
    ]);
    expect(chatMessagesFor(request, 'r2', 'bye')).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'bye' },
    ]);
  });
});

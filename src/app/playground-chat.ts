/**
 * The playground's conversation as the store keeps it: finished turns (the user's message and every source's
 * answer), and the request the worker needs from them. Pure: no GPU, no worker.
 */
import type { ChatRequest, GenerationResult } from '../worker/protocol';

export interface ChatTurnRecord {
  user: string;
  /** Keyed by 'base' or run id, as the playground's results. */
  results: Record<string, GenerationResult>;
}

/** What of the playground's state the conversation depends on. */
export interface ChatState {
  turns: ChatTurnRecord[];
  /** The model the turns were with (a conversation does not carry over to another model). */
  chatModel: string | null;
  shownMode: 'completion' | 'chat';
  requestId: string | null;
  order: string[];
  results: Record<string, GenerationResult>;
  lastPrompt: string;
}

/** The finished turns, the shown answers included once they are a finished chat turn with this model. */
export function finishedTurns(p: ChatState, modelKey: string | null): ChatTurnRecord[] {
  if (p.chatModel !== modelKey) return [];
  if (p.shownMode === 'chat' && p.requestId === null && p.order.length > 0)
    return [...p.turns, { user: p.lastPrompt, results: p.results }];
  return p.turns;
}

/** The worker's view: each turn's answers that finished without an error (a stopped answer counts as given). */
export function chatRequestOf(system: string, turns: ChatTurnRecord[]): ChatRequest {
  return {
    system,
    turns: turns.map((t) => ({
      user: t.user,
      replies: Object.fromEntries(
        Object.entries(t.results)
          .filter(([, r]) => r.done && !r.error)
          .map(([key, r]) => [key, r.text]),
      ),
    })),
  };
}

/**
 * The studio's tabs talking to each other (BroadcastChannel): a tab that saved or removed run records says which,
 * and the others read them back from IndexedDB (the source of truth: messages from two tabs can arrive in any
 * order, a read cannot be stale). A tab waiting for the GPU also passes Cancel on to the tab that runs the work.
 * A BroadcastChannel does not hear its own messages, so nothing a tab posts comes back to it.
 */
import type { Command } from '../worker/protocol';

export const TAB_CHANNEL = 'lora-studio-tabs';

/** Commands a waiting tab forwards to the tab whose worker runs the job. */
export type ForwardedCommand = Extract<Command, { type: 'cancelRun' | 'cancelExperiment' }>;

export type TabMessage =
  | { type: 'runs-saved'; ids: string[] }
  | { type: 'runs-removed'; ids: string[] }
  | { type: 'experiments-saved'; ids: string[] }
  | { type: 'experiments-removed'; ids: string[] }
  | { type: 'gpu-command'; command: ForwardedCommand };

export interface TabChannel {
  post(message: TabMessage): void;
  /** Calls `listener` with every message another tab posts; returns the unsubscribe. */
  listen(listener: (message: TabMessage) => void): () => void;
}

/** Over one BroadcastChannel named `name` (every tab of the origin that opens the same name hears it). */
export function broadcastTabs(name = TAB_CHANNEL): TabChannel & { close(): void } {
  const channel = new BroadcastChannel(name);
  const listeners = new Set<(message: TabMessage) => void>();
  channel.onmessage = (e: MessageEvent<TabMessage>) => {
    for (const l of listeners) l(e.data);
  };
  return {
    post: (message) => channel.postMessage(message),
    listen(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: () => channel.close(),
  };
}

/** A tab nobody hears: where BroadcastChannel is missing (other tabs then see changes on their next reload). */
export const unheardTab: TabChannel = { post() {}, listen: () => () => {} };

let shared: TabChannel | null = null;

/** The page's channel: one per page, opened on first use; unheard outside a browser page (tests, workers). */
export function studioTabs(): TabChannel {
  shared ??= typeof window !== 'undefined' && typeof BroadcastChannel === 'function' ? broadcastTabs() : unheardTab;
  return shared;
}

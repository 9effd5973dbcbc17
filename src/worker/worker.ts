/**
 * The training worker: owns the GPUDevice and runs everything that touches it, so the page never blocks.
 * Commands arrive in order; each is handled asynchronously and answers with events (see protocol.ts).
 */
import type { Command, WorkerEvent } from './protocol';
import { messageOf, Studio } from './studio';

const scope = self as unknown as DedicatedWorkerGlobalScope;

const post = (event: WorkerEvent, transfer: Transferable[] = []) => scope.postMessage(event, transfer);
const studio = new Studio(post);

scope.onmessage = (e: MessageEvent<Command>) => {
  void studio.handle(e.data);
};

// Last resort: anything that escaped a handler becomes a visible error instead of a dead worker.
scope.addEventListener('error', (e) =>
  post({ type: 'error', scope: 'internal', message: e.message || 'Unknown worker error' }),
);
scope.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  post({ type: 'error', scope: 'internal', message: messageOf(e.reason) });
});

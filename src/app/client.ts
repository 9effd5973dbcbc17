/** The UI's side of the worker protocol: one module worker, typed send, and event listeners. */
import type { Command, WorkerEvent } from '../worker/protocol';

type Listener = (event: WorkerEvent) => void;

let worker: Worker | null = null;
const listeners = new Set<Listener>();

function ensureWorker(): Worker {
  if (worker) return worker;
  worker = new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'lora-studio-gpu' });
  worker.onmessage = (e: MessageEvent<WorkerEvent>) => {
    for (const l of listeners) l(e.data);
  };
  worker.onerror = (e) => {
    // A worker that fails to start (a syntax error in a chunk, a blocked module) says so here.
    const event: WorkerEvent = {
      type: 'error',
      scope: 'internal',
      message: `The training worker failed: ${e.message || 'it could not start'}`,
    };
    for (const l of listeners) l(event);
  };
  return worker;
}

export function send(cmd: Command): void {
  ensureWorker().postMessage(cmd);
}

export function listen(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

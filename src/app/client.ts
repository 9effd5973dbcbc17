/**
 * The UI's side of the worker protocol: one module worker, typed send, and event listeners. The worker starts
 * once this tab holds the GPU lock (tab-locks.ts): while another tab's worker uses the GPU, commands wait here in
 * order (they reach this tab's worker when it takes over), and Cancel goes to the tab whose worker runs the job.
 */
import { create } from 'zustand';
import type { Command, WorkerEvent } from '../worker/protocol';
import { studioTabs, type ForwardedCommand } from './tab-channel';
import { browserLocks, claimGpu, type GpuClaim, type GpuRole } from './tab-locks';

type Listener = (event: WorkerEvent) => void;

let worker: Worker | null = null;
const listeners = new Set<Listener>();
/** Commands sent before this tab may use the GPU, in the order they were sent. */
const waiting: Command[] = [];
/** This tab holds the GPU lock (or works alone): commands go to the worker. */
let mayUseGpu = false;
const takeOverListeners = new Set<(queued: Command[]) => void>();

/** This tab's role on the GPU, for the UI (TabGpuNotice). */
export const useGpuRole = create<{ role: GpuRole }>(() => ({ role: 'asking' }));

/** What persistence needs to know about the GPU lock. */
export interface GpuTab {
  /** True when this tab may use the GPU now; false when another tab's worker has it (its runs are not ours). */
  decided(): Promise<boolean>;
  /** `listener` runs when this tab takes the GPU over from a tab that closed, with the commands queued meanwhile. */
  onTakeOver(listener: (queued: Command[]) => void): void;
}

let claim: GpuClaim | null = null;

function gpuClaim(): GpuClaim {
  if (claim) return claim;
  claim = claimGpu(browserLocks(), (role) => useGpuRole.setState({ role }));
  let waited = false;
  void claim.decided.then((owner) => {
    waited = !owner;
  });
  void claim.granted.then(() => {
    mayUseGpu = true;
    const queued = waiting.splice(0);
    if (waited) for (const l of takeOverListeners) l(queued);
    if (queued.length) {
      const w = ensureWorker();
      for (const cmd of queued) w.postMessage(cmd);
    }
  });
  // Cancel pressed in a waiting tab reaches the worker that runs the job.
  studioTabs().listen((message) => {
    if (message.type === 'gpu-command' && worker) worker.postMessage(message.command);
  });
  return claim;
}

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
  gpuClaim();
  if (mayUseGpu) return ensureWorker().postMessage(cmd);
  if (isForwarded(cmd) && !queuedHere(cmd.id)) return studioTabs().post({ type: 'gpu-command', command: cmd });
  waiting.push(cmd);
}

export function listen(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export const gpuTab: GpuTab = {
  decided: () => gpuClaim().decided,
  onTakeOver(listener) {
    takeOverListeners.add(listener);
  },
};

function isForwarded(cmd: Command): cmd is ForwardedCommand {
  return cmd.type === 'cancelRun' || cmd.type === 'cancelExperiment';
}

/** A run or experiment this tab started while waiting: its Cancel waits with it, for this tab's worker. */
function queuedHere(id: string): boolean {
  return waiting.some(
    (c) => (c.type === 'startRun' && c.config.id === id) || (c.type === 'startExperiment' && c.id === id),
  );
}

/**
 * The peer libraries (jax-js, TensorFlow.js' WebGPU backend), loaded on demand through dynamic imports. Both find
 * WebGPU through navigator.gpu: in the studio's worker that is the tab's own, in the CLI our Dawn instance
 * (node-env.ts puts it there first), so every number of a bench run comes from the same adapter and driver.
 * A peer that cannot start rejects with the reason it gave, so the bench can report it in that peer's place.
 */
import type * as JaxModule from '@jax-js/jax';
import type * as TfModule from '@tensorflow/tfjs-core';

export type Jax = typeof JaxModule;
export type Tf = typeof TfModule;

export type PeerId = 'jax' | 'tf';
export const PEER_IDS: readonly PeerId[] = ['jax', 'tf'];
/** The peers' names in tables and results (MatmulResult.impl, TrainBenchResult.impl). */
export const PEER_NAMES: Record<PeerId, string> = { jax: 'jax-js', tf: 'tfjs-webgpu' };

export interface PeerUnavailable {
  peer: PeerId;
  name: string;
  error: string;
}

let jaxPromise: Promise<Jax> | null = null;
let tfPromise: Promise<Tf> | null = null;

/** jax-js with its WebGPU backend as the default device. */
export function loadJax(): Promise<Jax> {
  jaxPromise ??= retryable(
    async () => {
      const jax = (await import('@jax-js/jax')) as Jax;
      // jax-js logs why requestDevice failed and reports only "no webgpu device": keep its words.
      const { value: devices, messages } = await capturing('error', () => jax.init('webgpu'));
      if (!devices.includes('webgpu')) {
        throw new Error(
          `jax-js could not start its WebGPU backend${messages.length ? `: ${messages.join('; ')}` : ' (no WebGPU adapter)'}`,
        );
      }
      jax.defaultDevice('webgpu');
      return jax;
    },
    () => (jaxPromise = null),
  );
  return jaxPromise;
}

/** TensorFlow.js core with the WebGPU backend selected (the backend registers itself at import if navigator.gpu exists). */
export function loadTf(): Promise<Tf> {
  tfPromise ??= retryable(
    async () => {
      const tf = (await import('@tensorflow/tfjs-core')) as Tf;
      await import('@tensorflow/tfjs-backend-webgpu');
      // setBackend resolves false and logs the cause with console.warn: keep its words.
      const { value: ok, messages } = await capturing('warn', () => tf.setBackend('webgpu'));
      if (!ok)
        throw new Error(
          `TensorFlow.js could not start its WebGPU backend${messages.length ? `: ${messages.join('; ')}` : ''}`,
        );
      await tf.ready();
      return tf;
    },
    () => (tfPromise = null),
  );
  return tfPromise;
}

/**
 * Gives back the GPU memory TensorFlow.js holds: its WebGPU backend keeps every buffer it ever freed for reuse, which
 * in a browser tab stays taken from training. The backend is disposed and its factory registered again, so the next
 * loadTf starts a fresh one.
 */
export async function releaseTf(): Promise<void> {
  const tf = await tfPromise?.catch(() => null);
  if (!tf) return;
  tfPromise = null;
  try {
    const factory = tf.findBackendFactory('webgpu');
    tf.removeBackend('webgpu');
    if (factory) tf.registerBackend('webgpu', factory);
  } catch (e) {
    // Only memory is at stake: the measurements are taken, so the bench goes on.
    console.warn(`Could not release TensorFlow.js' WebGPU memory: ${(e as Error).message}`);
  }
}

/** A failed load is forgotten, so the next bench run tries again. */
function retryable<T>(load: () => Promise<T>, forget: () => void): Promise<T> {
  return load().catch((e: unknown) => {
    forget();
    throw e;
  });
}

/** Runs f while collecting what the library prints through console[level] (still printed). */
async function capturing<T>(level: 'error' | 'warn', f: () => Promise<T>): Promise<{ value: T; messages: string[] }> {
  const original = console[level];
  const messages: string[] = [];
  console[level] = (...xs: unknown[]) => {
    messages.push(
      xs
        .map((x) => (x instanceof Error ? x.message : String(x)))
        .join(' ')
        .split('\n')[0],
    );
    original(...xs);
  };
  try {
    return { value: await f(), messages };
  } finally {
    console[level] = original;
  }
}

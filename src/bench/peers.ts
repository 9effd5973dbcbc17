/**
 * The peer libraries (jax-js, TensorFlow.js' WebGPU backend), loaded in this Node process on the same
 * Dawn instance as our device, so every number in a bench run comes from the same adapter and driver.
 * They are dev dependencies, imported lazily: the bench reports a peer as unavailable instead of failing.
 */
import type * as JaxModule from '@jax-js/jax';
import type * as TfModule from '@tensorflow/tfjs-core';

export type Jax = typeof JaxModule;
export type Tf = typeof TfModule;

/** Both peers find WebGPU through navigator.gpu, which Node lacks: give them our Dawn instance. */
export function exposeNavigatorGpu(gpu: GPU): void {
  Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true });
}

let jaxPromise: Promise<Jax> | null = null;
let tfPromise: Promise<Tf> | null = null;

/** jax-js with its WebGPU backend as the default device (call exposeNavigatorGpu first). */
export function loadJax(): Promise<Jax> {
  jaxPromise ??= (async () => {
    const jax = (await import('@jax-js/jax')) as Jax;
    const devices = await jax.init('webgpu');
    if (!devices.includes('webgpu')) throw new Error('jax-js found no WebGPU adapter');
    jax.defaultDevice('webgpu');
    return jax;
  })();
  return jaxPromise;
}

/** TensorFlow.js core with the WebGPU backend selected (call exposeNavigatorGpu first: the backend checks at import). */
export function loadTf(): Promise<Tf> {
  tfPromise ??= (async () => {
    const tf = (await import('@tensorflow/tfjs-core')) as Tf;
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) throw new Error('TensorFlow.js could not start its WebGPU backend');
    await tf.ready();
    return tf;
  })();
  return tfPromise;
}

/** The installed version of a package (for the report), or '?' when it cannot be read. */
export async function packageVersion(name: string): Promise<string> {
  try {
    const { createRequire } = await import('node:module');
    const { readFile } = await import('node:fs/promises');
    const { dirname, join } = await import('node:path');
    const require = createRequire(join(process.cwd(), 'package.json'));
    // Resolve the entry point (package.json itself is often not exported), then walk up to the package root.
    let dir = dirname(require.resolve(name));
    for (let i = 0; i < 5; i++) {
      const text = await readFile(join(dir, 'package.json'), 'utf8').catch(() => null);
      if (text) {
        const pkg = JSON.parse(text) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? '?';
      }
      dir = dirname(dir);
    }
  } catch {
    // fall through
  }
  return '?';
}

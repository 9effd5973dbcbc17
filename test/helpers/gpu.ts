/** Shared kernel-test harness: one Dawn device per test file, comparison against float64 references. */
import { expect } from 'vitest';
import { Gpu } from '../../src/gpu/gpu';
import { nodeDevice } from '../../src/gpu/node-device';

let gpuPromise: Promise<Gpu> | null = null;

export function testGpu(): Promise<Gpu> {
  gpuPromise ??= nodeDevice().then((h) => new Gpu(h));
  return gpuPromise;
}

/** Records with `record`, runs the list once and waits for the GPU. */
export async function runOnce(gpu: Gpu, record: (list: ReturnType<Gpu['list']>) => void): Promise<void> {
  gpu.device.pushErrorScope('validation');
  const list = gpu.list('test');
  record(list);
  list.run();
  await gpu.sync();
  const err = await gpu.device.popErrorScope();
  if (err) throw new Error(`WebGPU validation error: ${err.message}`);
  gpu.checkErrors('test');
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| elementwise, reporting the worst element.
 * f32 kernels vs float64 references: defaults suit sums of up to a few thousand terms.
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  name: string,
  { atol = 1e-5, rtol = 1e-4 }: { atol?: number; rtol?: number } = {},
): void {
  expect(actual.length, `${name}: length`).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!Number.isFinite(a) || excess > worstExcess) {
      worst = i;
      worstExcess = Number.isFinite(a) ? excess : Infinity;
    }
  }
  if (worst >= 0) {
    expect.fail(`${name}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}

/** Central finite-difference derivative of a float64 function (for checking backward references). */
export function numericGrad(f: (x: Float64Array) => number, x: Float64Array, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const keep = x[i];
    x[i] = keep + h;
    const up = f(x);
    x[i] = keep - h;
    const down = f(x);
    x[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/**
 * Sampling one token from a logits row on the GPU (repetition penalty, temperature, top-k, top-p, min-p, a seeded
 * draw): decoding reads back the token, 4 bytes, never the logits. sample.ref.ts is its float64 reference.
 */
import code from '../../shaders/sample.wgsl?raw';
import type { CommandList, DispatchHandle, KernelSpec } from '../gpu/gpu';
import { f32, u32, type ParamValue } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import type { SampleParams } from './sample.ref';
import { checkCount, checkDistinct, checkTensor } from './views';

/** Threads of the one workgroup: 256 on GPUs, 4 on software adapters (each barrier costs them a switch per thread). */
export type SampleVariant = 'wide' | 'narrow';
const THREADS: Record<SampleVariant, number> = { wide: 256, narrow: 4 };

function spec(variant: SampleVariant): KernelSpec {
  return {
    source: { name: 'sample', code },
    entry: 'sample',
    bindings: ['read', 'rw', 'rw'],
    constants: { WG: THREADS[variant] },
  };
}

/** Words of the seen-token bitset for a vocabulary. */
export const seenWords = (vocab: number) => Math.ceil(vocab / 32);

export interface SampleArgs {
  /** f32 [>= vocab]: the logits row (elements 0..vocab). */
  logits: Tensor;
  /** u32 [seenWords(vocab)]: bit i set when token i is in the prompt or was generated; the drawn token's bit is set. */
  seen: Tensor;
  /** u32 [1]: the token. */
  out: Tensor;
  vocab: number;
  settings: SampleParams;
  /** The uniform number in [0, 1) that draws this token (rewrite it per step with the handle's setUniform). */
  u: number;
  variant?: SampleVariant;
}

export interface SampleHandle {
  /** Sets the uniform number of the next run (and the settings, when given): one small queue write. */
  setUniform(u: number, settings?: SampleParams): void;
}

export function sample(list: CommandList, a: SampleArgs): SampleHandle {
  const name = 'sample';
  checkCount(name, 'vocab', a.vocab);
  if (a.vocab === 0) throw new Error(`${name}: vocab must be positive`);
  checkTensor(name, 'logits', a.logits, a.vocab, { ints: false });
  checkTensor(name, 'seen', a.seen, seenWords(a.vocab), { ints: true });
  checkTensor(name, 'out', a.out, 1, { ints: true });
  checkDistinct(name, { seen: a.seen, out: a.out }, { logits: a.logits });
  if (a.variant !== undefined && !(a.variant in THREADS))
    throw new Error(`${name}: unknown variant '${String(a.variant)}' (expected 'wide' or 'narrow')`);
  const variant = a.variant ?? (list.gpu.handle.adapter.software ? 'narrow' : 'wide');
  const params = (u: number, s: SampleParams): ParamValue[] => {
    if (!(u >= 0 && u < 1)) throw new Error(`${name}: u must be in [0, 1), got ${u}`);
    // The shader's thresholds assume these ranges (a top_p of 0 would keep nothing).
    if (!(s.temperature >= 0 && s.topP > 0 && s.topP <= 1 && s.minP >= 0 && s.minP <= 1 && s.repetitionPenalty > 0))
      throw new Error(`${name}: settings out of range: ${JSON.stringify(s)}`);
    return [u32(a.vocab), u32(s.topK), f32(s.temperature), f32(s.topP), f32(s.minP), f32(s.repetitionPenalty), f32(u)];
  };
  let settings = a.settings;
  const handle: DispatchHandle = list.dispatch(
    spec(variant),
    [a.logits, a.seen, a.out],
    params(a.u, settings),
    [1, 1, 1],
  );
  return {
    setUniform(u, next) {
      settings = next ?? settings;
      handle.setParams(params(u, settings));
    },
  };
}

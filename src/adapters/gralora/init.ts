/**
 * GraLoRA initialization as PEFT does it (docs/METHODS.md, GraLoRA): each GA[n] is drawn as [r, in/k] with
 * kaiming_uniform(a=√5) = U(±1/√(in/k)) and stored transposed; GB = 0. The hybrid part is LoRA's init.
 * So ΔW starts at zero.
 */
import type { Rng } from '../../util/random';
import { kaimingUniformA } from '../lora/init';
import type { GraloraWeights } from './layer';

export function graloraInit(
  dims: { in: number; out: number },
  shape: { rank: number; k: number; hybridRank: number },
  rng: Rng,
): GraloraWeights {
  const { rank: r, k, hybridRank: h } = shape;
  const bi = dims.in / k;
  const GA = new Float32Array(k * bi * r);
  for (let n = 0; n < k; n++) {
    const drawn = kaimingUniformA(r, bi, rng); // [r, in/k]: fan_in = in/k
    for (let j = 0; j < r; j++) for (let i = 0; i < bi; i++) GA[(n * bi + i) * r + j] = drawn[j * bi + i];
  }
  const weights: GraloraWeights = { GA, GB: new Float32Array(r * dims.out) };
  if (h > 0) {
    weights.Ag = kaimingUniformA(h, dims.in, rng);
    weights.Bg = new Float32Array(dims.out * h);
  }
  return weights;
}

/** LoRA initialization as PEFT does it: A ~ kaiming_uniform(a=√5) = U(±1/√in), B = 0, so ΔW starts at zero. */
import type { Rng } from '../../util/random';
import type { LoraWeights } from './layer';

export function kaimingUniformA(rank: number, inDim: number, rng: Rng): Float32Array {
  const bound = 1 / Math.sqrt(inDim);
  return rng.uniforms(rank * inDim, -bound, bound);
}

export function loraInit(rank: number, inDim: number, outDim: number, rng: Rng): LoraWeights {
  return { A: kaimingUniformA(rank, inDim, rng), B: new Float32Array(outDim * rank) };
}

/** GoRA's per-matrix importance I_l from W and Ḡ (docs/METHODS.md, GoRA), summed on the GPU, finished in float64. */
import type { Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import { importanceColumns, IMPORTANCE_SUMS } from '../../kernels/gora';
import type { LinearInfo } from '../../model/layout';
import type { ModelWeights } from '../../model/weights';
import type { GoraImportance } from './config';

/** All three statistics of one matrix, so the studio can show them and adaptive N can compare steps. */
export interface ImportanceStats {
  /** mean |W ⊙ G| */
  unionMean: number;
  /** ‖W ⊙ G‖_F */
  unionFrobenius: number;
  /** mean |G| */
  gradMean: number;
  /** ‖G‖_F */
  gradFrobenius: number;
}

export function pickImportance(s: ImportanceStats, kind: GoraImportance): number {
  return kind === 'union_mean' ? s.unionMean : kind === 'union_frobenius_norm' ? s.unionFrobenius : s.gradMean;
}

/**
 * Statistics of every (info, gradient) pair. `divideBy` turns a gradient sum into a mean (adaptive N
 * evaluates the running mean without rescaling the accumulator).
 */
export async function importanceStats(
  gpu: Gpu,
  weights: ModelWeights,
  grads: { info: LinearInfo; grad: Tensor }[],
  divideBy = 1,
): Promise<ImportanceStats[]> {
  const maxIn = Math.max(...grads.map((g) => g.info.in));
  const sums = gpu.tensor([grads.length, maxIn * IMPORTANCE_SUMS], 'gora.importance_sums');
  await gpu.runOnce('gora.importance', (list) => {
    for (const [i, { info, grad }] of grads.entries()) {
      importanceColumns(list, {
        weight: weights.get(info.weight),
        grad,
        sums,
        sumsOffset: i * maxIn * IMPORTANCE_SUMS,
        out: info.out,
        in: info.in,
        conv1d: info.conv1d,
      });
    }
  });
  const all = await gpu.read(sums);
  await gpu.freeTensors([sums]);
  return grads.map(({ info }, i) => {
    let absProd = 0,
      sqProd = 0,
      absGrad = 0,
      sqGrad = 0;
    const base = i * maxIn * IMPORTANCE_SUMS;
    for (let j = 0; j < info.in; j++) {
      const k = base + IMPORTANCE_SUMS * j;
      absProd += all[k];
      sqProd += all[k + 1];
      absGrad += all[k + 2];
      sqGrad += all[k + 3];
    }
    const n = info.in * info.out;
    return {
      unionMean: absProd / n / divideBy,
      unionFrobenius: Math.sqrt(sqProd) / divideBy,
      gradMean: absGrad / n / divideBy,
      gradFrobenius: Math.sqrt(sqGrad) / divideBy,
    };
  });
}

/** Activation recomputation modes of the training graph (see transformer.ts): light, so forms and files can check them. */
export type Recompute = 'none' | 'mlp';
export const RECOMPUTE_MODES: readonly Recompute[] = ['none', 'mlp'];

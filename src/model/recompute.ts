/**
 * Activation recomputation modes of the training graph (see transformer.ts): light, so forms and files can check them.
 *   none   every block keeps its activations for the backward pass
 *   mlp    the blocks share one set of MLP buffers; the backward rebuilds a block's from its saved ln2
 *   block  each block keeps only its input (the residual stream); the backward re-runs the block's forward into
 *          one set of buffers shared by every block
 */
export type Recompute = 'none' | 'mlp' | 'block';
export const RECOMPUTE_MODES: readonly Recompute[] = ['none', 'mlp', 'block'];

/** A dataset too small for its split is said, in the words of where the run was configured. */
import { describe, expect, it } from 'vitest';
import { smallSplitWarning } from '../../src/engine/train-run';
import { CLI_WORDING, STUDIO_WORDING } from '../../src/engine/wording';

describe('smallSplitWarning', () => {
  it('a 3-row file with 8 validation examples asked: 2 train, 1 validates', () => {
    expect(smallSplitWarning(3, 2, 1, 4, STUDIO_WORDING)).toBe(
      'The dataset is small for this run: 3 examples give 2 training examples for batches of 4, so every step repeats them, ' +
        'and a validation loss measured on only 1 example (Val. examples). Its losses say little about the method.',
    );
    expect(smallSplitWarning(3, 2, 1, 4, CLI_WORDING)).toContain('(--val-fraction)');
  });

  it('nothing to say about a split that is big enough', () => {
    expect(smallSplitWarning(100, 90, 10, 8, CLI_WORDING)).toBeNull();
    expect(smallSplitWarning(20, 20, 0, 8, CLI_WORDING)).toBeNull();
  });
});

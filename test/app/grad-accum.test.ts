/**
 * Gradient accumulation in the studio: the run form's field and its effective batch, the form's check in its own
 * words, the memory estimate, the worker's run options, and runs and experiments saved before the setting (1).
 */
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it, vi } from 'vitest';
import { memoryEstimate, targetNames, trainableParameters } from '../../src/app/budget';
import { upgradeExperiment } from '../../src/app/experiment-record';
import { parseConfig } from '../../src/model/config';
import type { ModelCard } from '../../src/worker/protocol';
import { configProblem, gradAccumOf } from '../../src/worker/validate';
import { config } from './fixtures';
import { experimentRecord, plan } from './experiment-fixtures';
import { TINY_CONFIGS } from '../helpers/tiny-models';

vi.mock('../../src/app/store', () => ({ useStudio: (select: (s: unknown) => unknown) => select({}) }));

const spec = parseConfig(TINY_CONFIGS.llama, 'llama/config.json');
const card = { maxPositions: spec.maxPositions, spec, family: spec.family } as ModelCard;

describe('gradient accumulation in the studio', () => {
  it('the run form shows the field next to the batch, with the effective batch', async () => {
    const { RunForm } = await import('../../src/app/components/RunForm');
    const html = renderToStaticMarkup(
      createElement(RunForm, { config: config('a', { batch: 4, gradAccum: 3 }), card, set: () => {} }),
    );
    expect(html).toContain('Gradient accumulation');
    expect(html).toContain('effective batch = 4 × 3 = 12');
    expect(html.indexOf('Gradient accumulation')).toBeGreaterThan(html.indexOf('>Batch<'));
    expect(html.indexOf('Gradient accumulation')).toBeLessThan(html.indexOf('Seq. length'));
    // A run saved before the setting trains one micro-batch per step.
    const saved = renderToStaticMarkup(createElement(RunForm, { config: config('b'), card, set: () => {} }));
    expect(saved).toContain('effective batch = 4 × 1 = 4');
  });

  it("is checked in the form's words: a whole number of micro-batches, at least 1", () => {
    expect(gradAccumOf(config('a'))).toBe(1);
    expect(configProblem(config('a', { gradAccum: 4 }), card)).toBeNull();
    for (const bad of [0, -1, 1.5, Number.NaN])
      expect(configProblem(config('a', { gradAccum: bad }), card)).toBe(
        'Gradient accumulation must be a whole number of micro-batches (at least 1).',
      );
  });

  it("the memory estimate adds the micro-batches' inputs and a gradient sum per trainable, nothing more", () => {
    const c = config('a', { targets: 'qv', rank: 8 });
    const one = memoryEstimate(spec, c);
    const four = memoryEstimate(spec, { ...c, gradAccum: 4 });
    // LoRA on q and v: an A and a B per module (their sizes are multiples of 16 bytes).
    const trainables = 2 * spec.layers * targetNames(spec, 'qv').length;
    const sums = 4 * trainableParameters(spec, c);
    // tokens, targets and positions of 4 micro-batches of 4 x 64 tokens; each micro-batch's loss in the 3 metrics slots.
    const inputs = 3 * 4 * (4 * 64) * 4;
    const metrics = (n: number) => 3 * Math.ceil((4 * n) / 16) * 16;
    expect(four.training - one.training).toBe(sums + inputs + metrics(4 + 2 + trainables) - metrics(3 + trainables));
  });

  it('experiments saved before train.gradAccum existed read as 1 micro-batch per step', () => {
    const r = experimentRecord('x');
    const old = structuredClone(r);
    const definition = { ...old.experiment, train: { ...old.experiment.train } } as typeof old.experiment;
    delete (definition.train as Partial<typeof definition.train>).gradAccum;
    const upgraded = upgradeExperiment({ ...old, experiment: definition, plan: plan(definition) });
    expect(upgraded.experiment.train.gradAccum).toBe(1);
    expect(upgraded.plan!.experiment.train.gradAccum).toBe(1);
    expect(upgradeExperiment(r).experiment.train).toEqual(r.experiment.train);
  });
});

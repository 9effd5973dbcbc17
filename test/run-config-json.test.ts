/**
 * A run configuration as a JSON file: what Export config writes reads back to the same settings, and import
 * refuses what it cannot run, each problem naming its field as the file spells it and as the form labels it.
 */
import { describe, expect, test } from 'vitest';
import { describeRun } from '../src/app/presets';
import {
  parseRunConfigJson,
  runConfigJson,
  runConfigSettings,
  RUN_CONFIG_FORMAT,
  type RunSettings,
} from '../src/app/run-config-json';
import type { RunConfig } from '../src/worker/protocol';

const DEFAULTS: RunSettings = {
  name: 'LoRA q,v r=8',
  method: 'lora',
  rank: 8,
  alpha: 16,
  targets: 'qv',
  lr: 2e-4,
  steps: 200,
  batch: 4,
  seq: 256,
  warmupSteps: 10,
  valExamples: 100,
  evalEvery: 50,
  seed: 0,
};

const nameOf = (s: RunSettings) => describeRun(s, 'llama');
const parse = (text: string) => parseRunConfigJson(text, DEFAULTS, nameOf);
const file = (settings: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ format: RUN_CONFIG_FORMAT, version: 1, settings, ...extra });
const problems = (text: string) => {
  const r = parse(text);
  if (r.ok) throw new Error('expected problems');
  return r.problems;
};

const gora: RunConfig = {
  id: 'x',
  name: 'my GoRA',
  method: 'gora',
  rank: 8,
  alpha: 16,
  targets: 'all-linear',
  lr: 3e-3,
  steps: 80,
  batch: 8,
  gradAccum: 2,
  seq: 64,
  warmupSteps: 5,
  valExamples: 64,
  evalEvery: 20,
  seed: 3,
  recompute: 'mlp',
  truncation: 'right',
  // A draft remembers the options of methods it was switched away from: they are not exported.
  extras: { goraSteps: 8, rankMin: 2, rankMax: 16, graloraK: 4 },
};

describe('run configuration files', () => {
  test("export writes the settings the run uses (no id, no other methods' options); import reads them back", () => {
    const text = runConfigJson(gora);
    const doc = JSON.parse(text);
    expect(doc).toMatchObject({ format: 'lora-studio-run', version: 1 });
    expect(doc.settings.id).toBeUndefined();
    expect(doc.settings.extras).toEqual({ goraSteps: 8, rankMin: 2, rankMax: 16 });
    const r = parse(text);
    expect(r).toEqual({ ok: true, settings: runConfigSettings(gora) });
    const { id: _id, extras: _extras, ...rest } = gora;
    expect(r.ok && r.settings).toEqual({ ...rest, extras: { goraSteps: 8, rankMin: 2, rankMax: 16 } });
  });

  test('settings left out take the defaults of a new run; a missing name is made from the settings', () => {
    const r = parse(file({ method: 'gralora', rank: 16, extras: { graloraK: 4 } }));
    expect(r).toEqual({
      ok: true,
      settings: { ...DEFAULTS, method: 'gralora', rank: 16, extras: { graloraK: 4 }, name: 'GraLoRA q,v r=16 k=4' },
    });
    // The settings object alone (no format wrapper) is read the same way.
    expect(parse(JSON.stringify({ method: 'gralora', rank: 16, extras: { graloraK: 4 } }))).toEqual(r);
  });

  test('bad files: not JSON, not an object, another format, a newer version', () => {
    expect(problems('{ "method": ')[0]).toMatch(/^The file is not valid JSON \(/);
    expect(problems('[1, 2]')).toEqual([
      'The file must hold a JSON object: a run configuration (Export config on a run card).',
    ]);
    expect(problems(JSON.stringify({ format: 'lora-studio-metrics', version: 1, runs: [] }))).toEqual([
      'This file is not a run configuration: its "format" is "lora-studio-metrics", not "lora-studio-run" (a run card\'s Export config writes one).',
    ]);
    expect(problems(JSON.stringify({ settings: { steps: 10 } }))).toEqual([
      'The file has "settings" but no "format": a run configuration says "format": "lora-studio-run" (a run card\'s Export config writes one).',
    ]);
    expect(problems(JSON.stringify({ format: RUN_CONFIG_FORMAT, version: 2, settings: {} }))).toEqual([
      '"version" must be 1 (got 2): this studio reads version 1 run configurations.',
    ]);
    expect(problems(file({}, { comment: 'hi' }))).toEqual([
      '"comment" is not part of a run configuration file (it holds format, version and settings).',
    ]);
    expect(problems(JSON.stringify({ format: RUN_CONFIG_FORMAT, version: 1, settings: 'lora' }))).toEqual([
      '"settings" must be an object of run settings (got "lora").',
    ]);
  });

  test('every unknown or invalid field is listed, named as in the file and as the form labels it', () => {
    expect(
      problems(
        file({
          stepz: 10,
          method: 'lorax',
          lr: -1,
          batch: 2.5,
          seq: 1,
          targets: 'everything',
          truncation: 'left',
          recompute: true,
          name: '',
          seed: 'zero',
        }),
      ),
    ).toEqual([
      '"stepz" is not a run setting. The settings are: name, method, rank, alpha, targets, lr, steps, batch, gradAccum, seq, truncation, warmupSteps, valExamples, evalEvery, seed, recompute, extras.',
      '"name" (Run name) must be a non-empty text (got "").',
      '"method" (Method) must be one of lora, rslora, gora, gralora, gelora, dora, pissa, loraga, adalora, full (got "lorax").',
      '"targets" (Targets) must be one of qv, all-linear (got "everything").',
      '"lr" (Learning rate) must be a positive number (got -1).',
      '"batch" (Batch) must be a whole number of at least 1 (got 2.5).',
      '"seq" (Seq. length) must be a whole number of at least 2 (got 1).',
      '"truncation" (Truncation) must be one of keep-answer, right (got "left").',
      '"seed" (Seed) must be a whole number (got "zero").',
      '"recompute" (Activations) must be one of none, mlp, block (got true).',
    ]);
    // The rank of an allocating method is its budget, r_ref.
    expect(problems(file({ method: 'gora', rank: 0 }))).toEqual([
      '"rank" (r_ref) must be a whole number of at least 1 (got 0).',
    ]);
  });

  test('method options: unknown ones, values out of range, options of another method, checks across options', () => {
    expect(problems(file({ method: 'gora', extras: { goraStepz: 8, goraSteps: 0 } }))).toEqual([
      expect.stringMatching(/^"extras\.goraStepz" is not an option of any method\. The options are: .*goraSteps/),
      '"extras.goraSteps": GoRA N batches must be a whole number of at least 1 (got 0).',
    ]);
    expect(problems(file({ method: 'lora', extras: [] }))).toEqual([
      '"extras" must be an object of method options, e.g. {"graloraK": 2} (got []).',
    ]);
    expect(problems(file({ method: 'lora', extras: { graloraK: 2 } }))).toEqual([
      '"extras.graloraK" (k) is not an option of LoRA: it belongs to GoRA, GraLoRA, GeLoRA.',
    ]);
    // GoRA reads k only with the GraLoRA structure.
    expect(problems(file({ method: 'gora', extras: { graloraK: 2 } }))).toEqual([
      '"extras.graloraK": GoRA k applies to GoRA only with the GraLoRA structure (structure gralora).',
    ]);
    expect(problems(file({ method: 'gralora', rank: 8, extras: { graloraK: 3 } }))).toEqual([
      '"extras.graloraK": GraLoRA rank 8 must be divisible by k 3: each of the k x k blocks gets rank r/k.',
    ]);
  });
});

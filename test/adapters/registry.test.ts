/**
 * The method registry: every option described once, defaults filled in one place, and each problem worded for the
 * CLI (its flags) and for the studio (its field names, never a flag).
 */
import { describe, expect, it } from 'vitest';
import { GELORA_DEFAULTS } from '../../src/adapters/gelora/config';
import { GORA_DEFAULTS } from '../../src/adapters/gora/config';
import {
  cliMessages,
  formMessages,
  METHOD_IDS,
  METHOD_REGISTRY,
  methodProblems,
  resolveMethodOptions,
  type MethodId,
} from '../../src/adapters/registry';
import { methodFlagSpecs, methodOptionsFromFlags } from '../../src/cli/method-flags';

const problems = (method: MethodId, given: Record<string, unknown>, rank = 8, alpha = 16) =>
  methodProblems(method, { rank, alpha, given: given as never });

describe('method registry', () => {
  it('lists every method once, and each option once per method, with one kind per shared flag', () => {
    expect(METHOD_IDS).toEqual([
      'lora',
      'rslora',
      'gora',
      'gralora',
      'gelora',
      'dora',
      'pissa',
      'loraga',
      'adalora',
      'full',
    ]);
    const kinds = new Map<string, string>();
    for (const m of METHOD_REGISTRY) {
      const keys = m.options.map((o) => o.key);
      expect(new Set(keys).size, m.id).toBe(keys.length);
      for (const o of m.options) {
        expect(kinds.get(o.flag) ?? o.kind, `${m.id} --${o.flag}`).toBe(o.kind);
        kinds.set(o.flag, o.kind);
        expect(o.help.length, `${m.id} ${o.key}`).toBeGreaterThan(10);
      }
    }
  });

  it('fills in every default in one place, computed ones included', () => {
    expect(resolveMethodOptions('gora', 8, {}).values).toEqual({
      structure: 'dense',
      goraSteps: GORA_DEFAULTS.steps,
      goraGamma: GORA_DEFAULTS.gamma,
      rankMin: GORA_DEFAULTS.rankMin,
      rankMax: GORA_DEFAULTS.rankMax,
      goraImportance: GORA_DEFAULTS.importance,
      goraFeatures: 'identity',
      goraRounding: 'paper',
      goraAdaptiveSteps: false,
    });
    // k follows the total rank (2 below 64, 4 from 64), halved until it divides the block rank.
    expect(resolveMethodOptions('gralora', 8, {}).values).toEqual({ graloraK: 2, hybridRank: 0 });
    expect(resolveMethodOptions('gralora', 60, { hybridRank: 4 }).values).toEqual({ graloraK: 4, hybridRank: 4 });
    expect(resolveMethodOptions('gralora', 6, { hybridRank: 58 }).values.graloraK).toBe(2);
    // The block options apply to an allocating method only with the GraLoRA structure.
    expect(resolveMethodOptions('gelora', 8, { structure: 'gralora' }).applicable.map((o) => o.key)).toContain(
      'graloraK',
    );
    expect(resolveMethodOptions('gelora', 8, {}).applicable.map((o) => o.key)).not.toContain('graloraK');
    expect(resolveMethodOptions('gelora', 8, {}).values.geloraSamples).toBe(GELORA_DEFAULTS.samples);
  });

  const cases: [MethodId, Record<string, unknown>, string, string][] = [
    [
      'gora',
      { rankMin: 9, rankMax: 4 },
      '--rank-min (9) is larger than --rank-max (4)',
      'GoRA r_min (9) is larger than r_max (4): no rank fits both bounds.',
    ],
    [
      'gora',
      { goraSteps: 0 },
      '--gora-steps must be an integer >= 1 (got 0)',
      'GoRA N batches must be a whole number of at least 1 (got 0).',
    ],
    [
      'gora',
      { goraGamma: -1 },
      '--gora-gamma must be a finite number >= 0 (got -1)',
      'GoRA γ must be a number of at least 0 (got -1).',
    ],
    [
      'gora',
      { goraImportance: 'nuc' },
      '--gora-importance must be one of union_mean, union_frobenius_norm, grad_mean (got "nuc")',
      'GoRA importance must be one of',
    ],
    [
      'gralora',
      { graloraK: 0 },
      '--gralora-k must be an integer >= 1 (got 0)',
      'GraLoRA k must be a whole number of at least 1 (got 0).',
    ],
    [
      'gralora',
      { hybridRank: -1 },
      '--hybrid-r must be an integer >= 0 (got -1)',
      'GraLoRA hybrid r must be a whole number of at least 0 (got -1).',
    ],
    [
      'gelora',
      { geloraSamples: 100_000 },
      '--gelora-samples must be an integer from 3 to 4096 (got 100000)',
      'GeLoRA samples must be a whole number from 3 to 4096 (got 100000).',
    ],
    [
      'gelora',
      { geloraPerSequence: 0 },
      '--gelora-per-sequence must be an integer >= 1',
      'GeLoRA per sequence must be',
    ],
    [
      'gelora',
      { geloraRounding: 'floor' },
      '--gelora-rounding must be one of ceil, round',
      'GeLoRA rounding must be one of ceil, round',
    ],
    [
      'gelora',
      { geloraBudget: 'x' },
      '--gelora-budget must be one of raw, fit',
      'GeLoRA budget must be one of raw, fit',
    ],
    ['gelora', { geloraScale: 'y' }, '--gelora-scale must be one of uniform, paper32', 'GeLoRA scale must be one of'],
    [
      'gelora',
      { rankMax: 1.5 },
      '--rank-max must be an integer >= 1 (got 1.5)',
      'GeLoRA r_max must be a whole number of at least 1 (got 1.5).',
    ],
    ['pissa', { pissaNiter: -1 }, '--pissa-niter must be an integer', 'PiSSA SVD iterations must be a whole number'],
    [
      'loraga',
      { loragaDirection: 'up' },
      '--direction must be one of ArBr, A2rBr, ArB2r, random',
      'LoRA-GA direction must be one of',
    ],
    [
      'loraga',
      { loragaBatches: 0 },
      '--loraga-batches must be an integer >= 1',
      'LoRA-GA N batches must be a whole number of at least 1',
    ],
    [
      'adalora',
      { initR: 4 },
      '--init-r (4) is smaller than the rank (target_r 8)',
      'AdaLoRA init_r (4) is smaller than the rank',
    ],
    ['adalora', { beta1: 1 }, '--beta1 must be in (0, 1) (got 1)', 'AdaLoRA β1 must be in (0, 1) (got 1).'],
    [
      'adalora',
      { tinit: 8, totalStep: 10, tfinal: 2 },
      '--tinit (8) must be below --total-step − --tfinal (10 − 2)',
      'AdaLoRA t_init (8) must be below total steps − t_final (10 − 2)',
    ],
  ];
  for (const [method, given, cli, form] of cases) {
    it(`${method} ${JSON.stringify(given)}: the CLI names its flag, the studio its field`, () => {
      const p = problems(method, given);
      expect(cliMessages(p)[0]).toContain(cli);
      expect(formMessages(method, p)[0]).toContain(form);
      expect(formMessages(method, p).join(' ')).not.toContain('--');
    });
  }

  it('GraLoRA: a rank the blocks cannot share', () => {
    const p = problems('gralora', { graloraK: 4 }, 6);
    expect(cliMessages(p)).toEqual([
      '--rank 6 must be divisible by --gralora-k 4: each of the k x k blocks gets rank r/k',
    ]);
    expect(formMessages('gralora', p)).toEqual([
      'GraLoRA rank 6 must be divisible by k 4: each of the k x k blocks gets rank r/k.',
    ]);
  });

  it('rank and alpha, in both words', () => {
    expect(cliMessages(problems('gora', {}, 0))).toEqual(['--rank must be an integer >= 1 (got 0)']);
    expect(formMessages('gora', problems('gora', {}, 0))).toEqual([
      'GoRA r_ref must be a whole number of at least 1 (got 0).',
    ]);
    expect(cliMessages(problems('lora', {}, 8, -1))).toEqual(['--alpha must be a positive number (got -1)']);
  });

  it('the CLI flags come from the registry: every option has its flag, and the help says its default', () => {
    const specs = methodFlagSpecs();
    for (const m of METHOD_REGISTRY) for (const o of m.options) expect(specs[o.flag], o.flag).toBeDefined();
    expect(specs['gora-steps'].help).toContain(`(default ${GORA_DEFAULTS.steps})`);
    expect(specs['rank-max'].help).toMatch(/^GoRA: .*; GeLoRA: /);
    expect(specs['gralora-k'].help).toContain('default: 2 up to total rank 32, 4 from 64');
    expect(methodOptionsFromFlags({ 'gora-steps': 4, 'rank-max': 16, seq: 3 })).toEqual({ goraSteps: 4, rankMax: 16 });
  });
});

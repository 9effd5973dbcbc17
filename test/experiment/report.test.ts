import { strFromU8, unzipSync } from 'fflate';
import Papa from 'papaparse';
import { describe, expect, it } from 'vitest';
import {
  budgetSweepSvg,
  experimentCliCommand,
  formatLr,
  formatParams,
  formatPValue,
  HTML_BEST_BADGE,
  logScale,
  lossCurvesSvg,
  lrSensitivitySvg,
  MARKDOWN_BEST_BADGE,
  moduleCell,
  rankHeatmapSvg,
  reportHtml,
  reportMarkdown,
  reportZip,
  RUNS_CSV_COLUMNS,
  runsCsv,
} from '../../src/experiment/report';
import { meanCi95, pairedTTest } from '../../src/experiment/stats';
import type {
  Experiment,
  ExperimentMethod,
  ExperimentResults,
  ExperimentRunResult,
  MethodSummary,
} from '../../src/experiment/types';

const ODD_NAME = 'gora <&> r4-16';
const FAILURE = 'non-finite loss at step 12, "diverged"\nsee the run log';
const COMMAND = experimentCliCommand('experiments/my exp.json', 'out/exp');

/** A deterministic pseudo-random stream (so the fixture's numbers never change between runs). */
function noise(seed: number): () => number {
  let s = seed * 2654435761 + 12345;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
}

function method(name: string, id: ExperimentMethod['method'], extra: Partial<ExperimentMethod> = {}): ExperimentMethod {
  return {
    name,
    method: id,
    rank: 8,
    rankMatched: false,
    alpha: 16,
    targets: ['q_proj', 'v_proj'],
    options: {},
    ...extra,
  };
}

function experimentOf(methods: ExperimentMethod[], lrs: number[], seeds: number[]): Experiment {
  return {
    name: 'stories15M on alpaca-mini',
    model: 'models/stories15M',
    data: 'data/alpaca-mini.jsonl',
    split: { validation: 0.1, test: 0.1, seed: 7 },
    train: {
      steps: 20,
      batch: 4,
      gradAccum: 1,
      warmup: 2,
      weightDecay: 0,
      maxGradNorm: 1,
      minLrRatio: 0.1,
      lrRatioB: 1,
      truncation: 'keep-answer',
      promptJoin: 'newline',
      packing: 'auto',
      recompute: 'none',
      evalEvery: 10,
    },
    methods,
    lrs,
    seeds,
    baseline: methods[0].name,
    referenceRank: 8,
    exactMatch: 50,
  };
}

interface RunPlan {
  /** Final loss offset of the configuration against the baseline (negative: better). */
  offset: number;
  /** Loss penalty of a rate away from the configuration's best one. */
  lrPenalty: (lr: number) => number;
  params: number;
  ranks: (seed: number) => Record<string, number>;
  failed?: { lr: number; seed: number };
}

function runOf(m: ExperimentMethod, plan: RunPlan, lr: number, seed: number): ExperimentRunResult {
  const rand = noise(seed * 31 + Math.round(lr * 1e5) + m.name.length * 977);
  const seedShift = [0.02, -0.01, 0.005, 0][seed] ?? 0; // paired design: a seed moves every method alike
  const final = 2.1 + plan.offset + plan.lrPenalty(lr) + seedShift + 0.01 * rand();
  const failed = plan.failed && plan.failed.lr === lr && plan.failed.seed === seed;
  const curve = Array.from({ length: 20 }, (_, step) => ({
    step,
    // Step 5 was skipped (no supervised token in its batch).
    loss: step === 5 ? null : final + 1.5 * Math.exp(-step / 5) + 0.05 * rand(),
  }));
  return {
    name: m.name,
    method: m.method,
    lr,
    seed,
    status: failed ? 'failed' : 'done',
    error: failed ? FAILURE : undefined,
    trainableParams: plan.params,
    valLoss: failed ? null : final + 0.01,
    testLoss: failed ? null : final,
    valTokens: failed ? 0 : 5120,
    testTokens: failed ? 0 : 5004,
    exactMatch: failed ? undefined : 0.2 - plan.offset,
    adapter: `runs/${m.name}/lr${lr}/seed${seed}`,
    elapsedMs: 12_345 + seed,
    tokensPerSecond: 4321.5,
    curve: failed ? curve.slice(0, 12) : curve,
    valCurve: failed
      ? []
      : [
          { step: 0, loss: 3.6 },
          { step: 19, loss: final + 0.01 },
        ],
    batchHash: `hash-${seed}`,
    ranks: plan.ranks(seed),
  };
}

function verdictOf(diff: ReturnType<typeof pairedTTest>): string {
  if (diff.n < 2 || diff.p === null) return `no difference resolved with ${diff.n} seed${diff.n === 1 ? '' : 's'}`;
  if (diff.hi < 0 || diff.lo > 0) {
    const side = diff.mean < 0 ? 'lower' : 'higher';
    return `${side} by ${Math.abs(diff.mean).toFixed(3)} ± ${diff.half.toFixed(3)} nats (${formatPValue(diff.p)})`;
  }
  return `no difference resolved with ${diff.n} seeds`;
}

/** Summaries computed from the runs the way the experiment does: rate on validation, statistics on test. */
function summarize(experiment: Experiment, runs: ExperimentRunResult[], referenceParams: number): ExperimentResults {
  const done = runs.filter((r) => r.status === 'done');
  const testAtBest = new Map<string, Map<number, number>>();
  const partial = experiment.methods.map((m) => {
    const ofMethod = done.filter((r) => r.name === m.name);
    const lrCurve = experiment.lrs.map((lr) => {
      const ci = meanCi95(ofMethod.filter((r) => r.lr === lr).map((r) => r.valLoss!));
      return { lr, valMean: ci.mean, valCi95: [ci.lo, ci.hi] as [number, number], n: ci.n };
    });
    const bestLr = lrCurve.reduce((a, b) => (b.valMean < a.valMean ? b : a)).lr;
    const atBest = ofMethod.filter((r) => r.lr === bestLr);
    testAtBest.set(m.name, new Map(atBest.map((r) => [r.seed, r.testLoss!])));
    const test = meanCi95(atBest.map((r) => r.testLoss!));
    const params = ofMethod[0]?.trainableParams ?? 0;
    return {
      name: m.name,
      method: m.method,
      bestLr,
      valLossMean: lrCurve.find((p) => p.lr === bestLr)!.valMean,
      testLossMean: test.mean,
      testLossCi95: [test.lo, test.hi] as [number, number],
      nSeeds: test.n,
      exactMatchMean: meanCi95(atBest.map((r) => r.exactMatch!)).mean,
      trainableParams: params,
      budgetRatio: params / referenceParams,
      lrCurve,
    };
  });
  const base = testAtBest.get(experiment.baseline)!;
  const best: string[] = [];
  const summary: MethodSummary[] = partial.map((s) => {
    if (s.name === experiment.baseline) return { ...s, vsBaseline: null, verdict: 'baseline' };
    const mine = testAtBest.get(s.name)!;
    const seeds = [...mine.keys()].filter((seed) => base.has(seed)).sort();
    const diff = pairedTTest(
      seeds.map((seed) => mine.get(seed)!),
      seeds.map((seed) => base.get(seed)!),
    );
    if (diff.p !== null && diff.hi < 0) best.push(s.name);
    return {
      ...s,
      vsBaseline: { diffMean: diff.mean, diffCi95: [diff.lo, diff.hi], pValue: diff.p, nPairs: diff.n },
      verdict: verdictOf(diff),
    };
  });
  return {
    experiment,
    runs,
    baseline: experiment.baseline,
    summary,
    referenceParams,
    best,
    splitSizes: { train: 800, validation: 100, test: 100 },
  };
}

const uniformRanks = (rank: number) => () => ({
  'model.layers.0.self_attn.q_proj': rank,
  'model.layers.0.self_attn.v_proj': rank,
  'model.layers.1.self_attn.q_proj': rank,
  'model.layers.1.self_attn.v_proj': rank,
});

function fixture(opts: { lrs?: number[]; seeds?: number[]; equalBudgets?: boolean } = {}): ExperimentResults {
  const lrs = opts.lrs ?? [0.0003, 0.003];
  const seeds = opts.seeds ?? [0, 1, 2];
  const methods = [
    method('lora-r8', 'lora'),
    method('gralora-k2', 'gralora', { options: { graloraK: 2 } }),
    method(ODD_NAME, 'gora', { rankMatched: true, options: { rankMin: 4, rankMax: 16 } }),
  ];
  const experiment = experimentOf(methods, lrs, seeds);
  const plans: RunPlan[] = [
    { offset: 0, lrPenalty: (lr) => (lr > 0.001 ? 0.08 : 0), params: 16_384, ranks: uniformRanks(8) },
    { offset: -0.04, lrPenalty: (lr) => (lr > 0.001 ? 0.05 : 0), params: 16_384, ranks: uniformRanks(8) },
    {
      offset: 0.001,
      lrPenalty: (lr) => (lr < 0.001 ? 0.06 : 0),
      params: opts.equalBudgets ? 16_384 : 18_350,
      ranks: (seed) => ({
        'model.layers.0.self_attn.q_proj': 4 + seed,
        'model.layers.0.self_attn.v_proj': 12,
        'model.layers.1.self_attn.q_proj': 16,
        'model.layers.1.self_attn.v_proj': 6,
      }),
      failed: { lr: 0.003, seed: 2 },
    },
  ];
  const runs = methods.flatMap((m, i) => lrs.flatMap((lr) => seeds.map((seed) => runOf(m, plans[i], lr, seed))));
  return summarize(experiment, runs, 16_384);
}

const results = fixture();

describe('fixture sanity', () => {
  it('has the shape the report is tested on', () => {
    expect(results.runs).toHaveLength(18);
    expect(results.runs.filter((r) => r.status === 'failed')).toHaveLength(1);
    expect(results.best).toEqual(['gralora-k2']);
    expect(results.summary.find((s) => s.name === ODD_NAME)!.bestLr).toBe(0.003);
    expect(results.summary.find((s) => s.name === ODD_NAME)!.verdict).toMatch(/^no difference resolved/);
  });
});

describe('runsCsv', () => {
  it('parses back to one row per run, the failed one with its error and empty losses', () => {
    const csv = runsCsv(results);
    const parsed = Papa.parse<Record<string, string>>(csv, { header: true, skipEmptyLines: true });
    expect(parsed.errors).toEqual([]);
    expect(parsed.meta.fields).toEqual([...RUNS_CSV_COLUMNS]);
    expect(parsed.data).toHaveLength(results.runs.length);
    const failed = parsed.data.filter((row) => row.status === 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ name: ODD_NAME, lr: '0.003', seed: '2', error: FAILURE, val_loss: '' });
    expect(csv).not.toMatch(/NaN/);
  });

  it('takes rank, alpha, targets and options from the method entry', () => {
    const rows = Papa.parse<Record<string, string>>(runsCsv(results), { header: true, skipEmptyLines: true }).data;
    const gralora = rows.find((row) => row.name === 'gralora-k2')!;
    expect(gralora).toMatchObject({ rank: '8', alpha: '16', targets: 'q_proj,v_proj', method: 'gralora' });
    expect(JSON.parse(gralora.options)).toEqual({ gralora_k: 2, hybrid_r: 0 });
    expect(Number(gralora.elapsed_s)).toBeCloseTo(12.345, 6);
    expect(Number(gralora.test_loss)).toBe(results.runs.find((r) => r.adapter === gralora.adapter)!.testLoss);
  });
});

describe('number formatting', () => {
  it('writes rates in plain decimals, params with separators, p-values as papers do', () => {
    expect(formatLr(3e-4)).toBe('0.0003');
    expect(formatLr(0.003)).toBe('0.003');
    expect(formatLr(1e-5)).toBe('0.00001');
    expect(formatLr(2.5e-4)).toBe('0.00025');
    expect(formatParams(1_234_567)).toBe('1,234,567');
    expect(formatPValue(0.0234)).toBe('p = 0.02');
    expect(formatPValue(0.0042)).toBe('p = 0.004');
    expect(formatPValue(0.0004)).toBe('p < 0.001');
    expect(formatPValue(null)).toBe('p n/a');
  });
});

describe('experimentCliCommand', () => {
  it('quotes only the arguments that need it', () => {
    expect(experimentCliCommand('exp.json', 'out/exp')).toBe(
      'npm run cli -- experiment --config exp.json --out out/exp',
    );
    expect(COMMAND).toBe("npm run cli -- experiment --config 'experiments/my exp.json' --out out/exp");
    expect(experimentCliCommand("it's.json", 'o')).toBe("npm run cli -- experiment --config 'it'\\''s.json' --out o");
  });
});

describe('charts', () => {
  it('places lr 0.001 halfway between 0.0001 and 0.01 on the log scale', () => {
    const x = logScale([0.0001, 0.01], [70, 530]);
    expect(x(0.001)).toBeCloseTo((x(0.0001) + x(0.01)) / 2, 9);
    expect(x(0.0001)).toBeCloseTo(70, 9);
    expect(x(0.01)).toBeCloseTo(530, 9);
  });

  it('draws one line per configuration with its chosen rate marked', () => {
    const svg = lrSensitivitySvg(results);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/r="5.5"/g)).toHaveLength(results.summary.length);
    expect(svg).toContain('gora &lt;&amp;&gt; r4-16');
    expect(svg).toContain('>0.0003<');
    expect(svg).not.toMatch(/NaN|undefined/);
  });

  it('averages the training curves of finished runs only', () => {
    const svg = lossCurvesSvg(results);
    // The failed seed is left out of its configuration's chosen-rate curve.
    expect(svg).toContain('gora &lt;&amp;&gt; r4-16 (lr 0.003, n=2)');
    expect(svg).toContain('gralora-k2 (lr 0.0003, n=3)');
    expect(svg).not.toMatch(/NaN|undefined/);
  });

  it('sweeps the budget only when parameter counts differ', () => {
    const svg = budgetSweepSvg(results)!;
    expect(svg).toContain('<svg');
    expect(svg).not.toMatch(/NaN|undefined/);
    expect(budgetSweepSvg(fixture({ equalBudgets: true }))).toBeNull();
  });

  it('draws a layer x module grid of ranks per configuration', () => {
    expect(moduleCell('model.layers.1.self_attn.q_proj')).toEqual({ layer: 1, rest: 'self_attn.q_proj' });
    expect(moduleCell('transformer.h.3.attn.c_proj')).toEqual({ layer: 3, rest: 'attn.c_proj' });
    expect(moduleCell('lm_head')).toBeNull();
    const svg = rankHeatmapSvg(results);
    expect(svg.match(/>L0</g)).toHaveLength(3);
    expect(svg.match(/>L1</g)).toHaveLength(3);
    // GoRA's lowest seed (0) at its chosen rate: ranks 4, 12, 16, 6 in its cells.
    for (const rank of [4, 12, 16, 6]) expect(svg).toContain(`>${rank}</text>`);
    expect(svg).toContain('>q</text>');
    expect(svg).toContain('>v</text>');
  });

  it('draws degenerate inputs (one seed, one rate, flat values) without NaN', () => {
    const one = fixture({ lrs: [0.001], seeds: [0] });
    for (const svg of [lrSensitivitySvg(one), lossCurvesSvg(one), rankHeatmapSvg(one), budgetSweepSvg(one) ?? '']) {
      expect(svg).not.toMatch(/NaN|Infinity|undefined/);
    }
    const flat: ExperimentResults = {
      ...one,
      summary: one.summary.map((s) => ({
        ...s,
        lrCurve: [
          ...s.lrCurve.map((p) => ({ ...p, valMean: 2, valCi95: [2, 2] as [number, number] })),
          { lr: 0.01, valMean: NaN, valCi95: [NaN, NaN] as [number, number], n: 0 },
        ],
      })),
      runs: one.runs.map((r) => ({ ...r, curve: r.curve.map((p) => ({ ...p, loss: p.loss === null ? null : 2 })) })),
    };
    for (const svg of [lrSensitivitySvg(flat), lossCurvesSvg(flat)]) {
      expect(svg).toContain('<path');
      expect(svg).not.toMatch(/NaN|Infinity|undefined/);
    }
  });

  it('says so when there is nothing to draw', () => {
    const none: ExperimentResults = { ...results, runs: results.runs.map((r) => ({ ...r, status: 'failed' })) };
    expect(lossCurvesSvg(none)).toContain('No finished run');
    expect(rankHeatmapSvg(none)).toContain('no finished run at the chosen rate');
  });
});

describe('reportHtml', () => {
  const html = reportHtml(results, { command: COMMAND });

  it('is self-contained: no URL, no script, no link', () => {
    expect(html).not.toContain('http://');
    expect(html).not.toContain('https://');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link/i);
    expect(html).not.toMatch(/NaN|undefined/);
  });

  it('embeds the four charts, three when the budgets are equal', () => {
    expect(html.match(/<svg/g)).toHaveLength(4);
    const equal = reportHtml(fixture({ equalBudgets: true }), { command: COMMAND });
    expect(equal.match(/<svg/g)).toHaveLength(3);
  });

  it('escapes user strings', () => {
    expect(html).toContain('gora &lt;&amp;&gt; r4-16');
    expect(html).not.toContain(ODD_NAME);
    expect(html).toContain('non-finite loss at step 12, &quot;diverged&quot;');
    expect(html).toContain(
      `<pre><code>npm run cli -- experiment --config &#39;experiments/my exp.json&#39; --out out/exp</code></pre>`,
    );
  });

  it('gives the best badge only to the names in best', () => {
    expect(html.split(HTML_BEST_BADGE)).toHaveLength(2);
    const rows = html.match(/<tr[^>]*>.*?<\/tr>/g)!;
    const badged = rows.filter((row) => row.includes(HTML_BEST_BADGE));
    expect(badged).toHaveLength(1);
    expect(badged[0]).toContain('<td>gralora-k2 ');
  });

  it('states the setup, the verdicts and the failed run', () => {
    expect(html).toContain('<h1>stories15M on alpaca-mini</h1>');
    expect(html).toContain('800 train, 100 validation, 100 test examples');
    expect(html).toContain('LoRA rank 8: 16,384 trainable parameters');
    for (const s of results.summary) expect(html).toContain(s.verdict.replace(/</g, '&lt;'));
    expect(html).toContain('⚠ outside ±5%');
    expect(html).toContain('1 of 18 runs failed');
  });
});

describe('reportMarkdown', () => {
  const md = reportMarkdown(results, { command: COMMAND });
  const tableRows = md.split('\n').filter((line) => line.startsWith('| '));

  it('has a summary row per configuration, with the verdict', () => {
    for (const s of results.summary) {
      const escaped = s.name.replace('<', '&lt;').replace('&', '&amp;').replace('>', '&gt;');
      const name = s.name === ODD_NAME ? 'gora &lt;&amp;&gt; r4-16' : escaped;
      const row = tableRows.find((line) => line.startsWith(`| ${name}`) && line.includes(s.verdict));
      expect(row, s.name).toBeDefined();
    }
  });

  it('marks best names only, flags the budget, and lists the failed run', () => {
    expect(md.split(MARKDOWN_BEST_BADGE)).toHaveLength(2);
    expect(tableRows.find((line) => line.includes(MARKDOWN_BEST_BADGE))).toMatch(/^\| gralora-k2 /);
    expect(md).toContain('1.12× ⚠ outside ±5%');
    expect(md).toContain(
      '- gora &lt;&amp;&gt; r4-16, lr 0.003, seed 2: non-finite loss at step 12, "diverged" see the run log',
    );
  });

  it('carries the command in a code block and nothing external', () => {
    expect(md).toContain(`\`\`\`sh\n${COMMAND}\n\`\`\``);
    expect(md).not.toMatch(/https?:\/\/|!\[|NaN|undefined/);
    expect(md).toContain('report.html');
  });
});

describe('reportZip', () => {
  it('unzips to the six files', () => {
    const experimentJson = JSON.stringify(results.experiment);
    const resultsJson = JSON.stringify(results);
    const zip = reportZip(results, { command: COMMAND, experimentJson, resultsJson, mtime: new Date(2025, 0, 1) });
    const files = unzipSync(zip);
    expect(Object.keys(files).sort()).toEqual(
      ['command.txt', 'experiment.json', 'report.html', 'report.md', 'results.json', 'runs.csv'].sort(),
    );
    expect(strFromU8(files['results.json'])).toBe(resultsJson);
    expect(strFromU8(files['experiment.json'])).toBe(experimentJson);
    expect(strFromU8(files['command.txt'])).toBe(`${COMMAND}\n`);
    expect(strFromU8(files['report.html'])).toBe(reportHtml(results, { command: COMMAND }));
    expect(strFromU8(files['runs.csv'])).toBe(runsCsv(results));
  });
});

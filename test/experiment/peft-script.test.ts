/**
 * The scale-out export (src/experiment/peft-script.ts): rank_patterns.json holds each GoRA/GeLoRA configuration's
 * ranks with its scale rule, experiment_peft.py is valid Python, and its stdlib-only part (number texts, t
 * statistics, the grid, the batch stream, the schedule, the summary) agrees with the studio's TypeScript. With a
 * stand-in for accelerate, the script's bookkeeping runs end to end: finished runs in --out become results.json
 * in the studio's schema. Training itself needs torch, which is not here.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultGraloraK } from '../../src/adapters/gralora/config';
import { resolveMethodOptions } from '../../src/adapters/registry';
import { BatchStream } from '../../src/data/batches';
import type { Example } from '../../src/data/types';
import { FNV_OFFSET, foldHash } from '../../src/engine/train-run';
import {
  chosenRun,
  EXPERIMENT_PEFT_COMMAND,
  experimentAccelerateConfig,
  experimentPeftFiles,
  type PeftRankPattern,
  rankPatterns,
} from '../../src/experiment/peft-script';
import { HELPERS_BEGIN, HELPERS_END } from '../../src/experiment/peft-python';
import { planRuns } from '../../src/experiment/plan';
import { resultsJson, runJson } from '../../src/experiment/results-json';
import { defaultTrain, experimentToJson } from '../../src/experiment/schema';
import { meanCi95, pairedTTest, studentTCdf, studentTQuantile } from '../../src/experiment/stats';
import { summarize } from '../../src/experiment/summary';
import type { Experiment, ExperimentMethod, ExperimentResults, ExperimentRunResult } from '../../src/experiment/types';
import { learningRate } from '../../src/train/schedule';
import { Rng } from '../../src/util/random';
import { accelerateConfig } from '../../src/worker/snippets';

const hasPython = spawnSync('python3', ['--version']).status === 0;

// ------------------------------------------------------------------ fixture: a 2-layer llama-like model

const KINDS = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj'];
const MODULES = [0, 1].flatMap((layer) => KINDS.map((k) => `model.layers.${layer}.${k}`));
const LRS = [1e-3, 3e-3];
const SEEDS = [0, 1, 2];

function method(name: string, id: ExperimentMethod['method'], extra: Partial<ExperimentMethod> = {}): ExperimentMethod {
  return {
    name,
    method: id,
    rank: 8,
    rankMatched: false,
    alpha: 16,
    targets: ['all-linear'],
    options: {},
    lrs: LRS,
    seeds: SEEDS,
    ...extra,
  };
}

const EXPERIMENT: Experiment = {
  name: 'tiny-llama on "quotes"\nand a newline',
  model: 'models/tiny-llama',
  data: 'data/alpaca.jsonl',
  split: { validation: 0.2, test: 0.2, seed: 0 },
  train: { ...defaultTrain(), steps: 20, batch: 2, seqLen: 16 },
  methods: [
    method('lora', 'lora', { targets: ['q_proj', 'v_proj'] }),
    method('gralora', 'gralora'),
    method('gora', 'gora'),
    method('gelora', 'gelora', { rank: 12 }),
    method('gelora32', 'gelora', { options: { geloraScale: 'paper32' } }),
    method('gora-blocks', 'gora', { options: { structure: 'gralora', graloraK: 2 } }),
  ],
  lrs: LRS,
  seeds: SEEDS,
  baseline: 'lora',
  referenceRank: 8,
  exactMatch: 0,
};

/** Deterministic losses: each method has its own best rate and level, each seed its own offset. */
function losses(name: string, lr: number, seed: number): { val: number; test: number } {
  const level = { lora: 2.0, gralora: 1.95, gora: 1.97, gelora: 2.02, gelora32: 2.1, 'gora-blocks': 2.3 }[name] ?? 2;
  const lrTerm = name === 'lora' ? (lr === 1e-3 ? 0 : 0.02) : lr === 3e-3 ? 0 : 0.03;
  const seedTerm = [0, 0.011, -0.007][seed] * (name === 'gralora' ? 0.5 : 1);
  return { val: level + lrTerm + seedTerm, test: level + lrTerm + seedTerm + 0.05 + 0.001 * seed * seed };
}

/** Allocated ranks that differ by rate and seed, so the chosen run is the only one that matches. */
function ranksOf(lr: number, seed: number): Record<string, number> {
  return Object.fromEntries(MODULES.map((p, i) => [p, 2 + ((i + seed * 3 + (lr === 3e-3 ? 5 : 0)) % 7) * 2]));
}

function runOf(m: ExperimentMethod, lr: number, seed: number): ExperimentRunResult {
  const { val, test } = losses(m.name, lr, seed);
  const allocates = m.method === 'gora' || m.method === 'gelora';
  const failed = m.name === 'gralora' && lr === 1e-3 && seed === 2;
  return {
    name: m.name,
    method: m.method,
    lr,
    seed,
    status: failed ? 'failed' : 'done',
    ...(failed ? { error: 'the loss became non-finite' } : {}),
    trainableParams: 10000 + (allocates ? seed * 37 : 0),
    valLoss: failed ? null : val,
    testLoss: failed ? null : test,
    valTokens: failed ? 0 : 400,
    testTokens: failed ? 0 : 410,
    adapter: `runs/${m.name}/lr${lr}/seed${seed}`,
    elapsedMs: 1234,
    tokensPerSecond: 5000,
    curve: [],
    valCurve: [],
    batchHash: ['0badf00d', '12345678', 'cafebabe'][seed],
    ranks: allocates ? ranksOf(lr, seed) : Object.fromEntries(MODULES.map((p) => [p, m.rank])),
  };
}

const RUNS = planRuns(EXPERIMENT).map((p) => runOf(p.config, p.lr, p.seed));
const SPLIT = { train: 6, validation: 2, test: 2 };
const RESULTS: ExperimentResults = summarize(EXPERIMENT, RUNS, { referenceParams: 10000, splitSizes: SPLIT });
const FILES = experimentPeftFiles(RESULTS);
const PATTERNS = JSON.parse(FILES['rank_patterns.json']) as Record<string, PeftRankPattern & { unsupported?: string }>;

// ------------------------------------------------------------------ rank_patterns.json

describe('rank_patterns.json', () => {
  it('holds the rank-allocating configurations only', () => {
    expect(Object.keys(PATTERNS)).toEqual(['gora', 'gelora', 'gelora32', 'gora-blocks']);
    expect(PATTERNS).toEqual(rankPatterns(RESULTS));
  });

  it("gives GoRA the chosen run's ranks (best rate, lowest seed) under module paths, with use_rslora", () => {
    const best = RESULTS.summary.find((s) => s.name === 'gora')!.bestLr;
    expect(best).toBe(3e-3);
    const run = chosenRun(RESULTS, 'gora')!;
    expect([run.lr, run.seed]).toEqual([3e-3, 0]);
    const p = PATTERNS.gora;
    expect(p.rank_pattern).toEqual(ranksOf(3e-3, 0));
    expect(p.rank_pattern).not.toEqual(ranksOf(3e-3, 1));
    expect(p.rank_pattern).not.toEqual(ranksOf(1e-3, 0));
    expect(Object.keys(p.rank_pattern)).toContain('model.layers.1.self_attn.q_proj');
    expect(Object.keys(p.rank_pattern).some((k) => k.startsWith('base_model.'))).toBe(false);
    expect(p.target_modules).toEqual([...MODULES].sort());
    expect(p).toMatchObject({ method: 'gora', r: 8, lora_alpha: 16, use_rslora: true, alpha_pattern: {} });
    expect(p.source).toEqual({ lr: 3e-3, seed: 0, adapter: 'runs/gora/lr0.003/seed0' });
    expect(p.note).toMatch(/initialisation of B is not reproduced/);
  });

  it('gives GeLoRA alpha_pattern = alpha * r_l / r_ref (scale alpha/r_ref everywhere), or 32 * r_l with paper32', () => {
    const p = PATTERNS.gelora;
    expect(p.use_rslora).toBe(false);
    expect(p.rank_pattern).toEqual(chosenRun(RESULTS, 'gelora')!.ranks);
    for (const [path, r] of Object.entries(p.rank_pattern)) {
      expect(p.alpha_pattern[path]).toBeCloseTo((16 * r) / 12, 12);
      // What PEFT computes without rsLoRA: alpha_l / r_l.
      expect(p.alpha_pattern[path] / r).toBeCloseTo(16 / 12, 12);
    }
    const p32 = PATTERNS.gelora32;
    for (const [path, r] of Object.entries(p32.rank_pattern)) expect(p32.alpha_pattern[path]).toBe(32 * r);
  });

  it('names why GoRA on GraLoRA blocks cannot be a PEFT config', () => {
    expect(PATTERNS['gora-blocks'].unsupported).toMatch(/GraLoRA blocks.*one r for every module/);
  });
});

describe('accelerate_config.yaml', () => {
  it("is the single-run config with this script's launch line, 8 processes and no mixed precision", () => {
    const yaml = FILES['accelerate_config.yaml'];
    expect(yaml).toBe(experimentAccelerateConfig());
    expect(yaml.split('\n')[0]).toBe(`# ${EXPERIMENT_PEFT_COMMAND}`);
    expect(yaml.split('\n')).toContain('num_processes: 8  # your GPU count');
    expect(yaml).toMatch(/GPU count/);
    expect(yaml).toMatch(/^mixed_precision: 'no'$/m);
    const keys = accelerateConfig()
      .split('\n')
      .filter((l) => /^\w+:/.test(l) && !/^(num_processes|mixed_precision):/.test(l));
    for (const line of keys) expect(yaml.split('\n')).toContain(line);
  });
});

// ------------------------------------------------------------------ experiment_peft.py in python3

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'experiment-peft-'));
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

function python(args: string[], env: Record<string, string> = {}) {
  return spawnSync('python3', args, { encoding: 'utf8', env: { ...process.env, ...env } });
}

/** Numbers equal to ~1e-9 relative, everything else equal, at any depth. */
function expectClose(actual: unknown, expected: unknown, path = '$'): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    expect(Math.abs(actual - expected), path).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(expected)));
  } else if (Array.isArray(expected)) {
    expect(Array.isArray(actual) && actual.length, path).toBe(expected.length);
    expected.forEach((e, i) => expectClose((actual as unknown[])[i], e, `${path}[${i}]`));
  } else if (expected && typeof expected === 'object') {
    expect(Object.keys(actual as object).sort(), path).toEqual(Object.keys(expected).sort());
    for (const [k, e] of Object.entries(expected))
      expectClose((actual as Record<string, unknown>)[k], e, `${path}.${k}`);
  } else {
    expect(actual, path).toEqual(expected);
  }
}

describe.skipIf(!hasPython)('experiment_peft.py (python3, no torch)', () => {
  it('parses as Python', () => {
    const dir = tempDir();
    write(join(dir, 'experiment_peft.py'), FILES['experiment_peft.py']);
    const r = python(['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read())', join(dir, 'experiment_peft.py')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it("--help lists --quantize nf4|int8 (QLoRA, as the studio's --weights) without importing torch", () => {
    const dir = tempDir();
    write(join(dir, 'experiment_peft.py'), FILES['experiment_peft.py']);
    const r = python([join(dir, 'experiment_peft.py'), '--help']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/--quantize \{nf4,int8\}/);
    expect(FILES['experiment_peft.py']).toContain('prepare_model_for_kbit_training');
  });

  describe('its stdlib-only helpers agree with the studio', () => {
    const script = FILES['experiment_peft.py'];
    const helpers = script.slice(script.indexOf(HELPERS_BEGIN), script.indexOf(HELPERS_END));
    const examples = exampleSet();
    const streams = [
      { pack: false, seed: 0 },
      { pack: false, seed: 7 },
      { pack: true, seed: 3 },
    ].map((s) => ({ ...s, batch: 3, seq: 8, pad: 0, separator: 2, steps: 11 }));
    const cases = {
      numbers: [0.003, 0.0001, 1e-7, 0.00033, 3e-4, 1, 0.5, 2e-5, 1.5e-3, 1e21, 123.456, 1e-6, 2.5e-7, 0],
      dfs: [1, 2, 4, 10, 29],
      cdf: [
        [0.5, 1],
        [-1.7, 3],
        [2.2, 10],
        [4, 2.5],
      ],
      paired: [
        [
          [2.01, 1.98, 2.05],
          [2.03, 2.0, 2.06],
        ],
        [
          [1, 2, 3, 4],
          [1.5, 2.1, 3.3, 4.2],
        ],
        [[1], [2]],
        [
          [1, 2],
          [0, 1],
        ],
      ],
      rng: [0, 1, 12345, 4294967295],
      streams,
      examples: examples.map((e) => ({ input_ids: e.inputIds, labels: e.labels })),
      lr: [
        [0, 1e-3, 5, 100, 0.1],
        [4, 1e-3, 5, 100, 0.1],
        [5, 1e-3, 5, 100, 0.1],
        [57, 3e-4, 5, 100, 0],
        [99, 3e-4, 0, 100, 0.25],
      ],
      gralora_k: [
        [16, 16],
        [32, 32],
        [64, 64],
        [66, 64],
        [6, 6],
        [3, 3],
        [64, 62],
        [72, 8],
      ],
      experiment: experimentToJson(EXPERIMENT),
      // The baselines, as PEFT configs (their runs are not part of the results above).
      baselines: experimentToJson({
        ...EXPERIMENT,
        methods: [
          method('dora', 'dora'),
          method('pissa', 'pissa'),
          method('pissa4', 'pissa', { options: { pissaNiter: 4 } }),
          method('loraga', 'loraga'),
          method('adalora', 'adalora'),
        ],
        baseline: 'dora',
      }).methods,
      runs: RUNS.map((r) => runJson(r)),
      patterns: PATTERNS,
    };
    const driver = `
import json, sys
sys.path.insert(0, sys.argv[1])
import helpers as h
c = json.load(open(sys.argv[2]))
examples = [(e["input_ids"], e["labels"]) for e in c["examples"]]
out = {
    "js_number": [h.js_number(x) for x in c["numbers"]],
    "quantile_builtin": [h.student_t_quantile_builtin(0.975, df) for df in c["dfs"]],
    "quantile": [h.student_t_quantile(0.975, df) for df in c["dfs"]],
    "cdf": [h.student_t_cdf(t, df) for t, df in c["cdf"]],
    "paired": [h.paired_t_test(a, b) for a, b in c["paired"]],
    "rng": [[g.next() for _ in range(5)] + [g.shuffle(list(range(10)))] for g in map(h.Mulberry32, c["rng"])],
    "lr": [h.learning_rate(*args) for args in c["lr"]],
    "gralora_k": [h.default_gralora_k(t, r) for t, r in c["gralora_k"]],
    "plan": [[r["name"], r["lr"], r["seed"], r["adapter"]] for r in h.plan_runs(c["experiment"])],
    "summary": h.summarize(c["experiment"], c["runs"], 10000, {"train": 6, "validation": 2, "test": 2}),
}
streams = []
for s in c["streams"]:
    stream = h.BatchStream(examples, s["batch"], s["seq"], s["seed"], s["pack"], s["separator"])
    steps = []
    for _ in range(s["steps"]):
        rows = stream.next()
        flat = h.flat_batch(rows, s["batch"], s["seq"], s["pad"])
        whole = all(sum((list(q[0]) for q in h.segments(r)), []) == list(r[0]) for r in rows)
        groups = h.micro_batches(h.supervised_sequences(rows), s["batch"] * s["seq"])
        fits = all(len(g) == 1 or len(g) * len(g[0][0]) <= s["batch"] * s["seq"] for g in groups)
        steps.append({
            "hashes": ["%08x" % h.fold_hash(h.FNV_OFFSET, x) for x in flat],
            "supervised": h.supervised_count(h.supervised_sequences(rows)),
            "grouped": sum(len(g) for g in groups) == len(h.supervised_sequences(rows)) and fits and whole,
        })
    streams.append({"steps_per_epoch": stream.steps_per_epoch, "steps": steps})
out["streams"] = streams
peft = {}
for m in c["experiment"]["methods"] + c["baselines"]:
    try:
        kind, kwargs = h.peft_settings(m, c["patterns"], "llama", 20)
        peft[m["name"]] = {"type": kind, "kwargs": kwargs}
    except ValueError as err:
        peft[m["name"]] = {"error": str(err)}
out["peft"] = peft

class P:
    def __init__(self):
        self.requires_grad = True
named = [("a.q_proj.lora_A.default.weight", P()), ("a.q_proj.lora_B.default.weight", P()),
         ("b.gralora_A.default", P()), ("b.gralora_B.default", P()), ("b.gralora_B_general.default.weight", P())]
out["groups"] = [[g["lr_scale"], [n for n, p in named if any(p is q for q in g["params"])]] for g in h.optimizer_groups(named, 4)]
print(json.dumps(h.json_safe(out)))
`;
    let outcome: Record<string, unknown> | null = null;
    const run = (): Record<string, unknown> => {
      if (outcome) return outcome;
      const dir = tempDir();
      write(join(dir, 'helpers.py'), helpers);
      write(join(dir, 'driver.py'), driver);
      write(join(dir, 'cases.json'), JSON.stringify(cases));
      const r = python([join(dir, 'driver.py'), dir, join(dir, 'cases.json')]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      outcome = JSON.parse(r.stdout) as Record<string, unknown>;
      return outcome;
    };

    it('the helper block imports nothing outside the standard library (scipy optional)', () => {
      const imports = helpers.split('\n').filter((l) => /^\s*(import|from) /.test(l));
      const stdlib =
        /^\s*(import (argparse|gc|json|math|os|re|time|traceback)|from decimal import|from scipy\.stats import)/;
      for (const line of imports) expect(line).toMatch(stdlib);
    });

    it("js_number writes JavaScript's String(number)", () => {
      expect(run().js_number).toEqual(cases.numbers.map((x) => String(x)));
    });

    it('t quantiles, CDF and the paired test match stats.ts (built-in and scipy paths)', () => {
      const o = run();
      const want = cases.dfs.map((df) => studentTQuantile(0.975, df));
      expectClose(o.quantile_builtin, want);
      (o.quantile as number[]).forEach((q, i) => expect(q).toBeCloseTo(want[i], 9));
      expect((o.quantile_builtin as number[]).slice(0, 4).map((q) => q.toFixed(4))).toEqual([
        '12.7062',
        '4.3027',
        '2.7764',
        '2.2281',
      ]);
      expectClose(
        o.cdf,
        cases.cdf.map(([t, df]) => studentTCdf(t, df)),
      );
      const paired = o.paired as Record<string, number | null>[];
      cases.paired.forEach(([a, b], i) => {
        const ts = pairedTTest(a, b);
        const py = paired[i];
        expectClose([py.mean, py.lo, py.hi, py.half, py.n], [ts.mean, ts.lo, ts.hi, ts.half, ts.n]);
        expect(py.t === null).toBe(ts.t === null);
        expect(py.p === null).toBe(ts.p === null);
        if (ts.t !== null) expect(py.t).toBeCloseTo(ts.t, 10);
        if (ts.p !== null) expect(py.p).toBeCloseTo(ts.p, 9);
      });
      expect(meanCi95([1]).lo).toBe(1); // n < 2: [mean, mean] on both sides (third case above)
    });

    it('plans the runs in the studio order, with its folder names', () => {
      expect(run().plan).toEqual(planRuns(EXPERIMENT).map((p) => [p.config.name, p.lr, p.seed, p.adapter]));
    });

    it("draws the studio's random numbers (mulberry32) and shuffles as it does", () => {
      const want = cases.rng.map((seed) => {
        const g = new Rng(seed);
        return [...Array.from({ length: 5 }, () => g.next()), g.shuffle([...Array(10).keys()])];
      });
      expect(run().rng).toEqual(want);
    });

    it("builds the studio's batches for a seed (tokens, targets, positions), padded or packed, across epochs", () => {
      const got = run().streams as {
        steps_per_epoch: number;
        steps: { hashes: string[]; supervised: number; grouped: boolean }[];
      }[];
      streams.forEach((s, i) => {
        const ts = new BatchStream(examples, {
          batch: s.batch,
          seq: s.seq,
          padId: s.pad,
          separatorId: s.separator,
          shuffle: true,
          seed: s.seed,
          mode: s.pack ? 'pack' : 'pad',
        });
        expect(got[i].steps_per_epoch).toBe(ts.stepsPerEpoch);
        expect(s.steps).toBeGreaterThan(2 * ts.stepsPerEpoch);
        for (const step of got[i].steps) {
          const b = ts.next();
          const hex = (a: Uint32Array) => foldHash(FNV_OFFSET, a).toString(16).padStart(8, '0');
          const targets = new Uint32Array(b.targets.buffer, b.targets.byteOffset, b.targets.length);
          expect(step.hashes).toEqual([hex(b.tokens), hex(targets), hex(b.positions)]);
          expect(step.supervised).toBe(b.supervised);
          expect(step.grouped).toBe(true);
        }
      });
    });

    it('follows the learning-rate schedule of schedule.ts', () => {
      expectClose(
        run().lr,
        cases.lr.map(([step, lr, warmupSteps, totalSteps, minRatio]) =>
          learningRate(step, { lr, warmupSteps, totalSteps, minRatio }),
        ),
      );
    });

    it("defaults GraLoRA's k as the studio does", () => {
      expect(run().gralora_k).toEqual(cases.gralora_k.map(([total, r]) => defaultGraloraK(total, r)));
    });

    it('builds each method as its PEFT config', () => {
      const peft = run().peft as Record<string, { type?: string; kwargs?: Record<string, unknown>; error?: string }>;
      expect(peft.lora).toEqual({
        type: 'LORA',
        kwargs: {
          task_type: 'CAUSAL_LM',
          bias: 'none',
          fan_in_fan_out: false,
          r: 8,
          lora_alpha: 16,
          target_modules: ['q_proj', 'v_proj'],
          lora_dropout: 0,
          use_rslora: false,
          init_lora_weights: true,
        },
      });
      const k = resolveMethodOptions('gralora', 8, {}).values.graloraK;
      expect(peft.gralora.type).toBe('GRALORA');
      expect(peft.gralora.kwargs).toMatchObject({ r: 8, alpha: 16, gralora_k: k, hybrid_r: 0, gralora_dropout: 0 });
      expect(peft.gralora.kwargs!.target_modules).toEqual([
        'q_proj',
        'k_proj',
        'v_proj',
        'o_proj',
        'gate_proj',
        'up_proj',
        'down_proj',
      ]);
      expect(peft.gora.kwargs).toMatchObject({
        r: 8,
        lora_alpha: 16,
        use_rslora: true,
        rank_pattern: PATTERNS.gora.rank_pattern,
        target_modules: PATTERNS.gora.target_modules,
      });
      expect(peft.gelora.kwargs).toMatchObject({ use_rslora: false, alpha_pattern: PATTERNS.gelora.alpha_pattern });
      expect(peft['gora-blocks'].error).toMatch(/^gora-blocks: its ranks go to GraLoRA blocks/);
      // The baselines: DoRA and PiSSA as LoraConfig, AdaLoRA with the studio's resolved schedule over the run's
      // steps (total_step 0), LoRA-GA refused with its reason.
      expect(peft.dora).toMatchObject({ type: 'LORA', kwargs: { use_dora: true, init_lora_weights: true, r: 8 } });
      expect(peft.pissa.kwargs).toMatchObject({ use_dora: false, init_lora_weights: 'pissa' });
      expect(peft.pissa4.kwargs).toMatchObject({ init_lora_weights: 'pissa_niter_4' });
      expect(peft.adalora).toMatchObject({
        type: 'ADALORA',
        kwargs: { init_r: 12, target_r: 8, lora_alpha: 16, tinit: 0, tfinal: 0, deltaT: 1, total_step: 20 },
      });
      expect(peft.adalora.kwargs).toMatchObject({ beta1: 0.85, beta2: 0.85, orth_reg_weight: 0.5 });
      expect(peft.loraga.error).toMatch(/^loraga: LoRA-GA's initialisation needs PEFT's preprocess_loraga/);
    });

    it('puts every B factor (LoRA+) in the lr_ratio_b group', () => {
      expect(run().groups).toEqual([
        [1, ['a.q_proj.lora_A.default.weight', 'b.gralora_A.default']],
        [4, ['a.q_proj.lora_B.default.weight', 'b.gralora_B.default', 'b.gralora_B_general.default.weight']],
      ]);
    });

    it('summarizes runs exactly as summary.ts (rate choice, intervals, paired test, verdicts, best)', () => {
      const want = JSON.parse(JSON.stringify(resultsJson(RESULTS)));
      expectClose(run().summary, { ...want, runs: cases.runs });
    });
  });

  it('goes from finished runs in --out to results.json (accelerate stand-in, no torch needed)', () => {
    const dir = tempDir();
    for (const [name, text] of Object.entries(FILES)) write(join(dir, name), text);
    write(join(dir, 'experiment.json'), `${JSON.stringify(experimentToJson(EXPERIMENT), null, 2)}\n`);
    const line = JSON.stringify({ input_ids: [5, 6, 7], labels: [-100, 6, 7] });
    for (const [split, n] of Object.entries(SPLIT)) write(join(dir, 'data', `${split}.jsonl`), `${line}\n`.repeat(n));
    for (const r of RUNS) write(join(dir, 'peft', r.adapter, 'run.json'), JSON.stringify(runJson(r)));
    const stubs = join(dir, 'stubs');
    write(
      join(stubs, 'accelerate', '__init__.py'),
      [
        'class Accelerator:',
        '    def __init__(self, **kwargs):',
        '        self.process_index, self.num_processes, self.is_main_process, self.device = 0, 1, True, "cpu"',
        '    def wait_for_everyone(self):',
        '        pass',
        '',
      ].join('\n'),
    );
    write(
      join(stubs, 'accelerate', 'utils.py'),
      'class InitProcessGroupKwargs:\n    def __init__(self, **kwargs):\n        pass\n',
    );
    const r = python([join(dir, 'experiment_peft.py'), '--dir', dir], { PYTHONPATH: stubs });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/finished earlier, kept/);
    expect(r.stdout).toMatch(/GoRA's gradient-based initialisation of B is not reproduced/);
    const got = JSON.parse(readFileSync(join(dir, 'peft', 'results.json'), 'utf8'));
    expectClose(got, JSON.parse(JSON.stringify(resultsJson(RESULTS))));
  });
});

/** Examples with prompts (-100 labels), one too long for a row, one without any supervised token. */
function exampleSet(): Example[] {
  const rng = new Rng(99);
  const lengths = [5, 3, 11, 6, 2, 7, 4];
  return lengths.map((n, i) => {
    const inputIds = Array.from({ length: n }, () => 3 + rng.int(200));
    if (i === 3) inputIds[n - 1] = 2; // already ends with the separator
    const prompt = i === 4 ? n : i % 3;
    return { inputIds, labels: inputIds.map((t, j) => (j < prompt ? -100 : t)) };
  });
}

/**
 * The experiment command's contract: the split files, one PEFT adapter per run, results.json whose figures `eval`
 * reproduces and whose summary recomputes from its runs, the paired design (equal batches for a seed), reports,
 * and continuing an interrupted experiment.
 */
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, jsonLines, lastJson, run } from '../helpers/cli';

const MODEL = 'test/fixtures/hf-golden/models/qwen2';
const DATA = 'test/fixtures/datasets/chat_messages/v1_sft_demo.jsonl';

// The shape other tools write, exactly as the issue gives it (paths and sizes for the fixtures).
const CONFIG = {
  model: MODEL,
  data: DATA,
  split: { validation: 0.15, test: 0.15, seed: 0 },
  train: { steps: 3, batch: 4, seq_len: 48, warmup: 0 },
  methods: [
    { name: 'lora-r4', method: 'lora', rank: 4, alpha: 8, targets: 'all-linear' },
    { name: 'gralora-r4', method: 'gralora', rank: 4, alpha: 8, gralora_k: 2, targets: 'all-linear' },
  ],
  lrs: [0.003, 0.01],
  seeds: [0, 1],
  baseline: 'lora-r4',
};

type Run = Record<string, unknown> & { name: string; lr: number; seed: number; val_loss: number; test_loss: number };

describe('cli experiment', () => {
  let dir: string;
  let out: string;
  let stdout: string;
  let results: { runs: Run[]; baseline: string; summary: Record<string, unknown>[] };

  beforeAll(async () => {
    await run('node', ['scripts/build-cli.mjs']);
    dir = await mkdtemp(join(tmpdir(), 'lora-experiment-'));
    out = join(dir, 'out');
    await writeFile(join(dir, 'experiment.json'), JSON.stringify({ ...CONFIG, exact_match: 2 }));
    const r = await cli(['experiment', '--config', join(dir, 'experiment.json'), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    stdout = r.stdout;
    results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
  }, 300_000);

  it('prints its progress as JSON lines: the plan, each run, and the end', () => {
    const events = jsonLines(stdout);
    const plan = events[0];
    expect(plan).toMatchObject({ event: 'plan', runs: 8, finished: 0, seq_len: 48 });
    expect(plan.split.train + plan.split.validation + plan.split.test).toBe(50);
    expect(plan.budget.map((b: { ratio: number; flagged: boolean }) => [b.ratio, b.flagged])).toEqual([
      [1, false],
      [1, false],
    ]);
    expect(events.filter((e) => e.event === 'run_start')).toHaveLength(8);
    expect(events.filter((e) => e.event === 'run_done')).toHaveLength(8);
    expect(events.filter((e) => e.event === 'step')).toHaveLength(8 * 3);
    expect(lastJson(stdout)).toMatchObject({ event: 'done', best: expect.any(Array) });
    // One upload and one pipeline cache for the whole grid: after the first seed, no run compiles a kernel.
    const done = events.filter((e) => e.event === 'run_done');
    expect(done[0].pipelines_compiled).toBeGreaterThan(0);
    expect(done.filter((e) => e.seed === 1).map((e) => e.pipelines_compiled)).toEqual([0, 0, 0, 0]);
  });

  it('writes the split exactly as evaluated: token ids with -100 labels, cut to seq_len', async () => {
    for (const part of ['train', 'validation', 'test']) {
      const lines = (await readFile(join(out, 'data', `${part}.jsonl`), 'utf8')).trim().split('\n');
      const rows = lines.map((l) => JSON.parse(l));
      expect(Object.keys(rows[0])).toEqual(['input_ids', 'labels']);
      for (const row of rows) {
        expect(row.input_ids.length).toBe(row.labels.length);
        expect(row.input_ids.length).toBeLessThanOrEqual(48);
        expect(row.labels.some((l: number) => l !== -100)).toBe(true);
      }
      // Chat prompts are not supervised.
      expect(rows.some((row) => row.labels[0] === -100)).toBe(true);
    }
  });

  it('results.json follows the schema, one run per method x rate x seed, each with its adapter folder', async () => {
    expect(results.baseline).toBe('lora-r4');
    expect(results.runs).toHaveLength(8);
    for (const r of results.runs) {
      expect(r).toMatchObject({
        name: expect.any(String),
        method: expect.stringMatching(/^(lora|gralora)$/),
        lr: expect.any(Number),
        seed: expect.any(Number),
        trainable_params: 2 * 4 * 0 + (r.trainable_params as number),
        val_loss: expect.any(Number),
        test_loss: expect.any(Number),
        val_tokens: expect.any(Number),
        test_tokens: expect.any(Number),
        exact_match: expect.any(Number),
        adapter: `runs/${r.name}/lr${r.lr}/seed${r.seed}`,
      });
      expect(r.trainable_params).toBeGreaterThan(0);
      const config = JSON.parse(await readFile(join(out, r.adapter as string, 'adapter_config.json'), 'utf8'));
      expect(config.peft_type).toBe(r.method === 'lora' ? 'LORA' : 'GRALORA');
    }
    const keys = new Set(results.runs.map((r) => `${r.name}/${r.lr}/${r.seed}`));
    expect(keys.size).toBe(8);
    for (const s of results.summary) {
      expect(s).toMatchObject({
        name: expect.any(String),
        best_lr: expect.any(Number),
        val_loss_mean: expect.any(Number),
        test_loss_mean: expect.any(Number),
        test_loss_ci95: [expect.any(Number), expect.any(Number)],
        n_seeds: 2,
      });
    }
    expect(results.summary.find((s) => s.name === 'lora-r4')!.vs_baseline).toBeNull();
    expect(results.summary.find((s) => s.name === 'gralora-r4')!.vs_baseline).toMatchObject({
      diff_mean: expect.any(Number),
      diff_ci95: [expect.any(Number), expect.any(Number)],
      p_value: expect.any(Number),
    });
  });

  it('the summary recomputes from the runs: best rate on validation, Student t interval, paired differences', () => {
    const t975df1 = 12.706204736174707; // two seeds: one degree of freedom
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const chosen = new Map<string, Run[]>();
    for (const name of ['lora-r4', 'gralora-r4']) {
      const mine = results.runs.filter((r) => r.name === name);
      const lrs = [...new Set(mine.map((r) => r.lr))];
      const val = (lr: number) => mean(mine.filter((r) => r.lr === lr).map((r) => r.val_loss));
      const best = lrs.reduce((a, b) => (val(b) < val(a) ? b : a));
      const picked = mine.filter((r) => r.lr === best).sort((a, b) => a.seed - b.seed);
      chosen.set(name, picked);
      const s = results.summary.find((x) => x.name === name)!;
      expect(s.best_lr).toBe(best);
      const tests = picked.map((r) => r.test_loss);
      const m = mean(tests);
      const half = (t975df1 * Math.abs(tests[0] - tests[1])) / Math.sqrt(2) / Math.sqrt(2);
      expect(s.test_loss_mean as number).toBeCloseTo(m, 12);
      const [lo, hi] = s.test_loss_ci95 as number[];
      expect(lo).toBeCloseTo(m - half, 10);
      expect(hi).toBeCloseTo(m + half, 10);
    }
    const d = chosen.get('gralora-r4')!.map((r, i) => r.test_loss - chosen.get('lora-r4')![i].test_loss);
    const vs = results.summary.find((x) => x.name === 'gralora-r4')!.vs_baseline as Record<string, number>;
    expect(vs.diff_mean).toBeCloseTo(mean(d), 12);
  });

  it('pairs the design: for a seed every configuration and rate trained on the same batches', () => {
    const hashes = new Map<number, Set<unknown>>();
    for (const r of results.runs) hashes.set(r.seed, (hashes.get(r.seed) ?? new Set()).add(r.batch_hash));
    expect(hashes.get(0)!.size).toBe(1);
    expect(hashes.get(1)!.size).toBe(1);
    expect([...hashes.get(0)!][0]).not.toBe([...hashes.get(1)!][0]);
  });

  it('eval reproduces test_loss and val_loss from the adapter folder and the split file', async () => {
    for (const r of [results.runs[1], results.runs.find((x) => x.name === 'gralora-r4')!]) {
      for (const [file, key] of [
        ['test', 'test_loss'],
        ['validation', 'val_loss'],
      ] as const) {
        const e = await cli([
          'eval',
          '--model',
          MODEL,
          '--adapter',
          join(out, r.adapter as string),
          '--data',
          join(out, 'data', `${file}.jsonl`),
        ]);
        expect(e.code, e.stderr).toBe(0);
        const res = lastJson(e.stdout);
        expect(res.tokens).toBe(r[key === 'test_loss' ? 'test_tokens' : 'val_tokens']);
        expect(Math.abs(res.loss - r[key]) / r[key]).toBeLessThan(1e-5);
      }
    }
  }, 120_000);

  it('writes the reports, the run table and the scale-out script', async () => {
    const md = await readFile(join(out, 'report.md'), 'utf8');
    expect(md).toContain('gralora-r4');
    expect(md).toContain('npm run cli -- experiment --config');
    const html = await readFile(join(out, 'report.html'), 'utf8');
    expect(html).not.toMatch(/https?:\/\//);
    expect((await readFile(join(out, 'runs.csv'), 'utf8')).trim().split('\n')).toHaveLength(9);
    expect((await stat(join(out, 'experiment_peft.py'))).size).toBeGreaterThan(1000);
    const resolved = JSON.parse(await readFile(join(out, 'experiment.json'), 'utf8'));
    expect(resolved.methods[1]).toMatchObject({ name: 'gralora-r4', gralora_k: 2, lrs: [0.003, 0.01], seeds: [0, 1] });
  });

  it('continues an experiment in the same folder without running its finished runs again', async () => {
    const again = await cli(['experiment', '--config', join(dir, 'experiment.json'), '--out', out]);
    expect(again.code, again.stderr).toBe(0);
    const events = jsonLines(again.stdout);
    expect(events[0]).toMatchObject({ event: 'plan', runs: 8, finished: 8 });
    expect(events.filter((e) => e.event === 'run_start')).toHaveLength(0);
    // More seeds: the finished runs are kept and only the new seed's run (one configuration, one rate) trains.
    await writeFile(
      join(dir, 'more.json'),
      JSON.stringify({
        ...CONFIG,
        exact_match: 2,
        methods: [{ ...CONFIG.methods[0], lrs: [0.01], seeds: [0, 1, 2] }, CONFIG.methods[1]],
      }),
    );
    const more = await cli(['experiment', '--config', join(dir, 'more.json'), '--out', out]);
    expect(more.code, more.stderr).toBe(0);
    const moreEvents = jsonLines(more.stdout);
    expect(moreEvents[0]).toMatchObject({ event: 'plan', runs: 7, finished: 6 });
    expect(moreEvents.filter((e) => e.event === 'run_start').map((e) => [e.name, e.lr, e.seed])).toEqual([
      ['lora-r4', 0.01, 2],
    ]);
    // A changed configuration in the same folder is refused rather than mixed in.
    await writeFile(join(dir, 'other.json'), JSON.stringify({ ...CONFIG, train: { ...CONFIG.train, steps: 4 } }));
    const other = await cli(['experiment', '--config', join(dir, 'other.json'), '--out', out]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/--out .* holds runs of a different experiment/);
  }, 120_000);

  it('names the key and the file of a bad definition', async () => {
    await writeFile(
      join(dir, 'bad.json'),
      JSON.stringify({ ...CONFIG, train: { steps: 0 }, methods: [{ method: 'lora', rnak: 4 }] }),
    );
    const r = await cli(['experiment', '--config', join(dir, 'bad.json'), '--out', join(dir, 'bad')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--config .*bad\.json: The experiment has 3 problems/);
    expect(r.stderr).toMatch(/train\.steps must be an integer >= 1/);
    expect(r.stderr).toMatch(/unknown key "rnak"/);
    expect(r.stderr).toMatch(/baseline "lora-r4" is not one of the methods' names/);
    await writeFile(join(dir, 'broken.json'), '{"model": ');
    const broken = await cli(['experiment', '--config', join(dir, 'broken.json'), '--out', join(dir, 'bad')]);
    expect(broken.stderr).toMatch(/--config .*broken\.json: not valid JSON/);
  });
});

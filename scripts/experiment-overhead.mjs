#!/usr/bin/env node
/**
 * The per-run overhead of an experiment against single runs (docs/BENCHMARKS.md): the same N runs (LoRA r8 on the
 * demo, one rate, seeds 0..N-1) as N `train` commands and as one `experiment`, timed from the outside, and the time
 * between one run's end and the next run's first step inside the experiment.
 *   node scripts/experiment-overhead.mjs [--runs 4] [--steps 10]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = {};
process.argv.slice(2).forEach((a, i, all) => {
  if (a.startsWith('--')) args[a.slice(2)] = all[i + 1];
});
const runs = Number(args.runs ?? 4);
const steps = Number(args.steps ?? 10);
const model = 'public/demo/model';
const data = 'public/demo/data/tinyshakespeare.txt';
const dir = mkdtempSync(join(tmpdir(), 'lora-overhead-'));

/** Runs the bundled CLI; resolves with the wall time and every stdout JSON line with its arrival time (ms). */
function cli(argv) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('node', ['dist-cli/cli.mjs', ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = [];
    let buffer = '';
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      const parts = buffer.split('\n');
      buffer = parts.pop();
      for (const p of parts) if (p.startsWith('{')) lines.push({ at: performance.now() - t0, json: JSON.parse(p) });
    });
    child.on('close', (code) =>
      code === 0 ? resolve({ ms: performance.now() - t0, lines }) : reject(new Error(`exit ${code}`)),
    );
  });
}

const shared = ['--model', model, '--data', data, '--rank', '8', '--alpha', '16', '--targets', 'all-linear'];
const common = [...shared, '--steps', String(steps), '--batch', '8', '--seq-len', '64', '--lr', '0.003'];
let singleMs = 0;
let singleTrainMs = 0;
for (let seed = 0; seed < runs; seed++) {
  const r = await cli([
    'train',
    ...common,
    '--seed',
    String(seed),
    '--val-fraction',
    '0.1',
    '--out',
    join(dir, `single${seed}`),
  ]);
  const steps0 = r.lines.filter((l) => l.json.step !== undefined && l.json.loss !== undefined);
  singleMs += r.ms;
  singleTrainMs += steps0.at(-1).at - steps0[0].at;
}
const config = {
  model,
  data,
  split: { validation: 0.1, test: 0.1, seed: 0 },
  train: { steps, batch: 8, seq_len: 64 },
  methods: [{ name: 'lora-r8', method: 'lora', rank: 8, alpha: 16, targets: 'all-linear' }],
  lrs: [0.003],
  seeds: [...Array(runs).keys()],
  exact_match: 0,
};
writeFileSync(join(dir, 'experiment.json'), JSON.stringify(config));
const e = await cli(['experiment', '--config', join(dir, 'experiment.json'), '--out', join(dir, 'experiment')]);
// Between runs: from a run's last step to the next run's first step (its end-of-run evaluation, export, freeing,
// the next run's graph build).
const steps1 = e.lines.filter((l) => l.json.event === 'step');
let between = 0;
let trainMs = 0;
for (let seed = 0; seed < runs; seed++) {
  const mine = steps1.filter((l) => l.json.seed === seed);
  trainMs += mine.at(-1).at - mine[0].at;
  if (seed > 0) between += mine[0].at - steps1.filter((l) => l.json.seed === seed - 1).at(-1).at;
}
const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
console.log(`| ${runs} runs of ${steps} steps | wall | per run | steps (first to last) | outside the steps, per run |`);
console.log('|---|---:|---:|---:|---:|');
console.log(
  `| ${runs} x \`train\` | ${fmt(singleMs)} | ${fmt(singleMs / runs)} | ${fmt(singleTrainMs)} | ${fmt((singleMs - singleTrainMs) / runs)} |`,
);
console.log(
  `| 1 x \`experiment\` | ${fmt(e.ms)} | ${fmt(e.ms / runs)} | ${fmt(trainMs)} | ${fmt((e.ms - trainMs) / runs)} |`,
);
console.log(
  `\nBetween runs inside the experiment (last step to next first step, mean): ${fmt(between / Math.max(1, runs - 1))}`,
);

#!/usr/bin/env node
/**
 * The equal-budget comparison reported in docs/METHODS.md: every method trained through the CLI with the
 * same data, steps, learning rate, batch, sequence length, seed and targets, and a rank-8 budget.
 *   node scripts/compare-methods.mjs [--steps 200] [--model public/demo/model] [--data public/demo/data/tinyshakespeare.txt]
 * Prints a markdown table (and writes each run's adapter and allocation.json under /tmp/lora-compare).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const steps = args.steps ?? '200';
const model = args.model ?? 'public/demo/model';
const data = args.data ?? 'public/demo/data/tinyshakespeare.txt';
const outRoot = '/tmp/lora-compare';
mkdirSync(outRoot, { recursive: true });

const common = [
  '--model',
  model,
  '--data',
  data,
  '--targets',
  'all-linear',
  '--rank',
  '8',
  '--alpha',
  '16',
  '--steps',
  steps,
  '--batch',
  '8',
  '--seq-len',
  '64',
  '--lr',
  '3e-3',
  '--warmup',
  '10',
  '--min-lr-ratio',
  '0.1',
  '--seed',
  '0',
  '--val-fraction',
  '0.1',
  '--val-batches',
  '16',
];
const runs = [
  ['LoRA', ['--method', 'lora']],
  ['rsLoRA', ['--method', 'rslora']],
  ['GoRA', ['--method', 'gora', '--gora-steps', '16', '--rank-min', '2', '--rank-max', '16']],
  ['GraLoRA (k=2)', ['--method', 'gralora', '--gralora-k', '2']],
  ['GraLoRA (k=2, hybrid 4+4)', ['--method', 'gralora', '--rank', '4', '--hybrid-r', '4', '--gralora-k', '2']],
  ['GeLoRA', ['--method', 'gelora', '--gelora-samples', '1024']],
  [
    'GoRA ranks x GraLoRA blocks',
    [
      '--method',
      'gora',
      '--structure',
      'gralora',
      '--gralora-k',
      '2',
      '--gora-steps',
      '16',
      '--rank-min',
      '2',
      '--rank-max',
      '16',
    ],
  ],
  ['Full fine-tuning', ['--method', 'full', '--lr', '1e-3']],
];

execFileSync('node', ['scripts/build-cli.mjs'], { stdio: 'inherit' });
const rows = [];
for (const [label, extra] of runs) {
  const out = join(outRoot, label.replace(/[^a-z0-9]+/gi, '-').toLowerCase());
  const flags = [...common];
  // A run's own --rank/--lr override the common ones.
  for (let i = 0; i < extra.length; i += 2) {
    const at = flags.indexOf(extra[i]);
    if (at >= 0) flags.splice(at, 2);
  }
  process.stderr.write(`\n== ${label}\n`);
  const t0 = Date.now();
  const stdout = execFileSync('node', ['dist-cli/cli.mjs', 'train', ...flags, ...extra, '--out', out], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 26,
  });
  const seconds = (Date.now() - t0) / 1000;
  const lines = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const done = lines.at(-1);
  const stepLines = lines.filter((l) => 'tokens_per_s' in l);
  const tokPerS =
    stepLines.slice(Math.floor(stepLines.length / 2)).reduce((a, l) => a + l.tokens_per_s, 0) /
    Math.max(1, stepLines.length - Math.floor(stepLines.length / 2));
  let ranks = '-';
  try {
    const alloc = JSON.parse(readFileSync(join(out, 'allocation.json'), 'utf8'));
    const rs = alloc.modules.map((m) => m.rank);
    ranks = Math.min(...rs) === Math.max(...rs) ? `${rs[0]}` : `${Math.min(...rs)}-${Math.max(...rs)}`;
  } catch {
    // full fine-tuning writes a model, not an allocation
  }
  rows.push({
    label,
    params: done.trainable_parameters,
    ranks,
    prep: done.preparation_ms / 1000,
    initial: done.initial_val_loss,
    final: done.final_val_loss,
    tokPerS,
    seconds,
  });
}
console.log(
  `\nstories260K (${model}), ${data}, ${steps} steps, batch 8 x 64 tokens, lr 3e-3 (full: 1e-3), cosine to 0.1, all linear layers, rank-8 budget, seed 0\n`,
);
console.log(
  '| Method | Trainable params | Ranks | Preparation (s) | Val loss before | Val loss after | Train tokens/s | Wall (s) |',
);
console.log('|---|---:|---|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(
    `| ${r.label} | ${r.params.toLocaleString('en')} | ${r.ranks} | ${r.prep.toFixed(1)} | ${r.initial.toFixed(4)} | ${r.final.toFixed(4)} | ${Math.round(r.tokPerS)} | ${r.seconds.toFixed(0)} |`,
  );
}

/**
 * The studio's pure helpers, without a browser (milliseconds): the budget per method, the form's validation
 * messages, what a run sends to the worker, the exported scale-out bundle (train_peft.py must parse as
 * Python, and read the adapter's own config), and the decisions behind resuming a run from a checkpoint.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strFromU8, unzipSync } from 'fflate';
import { expect, test } from 'playwright/test';
import { memoryEstimate, parameterCountKind, trainableParameters, bufferLimitProblem } from '../src/app/budget';
import { checkpointInfo, formatChoice, historyBefore, readCheckpoint, resumeProblem, resumeStep } from '../src/app/checkpoints';
import { runnableConfig, scaleRule } from '../src/app/methods';
import { demoRuns } from '../src/app/presets';
import { parseConfig } from '../src/model/config';
import { adapterZip } from '../src/worker/export-files';
import type { DatasetPreview, ModelCard, RunCheckpointData, RunConfig } from '../src/worker/protocol';
import type { RunRecord } from '../src/app/store';
import { configProblem } from '../src/worker/validate';

const spec = parseConfig(JSON.parse(readFileSync('public/demo/model/config.json', 'utf8')));
const card = { maxPositions: spec.maxPositions, spec } as ModelCard;
const [lora, gora, gralora, gelora] = demoRuns();
/** stories260K, all linear layers: Σ (in + out) over the 35 targets. */
const PER_RANK = 5 * (128 + 96 + 96 + 128 + 3 * 236);

test('trainable parameters per method: r(in+out), (r+h)(in+out) whatever k, the LoRA budget for allocating methods', () => {
  expect(trainableParameters(spec, lora)).toBe(8 * PER_RANK);
  expect(trainableParameters(spec, { ...lora, method: 'rslora' })).toBe(8 * PER_RANK);
  for (const k of [1, 2, 4]) expect(trainableParameters(spec, { ...gralora, extras: { graloraK: k } })).toBe(8 * PER_RANK);
  expect(trainableParameters(spec, { ...gralora, extras: { hybridRank: 4 } })).toBe(12 * PER_RANK);
  expect(trainableParameters(spec, gora)).toBe(8 * PER_RANK);
  expect(trainableParameters(spec, gelora)).toBe(8 * PER_RANK);
  expect([lora, gora, gralora, gelora].map(parameterCountKind)).toEqual(['exact', 'budget', 'exact', 'budget']);
  expect(parameterCountKind({ ...gelora, extras: { geloraBudget: 'raw' } })).toBe('raw');
});

test('memory: GoRA adds an f32 gradient of every target during preparation; per-buffer limits are checked', () => {
  const rows = (c: RunConfig) => memoryEstimate(spec, c);
  const loraMem = rows(lora);
  const goraMem = rows(gora);
  expect(loraMem.preparation).toBeNull();
  const grads = 5 * 4 * (64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 172);
  expect(goraMem.preparation!).toBeGreaterThan(grads);
  expect(goraMem.largest.bytes).toBeGreaterThanOrEqual(64 * 172 * 4);
  // GraLoRA keeps k·r values per row where LoRA keeps r.
  expect(rows(gralora).training).toBeGreaterThan(loraMem.training);
  // A binding limit below the logits buffer (8 x 64 rows x 512 vocab x 4 bytes = 1 MiB) is reported.
  expect(bufferLimitProblem(loraMem, { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30 })).toBeNull();
  expect(bufferLimitProblem(loraMem, { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 19 })?.text)
    .toBe("The logits buffer needs more than this GPU's maxStorageBufferBindingSize");
  // Recomputing the MLP keeps one set of fc1/fc2/act (rows x 172 each) instead of one per layer (5 layers).
  const saved = loraMem.training - rows({ ...lora, recompute: 'mlp' }).training;
  expect(saved).toBe(4 * 3 * lora.batch * lora.seq * 172 * 4);
  // 16-bit base weights: the estimate takes the card's stored bytes.
  expect(memoryEstimate(spec, lora, 1000).peak - memoryEstimate(spec, lora, 3000).peak).toBe(-2000);
  // Split-K scratch per recorded list (GpuInfo.splitScratchBytes): a training graph has two lists, GoRA's
  // preparation graph too, GeLoRA's forward-only one.
  const split = 16 << 20;
  expect(memoryEstimate(spec, lora, 1000, split).training - memoryEstimate(spec, lora, 1000).training).toBe(2 * split);
  expect(memoryEstimate(spec, gora, 1000, split).preparation! - memoryEstimate(spec, gora, 1000).preparation!).toBe(2 * split);
  expect(memoryEstimate(spec, gelora, 1000, split).preparation! - memoryEstimate(spec, gelora, 1000).preparation!).toBe(split);
  const geloraBig = rows({ ...gelora, extras: { geloraSamples: 4096 } });
  expect(geloraBig.largest).toEqual({ what: 'GeLoRA distance matrix', bytes: 4096 * 4096 * 4 });
});

test('validation: specific messages for method options', () => {
  const problem = (c: RunConfig) => configProblem(c, card);
  for (const c of demoRuns()) expect(problem(c)).toBeNull();
  expect(problem({ ...gora, extras: { rankMin: 20, rankMax: 16 } })).toBe('GoRA r_min (20) is larger than r_max (16): no rank fits both bounds.');
  expect(problem({ ...gralora, rank: 6, extras: { graloraK: 4 } })).toContain('GraLoRA rank 6 is not divisible by k = 4');
  expect(problem({ ...gralora, extras: { hybridRank: -2 } })).toBe('The hybrid rank must be a whole number of at least 0 (got -2).');
  expect(problem({ ...gora, extras: { goraSteps: 0 } })).toContain('GoRA N (gradient batches) must be a whole number of at least 1 (got 0)');
  expect(problem({ ...gora, extras: { goraGamma: -1 } })).toContain('GoRA γ must be a number of at least 0 (got -1)');
  expect(problem({ ...gelora, extras: { geloraSamples: 2 } })).toContain('GeLoRA samples must be a whole number from 3 to 4096 (got 2)');
  expect(problem({ ...gelora, extras: { geloraSamples: 5000 } })).toContain('(got 5000)');
  // GoRA with GraLoRA blocks rounds its ranks to multiples of k itself: no divisibility error.
  expect(problem({ ...gora, rank: 7, extras: { structure: 'gralora', graloraK: 2 } })).toBeNull();
});

test('a run sends only its own method options; scale rules per method', () => {
  const draft: RunConfig = { ...lora, extras: { graloraK: 4, goraSteps: 3, structure: 'gralora' } };
  expect(runnableConfig(draft).extras).toBeUndefined();
  expect(runnableConfig({ ...draft, method: 'gralora' }).extras).toEqual({ graloraK: 4 });
  expect(runnableConfig({ ...draft, method: 'gora' }).extras).toEqual({ structure: 'gralora', goraSteps: 3, graloraK: 4 });
  expect(scaleRule(lora)).toMatchObject({ formula: 'α/r', value: 2 });
  expect(scaleRule({ ...lora, method: 'rslora' }).value).toBeCloseTo(16 / Math.sqrt(8));
  expect(scaleRule(gora)).toMatchObject({ formula: 'α/√r_l per module', perModule: true });
  expect(scaleRule({ ...gralora, extras: { hybridRank: 8 } })).toMatchObject({ formula: 'α/(r+h)', value: 1 });
  expect(scaleRule(gelora)).toMatchObject({ formula: 'α/r_ref (every module)', value: 2 });
});

test('the adapter zip holds a scale-out bundle whose train_peft.py is valid Python reading adapter_config.json', () => {
  const config = {
    peft_type: 'LORA', r: 4, lora_alpha: 4, target_modules: ['model.layers.0.self_attn.q_proj'],
    rank_pattern: { 'model.layers.0.self_attn.q_proj': 4 }, alpha_pattern: { 'model.layers.0.self_attn.q_proj': 4 }, use_rslora: false,
  };
  const { fileName, bytes } = adapterZip('GoRA "quoted" \\ name\nwith a newline', {
    modelKey: 'k', baseModel: 'stories260K', spec, format: 'lora', config, safetensors: new Uint8Array(8),
  });
  expect(fileName).toBe('gora-quoted-name-with-a-newline.zip');
  const files = unzipSync(bytes);
  expect(Object.keys(files).sort()).toEqual(['README.md', 'accelerate_config.yaml', 'adapter_config.json', 'adapter_model.safetensors', 'train_peft.py']);
  const script = strFromU8(files['train_peft.py']);
  expect(script).toContain('json.load(f)');
  expect(strFromU8(files['README.md'])).toContain('accelerate launch --config_file accelerate_config.yaml train_peft.py --data your.jsonl');
  const python = spawnSync('python3', ['--version']);
  test.skip(python.status !== 0, 'python3 is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'bundle-'));
  writeFileSync(join(dir, 'train_peft.py'), files['train_peft.py']);
  const parsed = spawnSync('python3', ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read())', join(dir, 'train_peft.py')], { encoding: 'utf8' });
  expect(parsed.stderr).toBe('');
  expect(parsed.status).toBe(0);
});

test('checkpoints: what a run can resume from, with what loaded, from which stored data, over which history', () => {
  const tensor = (n: number) => ({ name: 'model.layers.0.self_attn.q_proj', param: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n) });
  const checkpoint: RunCheckpointData = { step: 10, tokens: 640, elapsedMs: 1200, state: [tensor(100)] };
  expect(checkpointInfo(checkpoint)).toEqual({ step: 10, bytes: 1200, kept: true });
  // Above 64 MiB of weights and moments (a full fine-tune of a real model) the state is not stored.
  const big = new Float32Array(6 * 2 ** 20);
  expect(checkpointInfo({ ...checkpoint, state: [{ name: 'w', param: big, m: big, v: big }] })).toMatchObject({ kept: false, bytes: 72 * 2 ** 20 });

  const run = {
    config: { ...lora, steps: 40 }, status: 'interrupted', modelKey: 'stories-key', modelName: 'stories260K', datasetName: 'tinyshakespeare.txt',
    checkpoint: { step: 10, bytes: 1200, kept: true },
    points: [0, 5, 9, 10, 12].map((step) => ({ step, loss: 1, lr: 1, gradNorm: 1, tokensPerSecond: 1, tokens: 64 * (step + 1), elapsedMs: step })),
    evals: [0, 10].map((step) => ({ step, tokens: 64 * step, loss: 1 })),
  } as RunRecord;
  // Interrupted by a reload or failed (a lost GPU) with a stored checkpoint: nothing else resumes.
  expect(resumeStep(run)).toBe(10);
  expect(resumeStep({ ...run, status: 'failed' })).toBe(10);
  expect(resumeStep({ ...run, status: 'done' })).toBeNull();
  expect(resumeStep({ ...run, status: 'cancelled' })).toBeNull();
  expect(resumeStep({ ...run, checkpoint: { ...run.checkpoint!, kept: false } })).toBeNull();
  expect(resumeStep({ ...run, checkpoint: null })).toBeNull();

  // The same model and dataset must be loaded, and the message says which.
  const stories = { key: 'stories-key', name: 'stories260K' } as ModelCard;
  const shakespeare = { name: 'tinyshakespeare.txt' } as DatasetPreview;
  expect(resumeProblem(run, null, null)).toBe('Load stories260K to resume this run.');
  expect(resumeProblem(run, { key: 'other', name: 'SmolLM2-135M' } as ModelCard, shakespeare))
    .toBe('This run trained on stories260K; load it to resume (SmolLM2-135M is loaded).');
  expect(resumeProblem(run, stories, null)).toBe('Load tinyshakespeare.txt to resume this run.');
  expect(resumeProblem(run, stories, { name: 'alpaca.json' } as DatasetPreview))
    .toBe('This run trained on tinyshakespeare.txt; load it to resume (alpaca.json is loaded).');
  expect(resumeProblem(run, stories, shakespeare)).toBeNull();
  // The same name is not the same data: runs record the file's size and SHA-256, and the format it was read with.
  const digest = '1115394:sha256:ab12';
  const read = { name: 'tinyshakespeare.txt', digest, format: 'text', columns: { text: 'text' }, override: { format: null, columns: {} } } as unknown as DatasetPreview;
  const withDigest = { ...run, datasetDigest: digest, datasetFormat: formatChoice(read) } as RunRecord;
  expect(resumeProblem(withDigest, stories, read)).toBeNull();
  expect(resumeProblem(withDigest, stories, { ...read, digest: '1115394:sha256:cd34' }))
    .toBe('The loaded tinyshakespeare.txt is not the file this run trained on (its size or contents differ); load the original file to resume.');
  expect(resumeProblem(withDigest, stories, { ...read, format: 'prompt_completion' } as DatasetPreview))
    .toBe('This run read tinyshakespeare.txt with another format or column mapping; choose the same one in the Dataset panel to resume.');

  // A stored checkpoint is checked before it reaches the worker: missing, out of range or damaged is null.
  expect(readCheckpoint({ ...checkpoint, id: run.config.id }, 40)).toEqual(checkpoint);
  expect(readCheckpoint(undefined, 40)).toBeNull();
  expect(readCheckpoint({ ...checkpoint, step: 40 }, 40)).toBeNull();
  expect(readCheckpoint({ ...checkpoint, tokens: Number.NaN }, 40)).toBeNull();
  expect(readCheckpoint({ ...checkpoint, state: [] }, 40)).toBeNull();
  expect(readCheckpoint({ ...checkpoint, state: [{ ...tensor(100), v: new Float32Array(99) }] }, 40)).toBeNull();
  expect(readCheckpoint({ ...checkpoint, state: [{ ...tensor(100), m: Array.from({ length: 100 }, () => 0) }] }, 40)).toBeNull();

  // The resumed run reports steps 10.. and the evaluation at step 10 again: only what came before stays.
  const kept = historyBefore(run, 10);
  expect(kept.points.map((p) => p.step)).toEqual([0, 5, 9]);
  expect(kept.evals.map((e) => e.step)).toEqual([0]);
});

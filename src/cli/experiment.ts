/**
 * `experiment --config FILE --out DIR`: the experiment's grid through the same engine code the studio runs
 * (src/experiment/runner.ts), with progress as JSON lines on stdout. Contract (other tools check it):
 *   DIR/data/{train,validation,test}.jsonl   the split as trained and evaluated, {"input_ids", "labels"} per line
 *   DIR/runs/<name>/lr<lr>/seed<seed>/       each run's PEFT adapter, as `train --out` writes it
 *   DIR/results.json                         runs, baseline and summary (written after every run, final at the end)
 *   DIR/report.md, DIR/report.html, DIR/runs.csv, DIR/experiment.json, DIR/experiment_peft.py (+ accelerate config)
 * A DIR holding a finished part of the same experiment is continued: its finished runs are kept.
 */
import { defaultSeqLen } from '../engine/run-spec';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { NoSupervisedTokensError, type Example } from '../data/index';
import { exportAdapter, peftFiles } from '../engine/export';
import { loadModelDataset } from '../engine/load-model';
import { EXPERIMENT_FILE_WORDING, noSupervisedMessage } from '../engine/wording';
import { budgetTable, matchBudget } from '../experiment/budget';
import { experimentPeftFiles } from '../experiment/peft-script';
import { experimentCliCommand, reportHtml, reportMarkdown, runsCsv } from '../experiment/report/index';
import { planRuns, runKey } from '../experiment/plan';
import { resultsJson, runJson } from '../experiment/results-json';
import { runExperiment, type ExperimentData } from '../experiment/runner';
import { experimentToJson, parseExperiment } from '../experiment/schema';
import { splitExperiment } from '../experiment/split';
import { summarize } from '../experiment/summary';
import type { Experiment, ExperimentResults, ExperimentRunResult } from '../experiment/types';
import type { OptionSpec } from './args';
import { dataProgressLog } from './data-progress';
import { openDataFile, writeOutputFiles } from './node-files';
import { log, out, round } from './output';
import { setup, WEIGHTS_OPTION, weightStorage } from './setup';

export const EXPERIMENT_OPTS: Record<string, OptionSpec> = {
  config: {
    kind: 'string',
    required: true,
    help: 'experiment file (JSON: model, data, split, train, methods, lrs, seeds, baseline; see README "Experiments")',
  },
  out: { kind: 'string', required: true, help: 'output folder (an unfinished experiment there is continued)' },
  weights: WEIGHTS_OPTION,
};

/** A path in the file: as given when it exists from here, else relative to the file's folder. */
async function resolvePath(path: string, configDir: string): Promise<string> {
  if (isAbsolute(path) || (await stat(path).catch(() => null))) return path;
  const beside = join(configDir, path);
  return (await stat(beside).catch(() => null)) ? beside : path;
}

async function readExperiment(path: string): Promise<Experiment> {
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new Error(`--config ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`--config ${path}: not valid JSON (${(e as Error).message})`);
  }
  try {
    const e = parseExperiment(json, 'cli');
    const dir = dirname(path);
    return { ...e, model: await resolvePath(e.model, dir), data: await resolvePath(e.data, dir) };
  } catch (e) {
    throw new Error(`--config ${path}: ${(e as Error).message}`);
  }
}

// Array.from: an arena's Int32Array views would serialize as objects.
const jsonl = (examples: Example[]) =>
  examples.map((x) => JSON.stringify({ input_ids: Array.from(x.inputIds), labels: Array.from(x.labels) })).join('\n') +
  '\n';

/** The definition without its grids: runs of an experiment that only gained (or lost) rates or seeds stay valid. */
function withoutGrids(json: Record<string, unknown>): string {
  const { lrs: _lrs, seeds: _seeds, methods, ...rest } = json;
  const entries = (methods as Record<string, unknown>[]).map(({ lrs: _l, seeds: _s, ...m }) => m);
  // Files written before train.grad_accum existed trained with 1 micro-batch per step: the same runs.
  const { grad_accum: accum, ...train } = (rest.train ?? {}) as Record<string, unknown>;
  if (rest.train !== undefined)
    rest.train = accum === undefined || accum === 1 ? train : { ...train, grad_accum: accum };
  return JSON.stringify({ ...rest, methods: entries });
}

/**
 * The finished runs of an earlier call in the same folder (their adapters still on disk) that the experiment still
 * plans. The definition may have gained rates or seeds; anything else changed would make old and new runs
 * incomparable, and is refused.
 */
async function finishedRuns(dir: string, e: Experiment): Promise<ExperimentRunResult[]> {
  const saved = await readFile(join(dir, 'state.json'), 'utf8').catch(() => null);
  if (!saved) return [];
  const state = JSON.parse(saved) as { experiment: Record<string, unknown>; runs: ExperimentRunResult[] };
  if (withoutGrids(state.experiment) !== withoutGrids(experimentToJson(e))) {
    throw new Error(
      `--out ${dir} holds runs of a different experiment (more than its rates or seeds changed); choose another --out`,
    );
  }
  const planned = new Set(planRuns(e).map((p) => p.key));
  const kept: ExperimentRunResult[] = [];
  for (const r of state.runs) {
    if (!planned.has(runKey(r.name, r.lr, r.seed))) continue;
    const adapter = r.status !== 'done' || (await stat(join(dir, r.adapter, 'adapter_config.json')).catch(() => null));
    if (adapter) kept.push(r);
  }
  return kept;
}

export async function cmdExperiment(o: Record<string, unknown>): Promise<void> {
  const dir = o.out as string;
  const parsed = await readExperiment(o.config as string);
  const storage = weightStorage(o);
  const { gpu, model, weights } = await setup(parsed.model, storage);
  const spec = model.spec;
  const seq = parsed.train.seqLen ?? defaultSeqLen(spec.maxPositions);
  if (seq > spec.maxPositions)
    throw new Error(`train.seq_len ${seq} exceeds the model's maximum of ${spec.maxPositions} positions`);
  const ds = await loadModelDataset(model, await openDataFile(parsed.data), {
    seqLen: seq,
    truncation: parsed.train.truncation,
    promptJoin: parsed.train.promptJoin,
    onProgress: dataProgressLog(parsed.data),
  }).catch((err: unknown) => {
    throw err instanceof NoSupervisedTokensError
      ? new Error(noSupervisedMessage(err, EXPERIMENT_FILE_WORDING, spec.maxPositions))
      : err;
  });
  for (const w of ds.warnings) log(`warning: ${w}`);
  const split = splitExperiment(ds.examples, parsed.split);
  const matched = matchBudget(spec, parsed);
  // Packing resolved for this data, so experiment.json (and experiment_peft.py) say what ran.
  const packing = matched.train.packing === 'auto' ? (ds.format === 'text' ? 'on' : 'off') : matched.train.packing;
  const experiment = { ...matched, train: { ...matched.train, packing } };
  const budget = budgetTable(spec, experiment);
  await writeOutputFiles(join(dir, 'data'), {
    'train.jsonl': jsonl(split.train),
    'validation.jsonl': jsonl(split.validation),
    'test.jsonl': jsonl(split.test),
  });
  const experimentJson = experimentToJson(experiment);
  await writeFile(join(dir, 'experiment.json'), `${JSON.stringify(experimentJson, null, 2)}\n`);
  const plan = planRuns(experiment);
  const done = await finishedRuns(dir, experiment);
  out({
    event: 'plan',
    runs: plan.length,
    finished: done.length,
    split: { train: split.train.length, validation: split.validation.length, test: split.test.length },
    seq_len: seq,
    reference_params: budget.referenceParams,
    budget: budget.rows.map((r) => ({
      name: r.name,
      rank: experiment.methods.find((m) => m.name === r.name)!.rank,
      trainable_params: r.params,
      kind: r.kind,
      ratio: round(r.ratio),
      flagged: r.flagged,
    })),
  });
  for (const r of budget.rows.filter((row) => row.flagged))
    log(
      `warning: ${r.name}: ${r.params.toLocaleString('en')} trainable parameters, ${(r.ratio * 100).toFixed(0)}% of the reference LoRA's ` +
        `${budget.referenceParams.toLocaleString('en')} (outside ±5%)${r.kind === 'budget' ? '; its allocated count comes with the run' : ''}`,
    );

  const data: ExperimentData = { ...split, format: ds.format, seq };
  const splitSizes = { train: split.train.length, validation: split.validation.length, test: split.test.length };
  const runs: ExperimentRunResult[] = [...done];
  const save = async (results: ExperimentResults) => {
    await writeFile(join(dir, 'state.json'), JSON.stringify({ experiment: experimentJson, runs: results.runs }));
    await writeFile(join(dir, 'results.json'), `${JSON.stringify(resultsJson(results), null, 2)}\n`);
  };
  const started = performance.now();
  let runStart = started;
  let pipelinesBefore = 0;
  const results = await runExperiment(
    gpu,
    weights,
    model.tokenizer,
    data,
    experiment,
    {
      done,
      wording: EXPERIMENT_FILE_WORDING,
      exactMatch: ds.format !== 'text' && model.noTokenizer === null,
      referenceParams: budget.referenceParams,
    },
    {
      onRunStart: (run, index, total) => {
        runStart = performance.now();
        pipelinesBefore = gpu.counters.pipelinesCompiled;
        log(`run ${index + 1}/${total}: ${run.config.name}, lr ${run.lr}, seed ${run.seed}`);
        out({ event: 'run_start', name: run.config.name, lr: run.lr, seed: run.seed, index, total });
      },
      onStep: (run, m) =>
        out({
          event: 'step',
          name: run.config.name,
          lr: run.lr,
          seed: run.seed,
          step: m.step,
          loss: round(m.loss),
          tokens_per_s: Math.round(m.tokensPerSecond),
        }),
      onWarning: (run, w) => log(`warning: ${run.config.name}: ${w}`),
      onRunDone: async (r, state) => {
        if (state && r.status === 'done') {
          // PEFT's base_model_name_or_path must resolve: the Hub id when config.json names one, else the path.
          const exported = await exportAdapter(gpu, spec, state, { baseModel: model.hubId ?? parsed.model });
          await writeOutputFiles(join(dir, r.adapter), {
            ...peftFiles(exported),
            'allocation.json': `${JSON.stringify(state.analysis, null, 2)}\n`,
          });
        }
        runs.push(r);
        await save(summarize(experiment, runs, { referenceParams: budget.referenceParams, splitSizes }));
        const ms = performance.now() - runStart;
        // Kernels compiled for this run: none once an earlier run of the same shapes compiled them (the cache is shared).
        const pipelines = gpu.counters.pipelinesCompiled - pipelinesBefore;
        out({ event: 'run_done', ...runJson(r), elapsed_s: round(ms / 1000), pipelines_compiled: pipelines });
        if (r.status === 'failed') log(`warning: ${r.name} lr ${r.lr} seed ${r.seed} failed: ${r.error}`);
      },
    },
  );
  if (!results) throw new Error('The experiment stopped before its last run.');
  await save(results);
  const command = experimentCliCommand(o.config as string, dir);
  await writeOutputFiles(dir, {
    'report.md': reportMarkdown(results, { command }),
    'report.html': reportHtml(results, { command }),
    'runs.csv': runsCsv(results),
    ...experimentPeftFiles(results),
  });
  for (const s of results.summary)
    log(`${s.name}: best lr ${s.bestLr}, test loss ${s.testLossMean.toFixed(4)}; ${s.verdict}`);
  out({
    event: 'done',
    out: dir,
    results: join(resolve(dir), 'results.json'),
    elapsed_s: round((performance.now() - started) / 1000),
    best: results.best,
    summary: resultsJson(results).summary,
  });
}

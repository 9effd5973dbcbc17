/**
 * The studio's experiments: one queued GPU job per experiment (after the runs queued before it, as a run waits),
 * which tokenizes the loaded dataset at the experiment's length, splits it three ways, plans the grid, matches
 * the budget, and trains every run on the session's GPU through the engine's runExperiment, one after another on
 * the same uploaded weights. Each finished run's adapter is exported for download; everything the experiment
 * allocated is freed at the end (a buffer scope, as a run's).
 */
import { defaultSeqLen } from '../engine/run-spec';
import { budgetTable, matchBudget } from '../experiment/budget';
import { planRuns, runKey, type PlannedRun } from '../experiment/plan';
import { runExperiment } from '../experiment/runner';
import { parseExperiment } from '../experiment/schema';
import { splitExperiment } from '../experiment/split';
import type { Experiment, ExperimentRunResult } from '../experiment/types';
import { STUDIO_WORDING } from '../engine/wording';
import { experimentAdapterId, type ExperimentJson, type ExperimentRunRef, type ExperimentStepInfo } from './protocol';
import { adapterSnapshot } from './adapter-snapshot';
import type { BufferScope, ScopedGpu } from './scoped-gpu';
import { messageOf, type DatasetState, type ModelState, type StudioState } from './studio-context';
import type { StudioDataset } from './studio-dataset';
import type { StudioDevice } from './studio-device';

/** Step reports the page gets per second at most: enough for a live progress line, few enough to stay cheap. */
const STEP_REPORTS_PER_SECOND = 10;

export class StudioExperiments {
  private active: { id: string; stop: boolean } | null = null;

  constructor(
    private readonly studio: StudioState,
    private readonly device: StudioDevice,
    private readonly dataset: StudioDataset,
  ) {}

  startExperiment(id: string, json: ExperimentJson, done: ExperimentRunResult[] = []): void {
    const fail = (message: string) => this.studio.post({ type: 'experimentFailed', id, message });
    const model = this.studio.model;
    const dataset = this.studio.dataset;
    if (!model) return fail('Load a model before starting an experiment.');
    if (!dataset) return fail('Load a dataset before starting an experiment.');
    let experiment: Experiment;
    try {
      experiment = parseExperiment(json, 'studio');
    } catch (err) {
      return fail(messageOf(err));
    }
    this.studio.post({ type: 'experimentStatus', id, status: 'queued', stage: 'Waiting for the GPU' });
    // Queued like a run (and dropped like one when another model loads): one GPU job at a time.
    this.studio.queue.push({
      urgent: false,
      runId: id,
      execute: () => this.run(id, experiment, model, dataset, done),
      drop: () => this.studio.post({ type: 'experimentStopped', id, message: 'Stopped before it started.' }),
    });
  }

  cancelExperiment(id: string): void {
    if (this.studio.queue.dropRun(id)) return;
    if (this.active?.id === id) {
      this.active.stop = true;
      this.studio.post({ type: 'experimentStatus', id, status: 'running', stage: 'Stopping after the current step…' });
    }
  }

  private async run(
    id: string,
    definition: Experiment,
    model: ModelState,
    dataset: DatasetState,
    done: ExperimentRunResult[],
  ): Promise<void> {
    const control = (this.active = { id, stop: false });
    const post = this.studio.post;
    const stage = (text: string) => post({ type: 'experimentStatus', id, status: 'running', stage: text });
    const replaced = () => this.studio.model !== model;
    let gpu: ScopedGpu | null = null;
    let scope: BufferScope | null = null;
    try {
      if (replaced()) {
        post({ type: 'experimentStopped', id, message: 'Stopped: another model was loaded.' });
        return;
      }
      gpu = await this.device.requireGpu();
      const weights = model.weights;
      if (!weights) throw new Error(model.uploadError ?? 'The model weights are not on the GPU.');
      const spec = weights.spec;
      // The length it ran at is part of the definition (the report and the exported file state it).
      const seq = definition.train.seqLen ?? defaultSeqLen(spec.maxPositions);
      const e = matchBudget(spec, { ...definition, train: { ...definition.train, seqLen: seq } });
      stage(`Tokenizing ${dataset.name} into ${seq}-token rows`);
      const fitted = await this.dataset.fitted(dataset, model, seq, e.train.truncation);
      if ('problem' in fitted) throw new Error(fitted.problem);
      const split = splitExperiment(fitted.examples, e.split);
      const budget = budgetTable(spec, e);
      const plan = planRuns(e);
      post({
        type: 'experimentPlan',
        id,
        plan: {
          runs: plan.map(runRef),
          splitSizes: { train: split.train.length, validation: split.validation.length, test: split.test.length },
          budget,
          experiment: e,
        },
      });
      scope = gpu.open(`experiment ${e.name}`);
      const throttle = stepThrottle();
      const step = (run: PlannedRun, info: Omit<ExperimentStepInfo, 'key' | 'steps'>, last = false) => {
        if (throttle(last)) post({ type: 'experimentStep', id, info: { key: run.key, steps: e.train.steps, ...info } });
      };
      const runGpu = gpu;
      const results = await runExperiment(
        runGpu,
        weights,
        model.loaded.tokenizer,
        { ...split, format: fitted.format, seq },
        e,
        {
          done,
          wording: STUDIO_WORDING,
          // Greedy answers compared as text: the data has answers and the tokenizer decodes.
          exactMatch: fitted.format !== 'text' && model.loaded.noTokenizer === null,
          referenceParams: budget.referenceParams,
          // A lost device stops the experiment (resumable) instead of failing every remaining run.
          deviceLost: () => this.device.isLost(runGpu),
        },
        {
          onRunStart: (run, index, total) => post({ type: 'experimentRunStart', id, run: runRef(run), index, total }),
          onPrepare: (run, p) => {
            // GoRA's gradient batches and GeLoRA's samples count up; a single-stage phase has no count.
            const phase = p.total > 1 ? `${p.phase} ${p.done}/${p.total}` : p.phase;
            step(run, { step: 0, loss: null, phase, elapsedMs: 0 });
          },
          onStep: (run, m) =>
            step(
              run,
              { step: m.step + 1, loss: Number.isFinite(m.loss) ? m.loss : null, phase: null, elapsedMs: m.elapsedMs },
              m.step + 1 === e.train.steps,
            ),
          onRunDone: async (result, state) => {
            const key = runKey(result.name, result.lr, result.seed);
            const adapter =
              state && result.status === 'done' ? await adapterSnapshot(runGpu, model, spec, state) : null;
            if (adapter)
              this.studio.trained.set(experimentAdapterId(id, key), { method: result.method, adapter, full: null });
            post({ type: 'experimentRunDone', id, key, result, adapter });
          },
          shouldStop: () => control.stop || replaced(),
        },
      );
      runGpu.checkErrors(`Experiment "${e.name}"`);
      if (results) post({ type: 'experimentDone', id, results });
      else
        post({
          type: 'experimentStopped',
          id,
          message: replaced()
            ? 'Stopped: another model was loaded. Its finished runs are kept; load this model again to resume.'
            : 'Stopped. Its finished runs are kept: Resume continues with the others.',
        });
    } catch (err) {
      post({ type: 'experimentFailed', id, message: this.device.failure(err, gpu) });
    } finally {
      if (gpu && scope) await gpu.release(scope);
      if (this.active === control) this.active = null;
    }
  }
}

function runRef(run: PlannedRun): ExperimentRunRef {
  return { key: run.key, name: run.config.name, method: run.config.method, lr: run.lr, seed: run.seed };
}

/** True at most STEP_REPORTS_PER_SECOND times a second, and always for a run's last step. */
function stepThrottle(): (last: boolean) => boolean {
  let lastAt = -Infinity;
  return (last) => {
    const now = performance.now();
    if (!last && now - lastAt < 1000 / STEP_REPORTS_PER_SECOND) return false;
    lastAt = now;
    return true;
  };
}

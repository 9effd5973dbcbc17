/**
 * The studio's worker recovering from GPU device losses, in node on Dawn (SwiftShader without a GPU): the Studio
 * router as the Web Worker runs it, with the demo model and dataset as dropped files, the test hook (debugLoseDevice)
 * destroying its device, and its events applied by the page's reducer. A run cut off after its first checkpoint
 * resumes from it and reaches the end with every step once; one cut off before any checkpoint restarts from step 0;
 * a loss while idle takes a full fine-tune's weights and leaves a playground that generates; three losses within a
 * minute stop the automatic resumes.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { WEIGHTS_LOST } from '../../src/app/device-loss';
import { createReducer, createStepBuffer } from '../../src/app/reducer';
import type { RunConfig, WorkerEvent } from '../../src/worker/protocol';
import type { Studio as StudioType } from '../../src/worker/studio';
import { record, studioStore } from '../app/fixtures';
import { demoRun, type EventOf, startDemoStudio, StudioHarness } from '../helpers/node-studio';

// The worker keeps the matmul tune in IndexedDB; node has none (SwiftShader is never timed anyway).
vi.mock('../../src/worker/tune-cache', () => import('../helpers/memory-tune-cache'));

/** The worker's Studio, its events, and the page's reducer over them. */
class Harness extends StudioHarness {
  readonly events: WorkerEvent[] = [];
  /** performance.now() at each event, by index (without the test's skew). */
  readonly times: number[] = [];
  readonly store = studioStore([]);
  private readonly applyEvent: (e: WorkerEvent) => void;

  constructor(Studio: typeof StudioType) {
    super(Studio);
    const steps = createStepBuffer(this.store.setState, 0);
    const deps = { steps, keepCheckpoint: () => {}, saveAdapter: async () => {}, download: () => {} };
    this.applyEvent = createReducer(this.store.getState, this.store.setState, deps).applyEvent;
    // Every step reaches the record at once (the page batches them per frame).
    const push = steps.push;
    steps.push = (...args) => {
      push(...args);
      steps.flush();
    };
  }

  protected override onEvent(e: WorkerEvent): void {
    this.events.push(e);
    this.times.push(performance.now() - skew);
    this.applyEvent(e);
  }

  /** Starts `run` as the page does: its record queued, then the command. */
  start(run: RunConfig): void {
    this.store.setState((s) => ({
      runs: { ...s.runs, [run.id]: record(run.id, { config: run, status: 'queued' }) },
      order: [...s.order, run.id],
    }));
    void this.send({ type: 'startRun', config: run });
  }

  run(id: string) {
    return this.store.getState().runs[id];
  }

  errors(): string[] {
    return this.events.filter((e) => e.type === 'error').map((e) => (e as EventOf<'error'>).message);
  }
}

const steps = (h: Harness, id: string) => h.run(id).points.map((p) => p.step);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

let h: Harness;
/** Added to performance.now(): each test starts a minute after the last, so only its own losses count as recent. */
let skew = 0;

beforeAll(async () => {
  const now = performance.now.bind(performance);
  vi.spyOn(performance, 'now').mockImplementation(() => now() + skew);
  h = await startDemoStudio((Studio) => new Harness(Studio), { type: 'init', testHooks: true });
}, 120_000);

beforeEach(() => {
  skew += 61_000;
});

afterAll(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe('GPU device loss in the studio worker', () => {
  it('a run cut off after its checkpoint at step 5 resumes from it on a new device and finishes with every step once', async () => {
    const run = demoRun('resumed');

    let lostAt = 0;
    let lossStep = -1;
    const lost = h.next('deviceLost');
    const resumedEvent = h.next('runResumed', (e) => e.id === run.id);
    const recoveredEvent = h.next('deviceRecovered');
    const doneEvent = h.next('runDone', (e) => e.id === run.id);
    h.start(run);
    // After step 7 (the checkpoint at 5 is taken), the hook destroys the device.
    await h
      .next('runStep', (e) => e.id === run.id && e.point.step >= 7 && e.point.step < 10)
      .then((e) => {
        lossStep = e.point.step;
        lostAt = performance.now() - skew;
        return h.send({ type: 'debugLoseDevice' });
      });
    expect((await lost).reason).toBe('destroyed');
    const resumed = await resumedEvent;
    // What the first device reported, before the loss.
    const first = new Map(
      h.events
        .slice(0, h.events.indexOf(resumed))
        .flatMap((e) => (e.type === 'runStep' && e.id === run.id ? [[e.point.step, e.point.loss] as const] : [])),
    );
    const recovered = await recoveredEvent;
    const done = await doneEvent;
    const after = h.events.indexOf(resumed);
    const at = (test: (e: WorkerEvent) => boolean) => h.times[after + h.events.slice(after).findIndex(test)] - lostAt;
    const firstStepAgain = at((e) => e.type === 'runStep' && e.id === run.id && e.point.step === resumed.step);
    const endMs = at((e) => e === done);

    // From the checkpoint the loss left it (step 5, or 10 when the loss came after it).
    expect(resumed.step % 5).toBe(0);
    expect(resumed.step).toBeGreaterThanOrEqual(5);
    expect(resumed.step).toBeLessThanOrEqual(lossStep + 1);
    expect(resumed.message).toMatch(
      new RegExp(
        `^The GPU was lost \\(destroyed\\) after \\d+ steps: it resumed on a new device from its checkpoint at step ${resumed.step}`,
      ),
    );
    expect(recovered.autoResume).toBe(true);
    expect(recovered.message).toMatch(
      new RegExp(
        `^The GPU was lost \\(destroyed\\): recovered in \\d+\\.\\d s, resuming "LoRA resumed" from step ${resumed.step}\\.$`,
      ),
    );
    expect(done.status).toBe('done');
    expect(done.summary.steps).toBe(20);

    // The page's record: steps 0..19 once each; evaluations at 0, 10, 20. The steps trained on both devices have
    // the same loss on each: the new device continued from the checkpoint's exact state.
    const r = h.run(run.id);
    expect(r.status).toBe('done');
    expect(steps(h, run.id)).toEqual(range(20));
    for (let s = resumed.step; s <= lossStep; s++) expect(r.points[s].loss, `step ${s}`).toBeCloseTo(first.get(s)!, 5);
    for (let s = 0; s < resumed.step; s++) expect(r.points[s].loss).toBe(first.get(s));
    expect(r.evals.map((e) => e.step)).toEqual([0, 10, 20]);
    expect(r.warnings.at(-1)).toBe(resumed.message);
    expect(h.store.toast).toHaveBeenCalledWith('info', recovered.message);
    expect(h.errors()).toEqual([]);
    console.info(
      `loss after step ${lossStep}: resumed from step ${resumed.step} (${lossStep + 1 - resumed.step} steps trained again); ` +
        `model back on a new device ${recovered.ms.toFixed(0)} ms after the loss, step ${resumed.step} again after ` +
        `${firstStepAgain.toFixed(0)} ms, done after ${endMs.toFixed(0)} ms`,
    );
  }, 240_000);

  it('a run cut off before its first checkpoint restarts from step 0 and says so', async () => {
    const run = demoRun('restarted');
    const resumedEvent = h.next('runResumed', (e) => e.id === run.id);
    const recoveredEvent = h.next('deviceRecovered');
    const done = h.next('runDone', (e) => e.id === run.id);
    h.start(run);
    await h
      .next('runStep', (e) => e.id === run.id && e.point.step >= 1)
      .then(() => h.send({ type: 'debugLoseDevice' }));
    const resumed = await resumedEvent;
    const recovered = await recoveredEvent;
    await done;
    expect(resumed.step).toBe(0);
    expect(resumed.message).toMatch(/before its first checkpoint: it restarted from step 0 on a new device\.$/);
    expect(recovered.message).toMatch(/restarting "LoRA restarted" from step 0 \(it had no checkpoint yet\)\.$/);
    expect(steps(h, run.id)).toEqual(range(20));
    expect(h.run(run.id).evals.map((e) => e.step)).toEqual([0, 10, 20]);
    expect(h.run(run.id).warnings).toContain(resumed.message);
  }, 240_000);

  it('a loss while idle puts the model back on a new device, takes a full fine-tune with it, and the playground generates', async () => {
    const full = demoRun('full', { method: 'full', steps: 3, lr: 1e-4 });
    const trained = h.next('runDone', (e) => e.id === full.id);
    h.start(full);
    expect(await trained).toMatchObject({ status: 'done', exportable: true, adapter: null });
    expect(h.run(full.id).weights).toBe('session');

    const lost = h.next('deviceLost');
    const recovered = h.next('deviceRecovered');
    const ready = h.next('model', (e) => e.ready);
    await h.send({ type: 'debugLoseDevice' });
    expect((await lost).weightsLost).toEqual([full.id]);
    await ready;
    expect((await recovered).message).toMatch(
      /^The GPU was lost \(destroyed\): recovered in \d+\.\d s; stories260K is on the GPU again\. A full fine-tune held only on the GPU is gone \(its card says so\)\.$/,
    );
    expect(h.run(full.id)).toMatchObject({ status: 'done', weights: null, warnings: [WEIGHTS_LOST] });
    const done = h.next('generationDone', (e) => e.requestId === 'after-loss');
    const results: EventOf<'generation'>[] = [];
    const collect = (e: WorkerEvent) => e.type === 'generation' && e.requestId === 'after-loss' && results.push(e);
    const before = h.events.length;
    await h.send({
      type: 'generate',
      requestId: 'after-loss',
      prompt: 'Once upon a time',
      runIds: ['resumed'],
      includeBase: true,
      maxNewTokens: 8,
    });
    await done;
    h.events.slice(before).forEach(collect);
    const finished = results.filter((e) => e.result.done);
    expect(finished.map((e) => e.result.source)).toEqual(['base', { runId: 'resumed' }]);
    for (const e of finished) {
      expect(e.result.error).toBeUndefined();
      expect(e.result.tokens).toBeGreaterThan(0);
    }
  }, 120_000);

  it('the third loss within a minute stops the automatic resume and says why', async () => {
    const run = demoRun('flaky', { steps: 40 });
    const third = h.next('runStatus', (e) => e.id === run.id && e.status === 'failed');
    h.start(run);
    let recovered: EventOf<'deviceRecovered'> | null = null;
    for (let i = 0; i < 3; i++) {
      // Each loss cuts the run off while it trains (the first after a checkpoint, the others after a resume).
      await h.next('runStep', (e) => e.id === run.id && e.progress.step >= (i === 0 ? 7 : 0));
      const notice = h.next('deviceRecovered');
      const resumed = i < 2 ? h.next('runResumed', (e) => e.id === run.id) : null;
      await h.send({ type: 'debugLoseDevice' });
      await resumed;
      recovered = await notice;
    }
    const failed = await third;
    expect(failed.message).toMatch(
      /the 3rd loss within a minute, so it was not resumed automatically: resume it from its last checkpoint once the GPU is stable\.$/,
    );
    expect(recovered!.autoResume).toBe(false);
    expect(recovered!.message).toMatch(
      /It was lost 3 times within a minute, so runs no longer resume by themselves \("LoRA flaky" stopped\): resume them once the GPU is stable\.$/,
    );
    expect(h.store.toast).toHaveBeenLastCalledWith('error', recovered!.message);
    expect(h.run(run.id)).toMatchObject({ status: 'failed', message: failed.message });
  }, 240_000);
});

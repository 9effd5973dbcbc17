/**
 * Soak: many short runs back to back in one studio worker session, in node on Dawn (SwiftShader without a GPU). The
 * runs go through the worker's own path (the Studio router, StudioRuns, the GPU queue, the run's BufferScope), with a
 * fake post() that keeps no events, so the JS heap measured is the worker's. After each run (and its deletion, which
 * frees a full fine-tune's kept weights) the GPU's live buffers and bytes must be back at the session's baseline, and
 * the heap, after a forced GC, may grow by at most HEAP_GROWTH_LIMIT over the soak.
 *
 * SOAK_RUNS (default 8) sets the number of runs; the methods cycle. `npm run soak` runs 30 (docs/BENCHMARKS.md, "Soak").
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import type { MethodId } from '../src/adapters/registry';
import { formatBytes } from '../src/gpu/gpu';
import type { RunConfig, WorkerEvent } from '../src/worker/protocol';
import { ScopedGpu } from '../src/worker/scoped-gpu';
import { demoRun, startDemoStudio, StudioHarness } from './helpers/node-studio';

// The worker keeps the matmul tune in IndexedDB; node has none.
vi.mock('../src/worker/tune-cache', () => import('./helpers/memory-tune-cache'));

const RUNS = Number(process.env.SOAK_RUNS ?? 8);
/** Every method family's structure and preparation at least once in the default 8 (full keeps weights until deleted). */
const METHODS: MethodId[] = ['lora', 'gralora', 'dora', 'adalora', 'gora', 'full', 'pissa', 'gelora'];
/** Loose: the tokenized dataset cache and compiled pipelines are warm after run 1; what grows past that is a leak. */
const HEAP_GROWTH_LIMIT = 32 * 2 ** 20;
/** A run takes 1-20 s on SwiftShader with two cores; the soak's time limit grows with its runs. */
const RUN_TIMEOUT_MS = 60_000;

/** A full GC where node allows one (vitest's workers run without --expose-gc): the heap then counts live objects only. */
function forcedGc(): (() => void) | null {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
}
const gc = forcedGc();

function heapUsed(): number {
  gc?.();
  return process.memoryUsage().heapUsed;
}

/** The worker's Studio behind a post() that only wakes waiters (and notes errors): nothing is kept per event. */
class SoakHarness extends StudioHarness {
  readonly errors: string[] = [];

  protected override onEvent(e: WorkerEvent): void {
    if (e.type === 'error') this.errors.push(e.message);
  }
}

/** Short enough for SwiftShader, long enough to cross an evaluation (step 3) and a checkpoint (step 5). */
function soakRun(i: number): RunConfig {
  const method = METHODS[i % METHODS.length];
  return demoRun(`soak-${i}`, {
    name: `soak ${i} ${method}`,
    method,
    rank: 4,
    alpha: 8,
    steps: 6,
    evalEvery: 3,
    seed: i,
  });
}

interface RunFigures {
  method: MethodId;
  status: string;
  beforeBytes: number;
  peakBytes: number;
  afterBytes: number;
  beforeBuffers: number;
  afterBuffers: number;
  heap: number;
  ms: number;
}

let h: SoakHarness;
let gpu: ScopedGpu;
/** ScopedGpu.release, spied: each run's job ends by releasing its scope; the test waits for that before measuring. */
let release: MockInstance<ScopedGpu['release']>;

beforeAll(async () => {
  const open = vi.spyOn(ScopedGpu.prototype, 'open');
  release = vi.spyOn(ScopedGpu.prototype, 'release');
  h = await startDemoStudio((Studio) => new SoakHarness(Studio), { type: 'init' });
  // The model's upload opened the first scope: the studio's device is its receiver.
  gpu = open.mock.contexts[0] as ScopedGpu;
}, 300_000);

afterAll(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

/** Runs one soak run to its end: runDone, then the job's release of its scope, then the run deleted. */
async function soakOne(i: number): Promise<RunFigures> {
  const run = soakRun(i);
  const beforeBytes = gpu.liveBytes;
  const beforeBuffers = gpu.mark().size;
  const t0 = performance.now();
  const releases = release.mock.results.length;
  const done = h.next('runDone', (e) => e.id === run.id);
  const failed = h.next('runStatus', (e) => e.id === run.id && e.status === 'failed');
  await h.send({ type: 'startRun', config: run });
  const outcome = await Promise.race([done, failed]);
  if (outcome.type === 'runStatus') throw new Error(`${run.name} failed: ${outcome.message}`);
  // runDone is posted just before the job's `finally` releases the run's scope.
  await vi.waitFor(() => expect(release.mock.results.length).toBeGreaterThan(releases));
  await release.mock.results[releases].value;
  await h.send({ type: 'deleteRun', id: run.id });
  return {
    method: run.method,
    status: outcome.status,
    beforeBytes,
    peakBytes: outcome.summary.peakGpuBytes,
    afterBytes: gpu.liveBytes,
    beforeBuffers,
    afterBuffers: gpu.mark().size,
    heap: heapUsed(),
    ms: performance.now() - t0,
  };
}

const mib = (n: number) => (n / 2 ** 20).toFixed(2);

describe(`soak: ${RUNS} short runs back to back in one studio session`, () => {
  it(
    'frees every run’s GPU buffers and keeps the JS heap bounded',
    async () => {
      const baselineBytes = gpu.liveBytes;
      const baselineBuffers = gpu.mark().size;
      const heapStart = heapUsed();
      const figures: RunFigures[] = [];
      for (let i = 0; i < RUNS; i++) {
        const f = await soakOne(i);
        figures.push(f);
        console.log(
          `soak ${i} ${f.method}: ${f.status} in ${(f.ms / 1000).toFixed(1)} s, live ${formatBytes(f.beforeBytes)} -> ` +
            `peak ${formatBytes(f.peakBytes)} -> ${formatBytes(f.afterBytes)} (${f.afterBuffers} buffers), heap ${mib(f.heap)} MiB`,
        );
      }
      const heapEnd = heapUsed();
      const warmHeap = figures[0].heap;
      console.log(
        `soak summary: ${RUNS} runs, GPU baseline ${baselineBytes} B in ${baselineBuffers} buffers, max during runs ` +
          `${formatBytes(Math.max(...figures.map((f) => f.peakBytes)))}, final ${gpu.liveBytes} B in ${gpu.mark().size} buffers; ` +
          `heap ${mib(heapStart)} MiB before, ${mib(warmHeap)} after run 0, ${mib(heapEnd)} MiB after (forced GC: ${gc ? 'yes' : 'no'})`,
      );

      expect(h.errors).toEqual([]);
      for (const [i, f] of figures.entries()) {
        expect(f.status, `run ${i} (${f.method})`).toBe('done');
        expect(f.peakBytes, `run ${i} (${f.method}) allocated`).toBeGreaterThan(baselineBytes);
        expect(f.afterBytes, `run ${i} (${f.method}) live bytes after`).toBe(baselineBytes);
        expect(f.afterBuffers, `run ${i} (${f.method}) live buffers after`).toBe(baselineBuffers);
      }
      expect(heapEnd - warmHeap).toBeLessThan(HEAP_GROWTH_LIMIT);
    },
    RUNS * RUN_TIMEOUT_MS,
  );
});

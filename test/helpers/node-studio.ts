/**
 * The studio's worker driven in node on Dawn (SwiftShader without a GPU): the Studio router as the Web Worker runs it,
 * behind a fake post() (StudioHarness), with the demo model and dataset loaded as dropped files (startDemoStudio).
 * Shared by the tests that go through the worker's own path without a browser (the soak, device loss); each of them
 * still mocks src/worker/tune-cache itself (memory-tune-cache.ts).
 */
import { readFileSync } from 'node:fs';
import { vi } from 'vitest';
import { nodeGpuInstance } from '../../src/gpu/node-device';
import type { Command, RunConfig, WorkerEvent } from '../../src/worker/protocol';
import type { Studio as StudioType } from '../../src/worker/studio';
import { config } from '../app/fixtures';

export type EventOf<T extends WorkerEvent['type']> = Extract<WorkerEvent, { type: T }>;

const DEMO = 'public/demo/model';
const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
];

/**
 * The worker's Studio behind a post() that wakes the waiters of next(). Subclasses see each event first (onEvent),
 * to keep what they need: nothing is kept here, so a soak measures the worker's heap, not the harness's.
 */
export class StudioHarness {
  private readonly waiters: { test: (e: WorkerEvent) => boolean; resolve: (e: WorkerEvent) => void }[] = [];
  readonly studio: StudioType;

  constructor(Studio: typeof StudioType) {
    this.studio = new Studio((e) => this.receive(e));
  }

  /** Called with every event the worker posts, before the waiters it satisfies wake. */
  protected onEvent(_e: WorkerEvent): void {}

  private receive(e: WorkerEvent): void {
    this.onEvent(e);
    for (const w of [...this.waiters]) {
      if (!w.test(e)) continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(e);
    }
  }

  send(cmd: Command): Promise<void> {
    return this.studio.handle(cmd);
  }

  /** The next event that passes `test` (from now on). */
  next<T extends WorkerEvent['type']>(type: T, test: (e: EventOf<T>) => boolean = () => true): Promise<EventOf<T>> {
    return new Promise((resolve) => {
      this.waiters.push({
        test: (e) => e.type === type && test(e as EventOf<T>),
        resolve: (e) => resolve(e as EventOf<T>),
      });
    });
  }
}

/**
 * Stubs the worker's globals (self, navigator.gpu on Dawn), imports the Studio only then (it reads them), builds the
 * harness with `make`, sends `init`, and loads the demo model and dataset: resolves once the model is on the GPU.
 * The caller unstubs the globals (vi.unstubAllGlobals) after its tests.
 */
export async function startDemoStudio<H extends StudioHarness>(
  make: (Studio: typeof StudioType) => H,
  init: Extract<Command, { type: 'init' }>,
): Promise<H> {
  vi.stubGlobal('self', globalThis);
  vi.stubGlobal('navigator', { gpu: await nodeGpuInstance() });
  const { Studio } = await import('../../src/worker/studio');
  const h = make(Studio);
  const gpu = h.next('gpu');
  await h.send(init);
  await gpu;
  const files = MODEL_FILES.map((name) => new File([readFileSync(`${DEMO}/${name}`)], name));
  const ready = h.next('model', (e) => e.ready);
  await h.send({ type: 'loadModel', source: { kind: 'files', files, name: 'stories260K' } });
  const text = readFileSync('public/demo/data/tinyshakespeare.txt');
  await h.send({ type: 'loadDataset', source: { kind: 'file', file: new File([text], 'tinyshakespeare.txt') } });
  await ready;
  return h;
}

/** A demo run small enough for SwiftShader: 20 steps, checkpoints every 5 (the studio's minimum); `patch` overrides. */
export function demoRun(id: string, patch: Partial<RunConfig> = {}): RunConfig {
  return config(id, {
    name: `LoRA ${id}`,
    targets: 'all-linear',
    lr: 3e-3,
    steps: 20,
    batch: 2,
    seq: 32,
    valExamples: 4,
    evalEvery: 10,
    ...patch,
  });
}

/**
 * The allocation table against the GPU: the studio's memory estimate (src/app/budget.ts, the sum of
 * src/model/allocation-plan.ts) must equal the bytes a run really allocates beside its base weights, buffer by
 * buffer, for the families whose MLPs differ (llama: gate, up; gpt2: c_fc only), without recomputation, with the
 * MLP or whole blocks recomputed, training adapters and training everything.
 */
import { describe, expect, it } from 'vitest';
import { createGraloraLayers } from '../../src/adapters/gralora/model';
import { createLoraLayers } from '../../src/adapters/lora/model';
import type { LinearAdapter } from '../../src/model/adapter';
import { memoryEstimate, targetNames } from '../../src/app/budget';
import type { Gpu } from '../../src/gpu/gpu';
import { listScratchBytes } from '../../src/kernels/matmul';
import { setMatmulPlan } from '../../src/kernels/matmul-plan';
import {
  adapterShapeOf,
  graphAllocations,
  planBytes,
  trainingAllocations,
  type PlannedBuffer,
} from '../../src/model/allocation-plan';
import { TransformerGraph, type Recompute } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { DEFAULT_OPTIMIZER, Trainer } from '../../src/train/trainer';
import type { RunConfig } from '../../src/worker/protocol';
import { testGpu } from '../helpers/gpu';
import { randomSource, tinySpec } from '../helpers/tiny-models';

const CONFIG: RunConfig = {
  id: 'r',
  name: 'r',
  method: 'lora',
  rank: 4,
  alpha: 8,
  targets: 'all-linear',
  lr: 1e-3,
  steps: 1,
  batch: 3,
  seq: 7,
  warmupSteps: 0,
  valExamples: 0,
  evalEvery: 0,
  seed: 1,
};

/** What was created since `mark` and is still alive, split into the uniform parameter buffers and the rest. */
function createdSince(
  gpu: Gpu,
  mark: ReadonlySet<GPUBuffer>,
): { buffers: GPUBuffer[]; uniformBytes: number; uniforms: number } {
  const all = gpu.createdSince(mark);
  const uniform = all.filter((b) => b.usage & GPUBufferUsage.UNIFORM);
  return {
    buffers: all.filter((b) => !(b.usage & GPUBufferUsage.UNIFORM)),
    uniformBytes: uniform.reduce((n, b) => n + b.size, 0),
    uniforms: uniform.length,
  };
}

const entries = (xs: { label: string; size: number }[]) => xs.map((b) => `${b.label} ${b.size}`).sort();
const planned = (plan: readonly PlannedBuffer[]) => entries(plan.map((b) => ({ label: b.name, size: b.bytes })));

/**
 * Builds what a studio run builds (the method's adapters, or full fine-tuning's f32 weight copy; the training graph;
 * the trainer) over base weights, and returns the estimate next to the GPU's live-byte growth. `unused`: buffers of
 * the table the run is known not to allocate.
 */
async function measureRun(family: 'llama' | 'gpt2', c: RunConfig, unused: string[] = []) {
  const gpu = await testGpu();
  const spec = tinySpec(family);
  const start = gpu.mark();
  const startBytes = gpu.liveBytes;
  try {
    const base = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
    const weightBytes = gpu.liveBytes - startBytes;
    const mark = gpu.mark();
    const before = gpu.liveBytes;
    let weights = base;
    let adapters: Map<string, LinearAdapter> | undefined;
    if (c.method === 'full') {
      weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1), { storage: 'f32' });
    } else if (c.method === 'gralora') {
      const { k = 2, hybridRank = 0 } = { k: c.extras?.graloraK, hybridRank: c.extras?.hybridRank };
      adapters = createGraloraLayers(
        gpu,
        spec,
        { rank: c.rank, k, hybridRank, alpha: c.alpha, targets: targetNames(spec, c.targets), lrRatioB: 1 },
        1,
      ).layers;
    } else {
      adapters = createLoraLayers(
        gpu,
        spec,
        { rank: c.rank, alpha: c.alpha, targets: targetNames(spec, c.targets), rslora: false, lrRatioB: 1 },
        1,
      );
    }
    const graph = new TransformerGraph(gpu, weights, {
      batch: c.batch,
      seq: c.seq,
      train: c.method === 'full' ? 'full' : 'adapters',
      adapters,
      recompute: c.recompute,
    });
    new Trainer(gpu, graph, { ...DEFAULT_OPTIMIZER, lr: c.lr, totalSteps: c.steps });
    await gpu.sync();
    gpu.checkErrors('allocation plan');
    const grown = gpu.liveBytes - before;
    const created = createdSince(gpu, mark);
    const estimate = memoryEstimate(spec, c, weightBytes, listScratchBytes(gpu.device));
    // Buffer by buffer: the run's table for the adapters it built.
    const table = trainingAllocations(spec, {
      batch: c.batch,
      seq: c.seq,
      recompute: c.recompute,
      train: c.method === 'full' ? 'full' : 'adapters',
      adapters: [...(adapters?.values() ?? [])].map(adapterShapeOf),
      listScratchBytes: listScratchBytes(gpu.device),
    });
    expect(entries(created.buffers.map((b) => ({ label: b.label, size: b.size })))).toEqual(
      planned(table.filter((b) => !unused.includes(b.name))),
    );
    return { spec, estimate, grown, weightBytes, ...created };
  } finally {
    await gpu.freeSince(start);
  }
}

describe('allocation table vs the GPU', () => {
  const cases: [string, 'llama' | 'gpt2', RunConfig][] = [];
  for (const family of ['llama', 'gpt2'] as const) {
    for (const recompute of ['none', 'mlp', 'block'] as Recompute[]) {
      cases.push([`${family}, LoRA on every linear layer, recompute ${recompute}`, family, { ...CONFIG, recompute }]);
      cases.push([
        `${family}, full fine-tuning, recompute ${recompute}`,
        family,
        { ...CONFIG, method: 'full', recompute },
      ]);
    }
  }
  cases.push([
    'llama, GraLoRA k = 2 with a hybrid LoRA, q and v',
    'llama',
    { ...CONFIG, method: 'gralora', targets: 'qv', extras: { graloraK: 2, hybridRank: 2 } },
  ]);

  it.each(cases)('%s: the estimate is every byte the run allocates', async (name, family, c) => {
    const r = await measureRun(family, c);
    // Beside the uniform parameters of each recorded dispatch (16 to 80 bytes each), the live bytes grew by exactly
    // the training estimate, and the peak is that plus the base weights.
    expect(r.grown - r.uniformBytes).toBe(r.estimate.training);
    expect(r.estimate.peak).toBe(r.weightBytes + r.estimate.training);
    expect(r.estimate.preparation).toBeNull();
    console.log(
      `${name}: estimate ${r.estimate.training} B, live growth ${r.grown} B = ${r.grown - r.uniformBytes} B of buffers + ` +
        `${r.uniformBytes} B in ${r.uniforms} uniform parameter buffers (base weights ${r.weightBytes} B)`,
    );
  });

  it('lists every buffer by the name and size it is created with', async () => {
    const gpu = await testGpu();
    for (const family of ['llama', 'gpt2', 'qwen3'] as const) {
      const spec = tinySpec(family);
      const start = gpu.mark();
      try {
        const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
        const layers = createLoraLayers(
          gpu,
          spec,
          { rank: 3, alpha: 6, targets: targetNames(spec, 'all-linear'), rslora: false, lrRatioB: 1 },
          1,
        );
        for (const train of ['none', 'adapters', 'full'] as const) {
          for (const recompute of ['none', 'mlp', 'block'] as const) {
            const mark = gpu.mark();
            const graph = new TransformerGraph(gpu, weights, {
              batch: 2,
              seq: 5,
              train,
              recompute,
              adapters: train === 'full' ? undefined : new Map(layers),
              logitsChunkRows: 3,
            });
            const got = createdSince(gpu, mark).buffers.map((b) => ({ label: b.label, size: b.size }));
            expect(entries(got), `${family} ${train} ${recompute}`).toEqual(planned(graph.plan));
            expect(graph.plan).toEqual(
              graphAllocations(spec, {
                batch: 2,
                seq: 5,
                train,
                recompute,
                logitsChunkRows: 3,
                listScratchBytes: listScratchBytes(gpu.device),
                adapters:
                  train === 'full'
                    ? []
                    : [...layers.values()].map((l) => ({
                        kind: 'lora',
                        path: l.info.path,
                        in: l.info.in,
                        out: l.info.out,
                        rank: 3,
                      })),
              }),
            );
            await gpu.freeSince(mark);
          }
        }
      } finally {
        await gpu.freeSince(start);
      }
    }
  });

  it('MLP recomputation and GPT-2: the table keeps fc2 and its gradient only where the family has them', () => {
    const rows = 4 * 16;
    const bytes = (family: 'llama' | 'gpt2', recompute: Recompute) =>
      planBytes(graphAllocations(tinySpec(family), { batch: 4, seq: 16, train: 'adapters', recompute }));
    // llama (2 layers, ff 24): one set of fc1, fc2, act instead of two; gpt2 (2 layers, ff 64): fc1 and act.
    expect(bytes('llama', 'none') - bytes('llama', 'mlp')).toBe(3 * rows * 24 * 4);
    expect(bytes('gpt2', 'none') - bytes('gpt2', 'mlp')).toBe(2 * rows * 64 * 4);
    const names = (family: 'llama' | 'gpt2') =>
      graphAllocations(tinySpec(family), { batch: 1, seq: 2, train: 'adapters' }).map((b) => b.name);
    expect(names('llama')).toEqual(expect.arrayContaining(['layer1.fc2', 'd.fc2']));
    expect(names('gpt2').filter((n) => n.endsWith('fc2'))).toEqual([]);
  });

  it("block recomputation: one block's buffers but resid fewer than without (2 layers: one set for both)", () => {
    for (const family of ['llama', 'gpt2'] as const) {
      const spec = tinySpec(family);
      const plan = (recompute: Recompute) =>
        graphAllocations(spec, { batch: 4, seq: 16, train: 'adapters', recompute, logitsChunkRows: 8 });
      const layer0 = plan('none').filter((b) => b.name.startsWith('layer0.') && b.name !== 'layer0.resid');
      expect(layer0.length, family).toBeGreaterThan(10);
      expect(planBytes(plan('none')) - planBytes(plan('block')), family).toBe(planBytes(layer0) * (spec.layers - 1));
      expect(planBytes(plan('block')), family).toBeLessThan(planBytes(plan('mlp')));
    }
  });

  it('split-K: a list whose products split holds one scratch of GpuInfo.splitScratchBytes, as the table lists', async () => {
    const gpu = await testGpu();
    // The narrow products split (as the autotune may choose on a GPU); 512 rows make dA = dHᵀ·x long enough to.
    setMatmulPlan(gpu.device, {
      wide: { variant: 'tiled', splitK: false },
      narrow: { variant: 'register-vec4', splitK: true },
    });
    try {
      const c: RunConfig = { ...CONFIG, batch: 8, seq: 64 };
      const r = await measureRun('llama', c, ['forward.scratch']);
      const scratch = listScratchBytes(gpu.device);
      expect(scratch).toBe(16 << 20);
      expect(r.buffers.filter((b) => b.label.endsWith('.scratch')).map((b) => [b.label, b.size])).toEqual([
        ['train.scratch', scratch],
      ]);
      // The table counts a scratch per recorded list where the plan splits: an upper bound by the forward list's, whose
      // products (K = 16 here) are too short to split.
      expect(r.estimate.training - (r.grown - r.uniformBytes)).toBe(scratch);
    } finally {
      setMatmulPlan(gpu.device, null);
    }
  });

  it('an adapter that allocates more than the table lists stops the graph', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('llama');
    const start = gpu.mark();
    try {
      const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
      const layers = createLoraLayers(
        gpu,
        spec,
        { rank: 2, alpha: 4, targets: ['q_proj'], rslora: false, lrRatioB: 1 },
        1,
      );
      const [path, layer] = [...layers][0];
      const greedy: LinearAdapter = {
        info: layer.info,
        trainables: layer.trainables,
        bind: (g, rows) => {
          g.tensor([rows, 8], `${path}.extra`);
          return layer.bind(g, rows);
        },
      };
      expect(
        () =>
          new TransformerGraph(gpu, weights, {
            batch: 1,
            seq: 4,
            train: 'adapters',
            adapters: new Map([[path, greedy]]),
          }),
      ).toThrow(
        `${path}: its adapter allocated 192 bytes for 4 rows; the allocation plan (src/model/allocation-plan.ts) lists 64`,
      );
    } finally {
      await gpu.freeSince(start);
    }
  });
});

/**
 * AdaLoRA (PEFT ADALORA): the layer against a dense float64 reference, whole-model gradient checks, PEFT's budget
 * schedule (the CPU port against PEFT's own log, and the GPU allocator's nonzero Λ count step by step), export →
 * import → eval equal to the trained model, and PEFT's hf-golden AdaLoRA folders evaluated against PEFT's losses.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { budgetSchedule, allocatorStep, type AdaloraConfig } from '../../src/adapters/adalora/config';
import { AdaloraLayer } from '../../src/adapters/adalora/layer';
import { adaloraConfigOf } from '../../src/adapters/adalora/method';
import { exportPeftAdalora, importPeftAdalora } from '../../src/adapters/adalora/peft';
import { padBatches, type Example } from '../../src/data/index';
import { loadPeftAdapter, loadPeftFolder } from '../../src/engine/export';
import { loadModelDir } from '../../src/engine/load-model';
import { buildMethod, type MethodState } from '../../src/engine/methods';
import type { Gpu } from '../../src/gpu/gpu';
import { adaloraBackwardRef, adaloraForwardRef, orthGradRef } from '../../src/kernels/adalora.ref';
import type { LinearAdapter } from '../../src/model/adapter';
import { parseConfig } from '../../src/model/config';
import { adapterAllocations, adapterShapeOf, planBytes } from '../../src/model/allocation-plan';
import { memoryStore, openCheckpoint } from '../../src/model/formats/safetensors';
import { nodeDir } from '../../src/model/formats/node-source';
import { allLinears, selectTargets, type LinearInfo } from '../../src/model/layout';
import { TransformerGraph } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { evaluate } from '../../src/train/evaluate';
import { DEFAULT_OPTIMIZER, Trainer } from '../../src/train/trainer';
import { Rng } from '../../src/util/random';
import { checkModelGradients } from '../helpers/gradcheck';
import { expectClose, runOnce, testGpu } from '../helpers/gpu';
import { randomBatch, randomSource, tinySpec } from '../helpers/tiny-models';

const ROOT = 'test/fixtures/hf-golden';
const golden = JSON.parse(readFileSync(`${ROOT}/golden-adalora.json`, 'utf8'));

function info(inDim: number, outDim: number): LinearInfo {
  return { path: 'test.proj', in: inDim, out: outDim, layer: 0, kind: 'q_proj' } as LinearInfo;
}

describe('AdaLoRA layer', () => {
  for (const [rows, inDim, outDim, r] of [
    [7, 37, 11, 3],
    [13, 70, 129, 6],
    [1, 5, 3, 1],
  ]) {
    it(`forward and backward equal the dense float64 reference (rows ${rows}, ${inDim} -> ${outDim}, r ${r}), with the regularizer`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(rows + inDim);
      const A = rng.normals(r * inDim, 0.3);
      const E = rng.normals(r);
      const B = rng.normals(outDim * r, 0.3);
      const scale = 8 / (6 + 1e-5);
      const orthWeight = 0.5 / 14;
      const layer = new AdaloraLayer(gpu, info(inDim, outDim), r, scale, { A, E, B }, orthWeight);
      const bound = layer.bind(gpu, rows);
      const x = rng.normals(rows * inDim);
      const y0 = rng.normals(rows * outDim);
      const dy = rng.normals(rows * outDim);
      const dx0 = rng.normals(rows * inDim);
      const tx = gpu.tensorFrom(x, [rows, inDim], 'x');
      const ty = gpu.tensorFrom(y0, [rows, outDim], 'y');
      const tdy = gpu.tensorFrom(dy, [rows, outDim], 'dy');
      const tdx = gpu.tensorFrom(dx0, [rows, inDim], 'dx');
      await runOnce(gpu, (list) => {
        bound.forward(list, { t: tx, ld: inDim }, { t: ty, ld: outDim });
        bound.backward(list, { t: tx, ld: inDim }, { t: tdy, ld: outDim }, { t: tdx, ld: inDim });
      });
      const d = { rows, inDim, outDim, rank: r, scale };
      const y = adaloraForwardRef(x, A, E, B, d);
      const g = adaloraBackwardRef(x, A, E, B, dy, d);
      const regA = orthGradRef(A, r, inDim, false, orthWeight);
      const regB = orthGradRef(B, r, outDim, true, orthWeight);
      const tol = { atol: 1e-5, rtol: 1e-4 };
      expectClose(
        await gpu.read(ty),
        Array.from(y, (v, i) => v + y0[i]),
        'y',
        tol,
      );
      expectClose(
        await gpu.read(tdx),
        Array.from(g.dx, (v, i) => v + dx0[i]),
        'dx',
        tol,
      );
      expectClose(
        await gpu.read(layer.dA),
        Array.from(g.dA, (v, i) => v + regA[i]),
        'dA',
        tol,
      );
      expectClose(
        await gpu.read(layer.dB),
        Array.from(g.dB, (v, i) => v + regB[i]),
        'dB',
        tol,
      );
      expectClose(await gpu.read(layer.dE), g.dE, 'dE', tol);
    });
  }
});

/** AdaLoRA layers with every tensor random (E too, so A and B have gradients), no regularizer. */
function randomLayers(gpu: Gpu, targets: LinearInfo[], r: number, seed: number): Map<string, LinearAdapter> {
  const rng = new Rng(seed);
  return new Map(
    targets.map((t) => [
      t.path,
      new AdaloraLayer(gpu, t, r, 8 / (r + 1e-5), {
        A: rng.normals(r * t.in, 0.3),
        E: rng.normals(r, 0.7),
        B: rng.normals(t.out * r, 0.3),
      }),
    ]),
  );
}

describe('AdaLoRA whole-model gradients (finite differences)', () => {
  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: lora_A, lora_E and lora_B of every module`, async () => {
      const gpu = await testGpu();
      const spec = tinySpec(family);
      const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 3));
      const targets = family === 'gpt2' ? allLinears(spec) : selectTargets(spec, ['q_proj', 'v_proj', 'down_proj']);
      const mark = gpu.mark();
      const results = await checkModelGradients(gpu, weights, {
        mode: 'adapters',
        adapters: randomLayers(gpu, targets, 3, 17),
      });
      expect(results.length).toBe(3 * targets.length);
      await gpu.freeSince(mark);
    });
  }
});

describe('PEFT budget schedule', () => {
  it('the CPU port gives the budgets PEFT logged (hf-golden adalora_allocation_log)', () => {
    for (const m of ['llama_gqa', 'qwen2', 'gpt2']) {
      const g = golden.adapters[m].adalora;
      const c = g.config;
      const modules = Object.keys(g.effective_modules).length;
      const cfg = { tinit: c.tinit, tfinal: c.tfinal, totalStep: c.total_step, deltaT: c.deltaT };
      for (const entry of g.adalora_allocation_log) {
        const s = budgetSchedule(cfg, c.init_r * modules, c.target_r * modules, entry.step);
        // PEFT logs the kept triplets after the steps that mask; the random E of the fixture has no ties.
        expect(entry.kept_triplets, `${m} step ${entry.step}`).toBe(s.mask ? s.budget : null);
      }
      const kept = Object.values(g.effective_modules as Record<string, { r: number }>).reduce((n, e) => n + e.r, 0);
      expect(kept).toBe(c.target_r * modules);
    }
  });
});

/** A tiny model trained by the real Trainer with AdaLoRA's per-step work. */
async function trainAdalora(gpu: Gpu, family: 'llama' | 'gpt2', steps: number, extra: Partial<AdaloraConfig> = {}) {
  const spec = tinySpec(family);
  const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 5));
  const shape = { batch: 2, seq: 6 };
  let next = 0;
  const bytes0 = gpu.counters.bytesAllocated;
  const state = await buildMethod(
    gpu,
    weights,
    { method: 'adalora', rank: 2, alpha: 8, targets: ['all-linear'], seed: 4, initR: 4, tinit: 1, tfinal: 2, ...extra },
    { nextBatch: () => ({ ...randomBatch(spec, 2, 6, next++), ...shape }) as never, shape, totalSteps: steps },
  );
  // The allocation table lists exactly what the method allocates (tensors, gradients, EMAs, schedule, scores, mask).
  const planned = planBytes(adapterAllocations([...state.adapters.values()].map(adapterShapeOf)));
  expect(gpu.counters.bytesAllocated - bytes0).toBe(planned);
  const graph = new TransformerGraph(gpu, weights, { ...shape, train: 'adapters', adapters: state.adapters });
  const trainer = new Trainer(
    gpu,
    graph,
    { ...DEFAULT_OPTIMIZER, lr: 2e-2, totalSteps: steps, maxGradNorm: 0.5 },
    state.training,
  );
  return { spec, weights, state, graph, trainer, shape };
}

/** Nonzero Λ entries of every module, in module order. */
async function nonzeroE(gpu: Gpu, state: MethodState): Promise<number> {
  const layers = [...state.adapters.values()] as AdaloraLayer[];
  const Es = await gpu.readMany(layers.map((l) => l.E));
  return Es.reduce((n, e) => n + e.filter((x) => x !== 0).length, 0);
}

describe('AdaLoRA training: the GPU allocator', () => {
  it('the nonzero Λ count follows budget_schedule step by step; nothing is allocated after step 0', async () => {
    const gpu = await testGpu();
    const steps = 9;
    const { state, trainer, spec } = await trainAdalora(gpu, 'llama', steps);
    const modules = state.analysis.modules.length;
    const cfg = adaloraConfigOf({ initR: 4, tinit: 1, tfinal: 2 }, 2, 8, steps);
    let buffersAfterStep0 = 0;
    const counts: number[] = [];
    const expected: number[] = [];
    for (let s = 0; s < steps; s++) {
      const done = await trainer.submit(randomBatch(spec, 2, 6, 100 + s));
      await done();
      if (s === 0) buffersAfterStep0 = gpu.counters.buffersCreated;
      counts.push(await nonzeroE(gpu, state));
      const a = allocatorStep(cfg, 4 * modules, 2 * modules, s);
      expected.push(a.applyMask ? a.budget : 4 * modules);
    }
    if (process.env.ADALORA_REPORT) console.log(`nonzero Λ per step: ${counts.join(' ')}`);
    expect(counts).toEqual(expected);
    expect(gpu.counters.buffersCreated).toBe(buffersAfterStep0);
    // Snapshots: kept ranks per module from the mask, summing to the target budget at the end.
    const snap = await state.snapshot!(steps);
    expect(snap.ranks!.reduce((a, b) => a + b, 0)).toBe(2 * modules);
    expect(state.analysis.modules.map((m) => m.rank)).toEqual(snap.ranks);
    expect(state.analysis.adalora).toMatchObject({ initR: 4, targetR: 2, tinit: 1, tfinal: 2, totalStep: steps });
    gpu.checkErrors('adalora training');
  });

  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: export -> import -> eval equals the trained model`, async () => {
      const gpu = await testGpu();
      const steps = 7;
      const { state, trainer, spec, weights, shape } = await trainAdalora(gpu, family, steps);
      for (let s = 0; s < steps; s++) await (await trainer.submit(randomBatch(spec, 2, 6, 200 + s)))();
      const folder = await (state.layers as Extract<MethodState['layers'], { structure: 'own' }>).export(gpu, spec, {
        baseModel: 'tiny',
      });
      expect(folder.format).toBe('adalora');
      expect(folder.config.peft_type).toBe('ADALORA');
      const pattern = folder.config.rank_pattern as Record<string, boolean[]>;
      const kept = Object.values(pattern).reduce((n, p) => n + p.filter(Boolean).length, 0);
      expect(kept).toBe(2 * state.analysis.modules.length);
      for (const t of folder.tensors) expect(t.name).toMatch(/^base_model\.model\..*\.lora_[AEB]$/);
      const loaded = await loadPeftAdapter(
        gpu,
        spec,
        JSON.parse(JSON.stringify(folder.config)),
        await memoryStore('adapter_model.safetensors', folder.tensors),
        'export',
      );
      expect(loaded.format).toBe('adalora');
      const batch = { ...randomBatch(spec, 2, 6, 999), ...shape };
      const evalOf = async (adapters: Map<string, LinearAdapter>) => {
        const graph = new TransformerGraph(gpu, weights, { ...shape, train: 'none', adapters });
        return (await evaluate(gpu, graph, [batch])).loss;
      };
      const trained = await evalOf(state.adapters);
      const reloaded = await evalOf(loaded.adapters);
      const base = await evalOf(new Map());
      expect(Math.abs(trained - base)).toBeGreaterThan(1e-4);
      if (process.env.ADALORA_REPORT)
        console.log(
          `${family}: base ${base}, trained ${trained}, reloaded ${reloaded}, ranks ${state.analysis.modules.map((m) => m.rank).join(',')}`,
        );
      expect(Math.abs(reloaded - trained) / trained).toBeLessThan(1e-6);
    });
  }
});

describe('hf-golden AdaLoRA folders against PEFT (unmerged_f64, 1e-5 relative)', () => {
  for (const m of ['llama_gqa', 'qwen2', 'gpt2']) {
    it(m, async () => {
      const gpu = await testGpu();
      const g = golden.adapters[m].adalora;
      const model = await loadModelDir(await nodeDir(`${ROOT}/models/${m}`));
      const base = await ModelWeights.upload(gpu, model.spec, model.source);
      const loaded = await loadPeftFolder(gpu, base, await nodeDir(`${ROOT}/${g.dir}`));
      expect(loaded.format).toBe('adalora');
      // qwen2 has a module pruned to rank 0: no layer for it.
      const zero = Object.values(g.effective_modules as Record<string, { r: number }>).filter((e) => e.r === 0).length;
      expect(loaded.adapters.size).toBe(Object.keys(g.effective_modules).length - zero);
      for (const [file, want] of Object.entries(g.losses as Record<string, { tokens: number; unmerged_f64: number }>)) {
        const examples: Example[] = readFileSync(`${ROOT}/${file}`, 'utf8')
          .trim()
          .split('\n')
          .map((line) => {
            const ids: number[] = JSON.parse(line).input_ids;
            return { inputIds: ids, labels: ids };
          });
        const seq = Math.max(...examples.map((e) => e.inputIds.length));
        const batches = padBatches(examples, { batch: examples.length, seq, padId: 0 });
        const graph = new TransformerGraph(gpu, loaded.weights, {
          batch: examples.length,
          seq,
          train: 'none',
          adapters: loaded.adapters,
        });
        const r = await evaluate(gpu, graph, batches);
        expect(r.tokens).toBe(want.tokens);
        const rel = Math.abs(r.loss - want.unmerged_f64) / want.unmerged_f64;
        if (process.env.ADALORA_REPORT) console.log(`${m} ${file}: relative error ${rel.toExponential(2)}`);
        expect(rel, `${m} ${file}: ${r.loss} vs PEFT ${want.unmerged_f64}`).toBeLessThan(1e-5);
      }
      gpu.checkErrors(m);
    });
  }

  it('export writes what PEFT wrote: the kept triplets of each hf-golden folder, re-exported, are the same file', async () => {
    for (const m of ['llama_gqa', 'qwen2', 'gpt2']) {
      const g = golden.adapters[m].adalora;
      const c = g.config;
      const spec = parseConfig(JSON.parse(readFileSync(`${ROOT}/models/${m}/config.json`, 'utf8')), m);
      const dir = await nodeDir(`${ROOT}/${g.dir}`);
      const store = await openCheckpoint(dir);
      const { modules } = await importPeftAdalora(spec, c, store, m);
      // Back to init_r triplets per module: the kept ones where the pattern says, zeros elsewhere; the mask from it.
      const mask: number[] = [];
      const full = modules.map((mod) => {
        const pattern: boolean[] = c.rank_pattern[`${mod.path}.lora_E`];
        const r = pattern.length;
        const A = new Float32Array(r * mod.in);
        const E = new Float32Array(r);
        const B = new Float32Array(mod.out * r);
        let j = 0;
        pattern.forEach((keep, k) => {
          mask.push(keep ? 1 : 0);
          if (!keep) return;
          A.set(mod.A.subarray(j * mod.in, (j + 1) * mod.in), k * mod.in);
          E[k] = mod.E[j];
          for (let o = 0; o < mod.out; o++) B[o * r + k] = mod.B[o * mod.rank + j];
          j++;
        });
        return { ...mod, rank: r, A, E, B };
      });
      const cfg = adaloraConfigOf(
        { initR: c.init_r, tinit: c.tinit, tfinal: c.tfinal, deltaT: c.deltaT, totalStep: c.total_step },
        c.target_r,
        c.lora_alpha,
        c.total_step,
      );
      const out = exportPeftAdalora(spec, full, Float32Array.from(mask), cfg, {
        baseModel: c.base_model_name_or_path,
        targets: c.target_modules,
      });
      const byName = new Map(out.tensors.map((t) => [t.name, t]));
      expect([...byName.keys()].sort()).toEqual(g.tensors.map((t: { name: string }) => t.name).sort());
      for (const t of g.tensors as { name: string; shape: number[] }[]) {
        expect(byName.get(t.name)!.shape, t.name).toEqual(t.shape);
        expect(Array.from(byName.get(t.name)!.data), t.name).toEqual(Array.from(await store.load(t.name)));
      }
      for (const field of [
        'peft_type',
        'init_r',
        'target_r',
        'tinit',
        'tfinal',
        'deltaT',
        'total_step',
        'beta1',
        'beta2',
      ])
        expect(out.config[field], `${m} ${field}`).toEqual(c[field]);
      expect(out.config.orth_reg_weight).toBe(c.orth_reg_weight);
      expect(out.config.lora_alpha).toBe(c.lora_alpha);
      expect(out.config.fan_in_fan_out).toBe(c.fan_in_fan_out);
      expect(out.config.rank_pattern).toEqual(c.rank_pattern);
      expect([...(out.config.target_modules as string[])].sort()).toEqual([...c.target_modules].sort());
    }
  });

  it('a rank_pattern that disagrees with the tensors is refused', async () => {
    const gpu = await testGpu();
    const spec = parseConfig(JSON.parse(readFileSync(`${ROOT}/models/qwen2/config.json`, 'utf8')), 'qwen2');
    const dir = await nodeDir(`${ROOT}/adapters/qwen2/adalora`);
    const config = JSON.parse(await dir.text('adapter_config.json'));
    config.rank_pattern['model.layers.0.mlp.down_proj.lora_E'][0] = false;
    await expect(loadPeftAdapter(gpu, spec, config, await openCheckpoint(dir), 'qwen2/adalora')).rejects.toThrow(
      /down_proj holds 6 triplets but its rank_pattern keeps 5/,
    );
  });
});

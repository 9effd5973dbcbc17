/**
 * DoRA end to end: the layer as the graph records it against a dense float64 computation (forward and every
 * gradient, the norm detached), a fresh DoRA is the base model, whole-model finite-difference gradient checks,
 * the allocation table, export -> import, and PEFT 0.20's own losses on the hf-golden DoRA folders.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DoraLayer } from '../../src/adapters/dora/layer';
import { exportPeftDora, importPeftDora } from '../../src/adapters/dora/peft';
import { padBatches, type Batch, type Example } from '../../src/data/index';
import { loadModelDir } from '../../src/engine/load-model';
import { exportAdapter, loadPeftAdapter, loadPeftFolder, peftFiles } from '../../src/engine/export';
import { buildMethod, type MethodState } from '../../src/engine/methods';
import type { Gpu } from '../../src/gpu/gpu';
import { biasAdd } from '../../src/kernels/bias';
import { doraBackwardRef, doraForwardRef, doraNormRef, type DoraRefParams } from '../../src/kernels/dora.ref';
import { matmul } from '../../src/kernels/matmul';
import type { LinearAdapter } from '../../src/model/adapter';
import { adapterShapeOf, planBytes, trainingAllocations } from '../../src/model/allocation-plan';
import { listScratchBytes } from '../../src/kernels/matmul';
import { memoryStore, openSafetensors } from '../../src/model/formats/safetensors';
import { nodeDir } from '../../src/model/formats/node-source';
import { bytesSource } from '../../src/model/formats/source';
import { allLinears, type LinearInfo } from '../../src/model/layout';
import { TransformerGraph, type Recompute } from '../../src/model/transformer';
import { Decoder } from '../../src/model/decode';
import { ModelWeights } from '../../src/model/weights';
import { evaluate } from '../../src/train/evaluate';
import { DEFAULT_OPTIMIZER, Trainer } from '../../src/train/trainer';
import { Rng } from '../../src/util/random';
import { gradCheckFailure, measureGradients } from '../helpers/gradcheck';
import { expectClose, runOnce, testGpu } from '../helpers/gpu';
import { randomBatch, randomSource, tinySpec } from '../helpers/tiny-models';

const SHAPE = { batch: 2, seq: 5 };

async function tinyModel(family: 'llama' | 'gpt2' | 'qwen2') {
  const gpu = await testGpu();
  const spec = tinySpec(family);
  return { gpu, spec, weights: await ModelWeights.upload(gpu, spec, randomSource(spec, 1)) };
}

async function buildDora(gpu: Gpu, weights: ModelWeights, rank = 2): Promise<MethodState> {
  let seed = 100;
  return buildMethod(
    gpu,
    weights,
    { method: 'dora', rank, alpha: 2 * rank, targets: ['all-linear'], seed: 3 },
    {
      nextBatch: (): Batch => ({ ...randomBatch(weights.spec, SHAPE.batch, SHAPE.seq, seed++), ...SHAPE }),
      shape: SHAPE,
    },
  );
}

/** A trained-looking DoRA: B away from 0, m away from ‖W‖_row (A too, a little). */
async function perturb(gpu: Gpu, state: MethodState, seed: number): Promise<void> {
  const rng = new Rng(seed);
  for (const t of [...state.adapters.values()].flatMap((a) => a.trainables)) {
    const p = await gpu.read(t.param);
    const m = t.name.endsWith('lora_magnitude_vector');
    const sd = t.name.endsWith('lora_B.weight') ? 0.3 : 0.05;
    gpu.upload(
      t.param,
      p.map((v) => (m ? v * (1 + 0.2 * rng.normal()) : v + sd * rng.normal())),
    );
  }
}

/** W of a module in Linear layout [out, in], as stored. */
async function linearWeight(gpu: Gpu, weights: ModelWeights, info: LinearInfo): Promise<Float32Array> {
  const w = await gpu.read(weights.get(info.weight));
  if (!info.conv1d) return w;
  const t = new Float32Array(w.length);
  for (let k = 0; k < info.in; k++) for (let j = 0; j < info.out; j++) t[j * info.in + k] = w[k * info.out + j];
  return t;
}

describe('DoRA layer as the graph records it vs float64', () => {
  for (const [conv1d, dtype] of [
    [false, 'f32'],
    [false, 'bf16'],
    [true, 'f32'],
  ] as const) {
    it(`forward, dx, dA, dB, dm (in 29, out 37, r 3, rows 11, ${conv1d ? 'Conv1D' : 'Linear'} W ${dtype}, bias, residual slice)`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(conv1d ? 21 : dtype === 'f32' ? 22 : 23);
      const [inDim, out, r, rows, ld, off] = [29, 37, 3, 11, 41, 3];
      const info: LinearInfo = {
        path: 'layer.proj',
        weight: 'w',
        bias: 'b',
        in: inDim,
        out,
        conv1d,
        layer: 0,
        kind: 'q_proj',
      } as LinearInfo;
      const Wl = rng.normals(out * inDim, 0.4);
      const stored = conv1d
        ? Float32Array.from({ length: out * inDim }, (_, i) => Wl[(i % out) * inDim + Math.floor(i / out)])
        : Wl;
      const W = gpu.tensorFrom(stored, conv1d ? [inDim, out] : [out, inDim], 'W', dtype);
      const back = await gpu.read(W);
      const Wref = conv1d
        ? Float32Array.from({ length: out * inDim }, (_, i) => back[(i % inDim) * out + Math.floor(i / inDim)])
        : back;
      const p: DoraRefParams = {
        inDim,
        outDim: out,
        rank: r,
        scale: 1.5,
        W: Wref,
        A: rng.normals(r * inDim, 0.3),
        B: rng.normals(out * r, 0.3),
        m: rng.normals(out).map((v) => 2 + 0.3 * v),
        bias: rng.normals(out, 0.1),
      };
      const layer = new DoraLayer(gpu, info, r, p.scale, {
        A: Float32Array.from(p.A),
        B: Float32Array.from(p.B),
        m: Float32Array.from(p.m),
      });
      const bias = gpu.tensorFrom(Float32Array.from(p.bias!), [out], 'bias');
      const bound = layer.bind(gpu, rows, W);
      const rb = bound.rescalesBase!;
      const x = rng.normals(rows * inDim);
      const y0 = rng.normals(rows * ld + off);
      const dyAll = rng.normals(rows * ld + off);
      const xT = gpu.tensorFrom(x, [rows, inDim], 'x');
      const yT = gpu.tensorFrom(y0, [y0.length], 'y');
      const dyT = gpu.tensorFrom(dyAll, [dyAll.length], 'dy');
      const dxT = gpu.tensor([rows, inDim], 'dx');
      const xv = { t: xT, ld: inDim };
      const yv = { t: yT, ld, offset: off };
      // What ForwardPass.linear (beta 1) and TransformerGraph.linearBackward record.
      await runOnce(gpu, (list) => {
        matmul(list, {
          a: xv,
          b: { t: W, ld: conv1d ? out : inDim },
          c: rb.base,
          M: rows,
          N: out,
          K: inDim,
          transB: !conv1d,
        });
        rb.forward(list, xv, yv, 1);
        biasAdd(list, { y: yv, bias, rows, cols: out });
        const dz = rb.scaleGrad(list, { t: dyT, ld, offset: off });
        matmul(list, {
          a: dz,
          b: { t: W, ld: conv1d ? out : inDim },
          c: { t: dxT, ld: inDim },
          M: rows,
          N: inDim,
          K: out,
          transB: conv1d,
        });
        bound.backward(list, xv, dz, { t: dxT, ld: inDim });
      });
      const y = doraForwardRef(x, rows, p);
      const dy = new Float64Array(rows * out);
      const wantY = Float64Array.from(y0);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < out; j++) {
          wantY[off + i * ld + j] += y[i * out + j];
          dy[i * out + j] = dyAll[off + i * ld + j];
        }
      }
      const g = doraBackwardRef(x, dy, rows, p);
      const tol = { atol: 2e-5, rtol: 2e-5 };
      expectClose(await gpu.read(yT), wantY, 'y', tol);
      expectClose(await gpu.read(dxT), g.dx, 'dx', tol);
      expectClose(await gpu.read(layer.dA), g.dA, 'dA', tol);
      expectClose(await gpu.read(layer.dB), g.dB, 'dB', tol);
      expectClose(await gpu.read(layer.dm), g.dm, 'dm', tol);
      await gpu.freeTensors([W, bias, xT, yT, dyT, dxT]);
    });
  }
});

describe('DoRA in the model', () => {
  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: a fresh DoRA (B = 0, m = ‖W‖_row) gives the base model's logits`, async () => {
      const { gpu, spec, weights } = await tinyModel(family);
      const mark = gpu.mark();
      const state = await buildDora(gpu, weights);
      const batch = { ...randomBatch(spec, SHAPE.batch, SHAPE.seq, 9), ...SHAPE };
      const logits = async (adapters?: Map<string, LinearAdapter>) => {
        const graph = new TransformerGraph(gpu, weights, { ...SHAPE, train: 'none', adapters, logitsChunkRows: 10 });
        graph.setBatch(batch);
        graph.forwardList.run();
        return gpu.read(graph.logits);
      };
      const base = await logits();
      const dora = await logits(state.adapters);
      let worst = 0;
      for (let i = 0; i < base.length; i++)
        worst = Math.max(worst, Math.abs(dora[i] - base[i]) / (1 + Math.abs(base[i])));
      expect(worst).toBeLessThan(1e-6);
      const snap = await state.snapshot!(0);
      expect(snap.magnitudeDrift!.length).toBe(state.analysis.modules.length);
      for (const d of snap.magnitudeDrift!) expect(d).toBeLessThan(1e-7);
      expect(state.analysis.trainableParameters).toBe(
        allLinears(spec).reduce((n, m) => n + 2 * (m.in + m.out) + m.out, 0),
      );
      await gpu.freeSince(mark);
    });
  }

  /**
   * PEFT detaches the norm, so the analytic gradient of A and B is not the loss's derivative. The check holds the
   * norm at its value at the checked point (DoraLayer.heldNormSq, the f64 norm of W + s·B·A there): finite
   * differences of that loss are exactly the detached gradient, which must also be what the live-norm graph
   * computes at that point (and the graph that recomputes the MLP: its DoRA linears run their forward twice).
   */
  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: whole-model gradient check, B and m perturbed`, async () => {
      const { gpu, spec, weights } = await tinyModel(family);
      const mark = gpu.mark();
      const state = await buildDora(gpu, weights);
      await perturb(gpu, state, 5);
      const batch = randomBatch(spec, 2, 5, 4);
      const graphOf = (adapters: Map<string, LinearAdapter>, recompute?: Recompute) => {
        const g = new TransformerGraph(gpu, weights, { ...SHAPE, train: 'adapters', adapters, recompute });
        g.setBatch(batch);
        return g;
      };
      const gradients = async (g: TransformerGraph) => {
        g.backwardList!.run();
        return Promise.all(g.trainables.map((t) => gpu.read(t.grad)));
      };
      const sameGradients = (g: TransformerGraph, a: Float32Array[], b: Float32Array[], what: string) =>
        g.trainables.forEach((t, i) => {
          let diff = 0;
          let norm = 0;
          for (let k = 0; k < a[i].length; k++) {
            diff += (a[i][k] - b[i][k]) ** 2;
            norm += b[i][k] ** 2;
          }
          expect(Math.sqrt(diff / Math.max(norm, 1e-30)), `${t.name}: ${what}`).toBeLessThan(1e-4);
        });
      // Live norm: the gradients at this point, with and without recomputing the MLP.
      const live = graphOf(state.adapters);
      const liveGrads = await gradients(live);
      const recomputed = graphOf(state.adapters, 'mlp');
      sameGradients(recomputed, await gradients(recomputed), liveGrads, 'MLP recomputed vs saved');
      // Held norm: the same layers with n fixed at its value here.
      const held = new Map<string, LinearAdapter>();
      for (const [path, a] of state.adapters) {
        const l = a as DoraLayer;
        const [A, B, m] = await gpu.readMany([l.A, l.B, l.m]);
        const n = doraNormRef({
          inDim: l.info.in,
          outDim: l.info.out,
          rank: l.rank,
          scale: l.scale,
          W: await linearWeight(gpu, weights, l.info),
          A,
          B,
          m,
        });
        const h = new DoraLayer(gpu, l.info, l.rank, l.scale, { A, B, m });
        h.heldNormSq = gpu.tensorFrom(
          Float32Array.from(n, (v) => v * v),
          [l.info.out],
          `${path}.held`,
        );
        held.set(path, h);
      }
      const fixed = graphOf(held);
      sameGradients(fixed, await gradients(fixed), liveGrads, 'held norm vs live norm');
      const results = await measureGradients(gpu, fixed, batch.supervised, 2);
      const failures = results.map(gradCheckFailure).filter((f) => f !== null);
      expect(failures, failures.join('\n')).toEqual([]);
      if (process.env.DORA_REPORT)
        console.log(results.map((r) => `${r.name} ${r.relError.toExponential(1)}`).join('\n'));
      await gpu.freeSince(mark);
    });
  }

  it('llama: the GPU grows by exactly the allocation table for a DoRA run (adapters, graph, trainer)', async () => {
    const { gpu, spec, weights } = await tinyModel('llama');
    const mark = gpu.mark();
    const before = gpu.liveBytes;
    const state = await buildDora(gpu, weights, 3);
    const graph = new TransformerGraph(gpu, weights, { batch: 3, seq: 7, train: 'adapters', adapters: state.adapters });
    new Trainer(gpu, graph, { ...DEFAULT_OPTIMIZER, lr: 1e-3, totalSteps: 2 }, state.training);
    await gpu.sync();
    const created = gpu.createdSince(mark);
    const buffers = created.filter((b) => !(b.usage & GPUBufferUsage.UNIFORM));
    const table = trainingAllocations(spec, {
      batch: 3,
      seq: 7,
      train: 'adapters',
      adapters: [...state.adapters.values()].map(adapterShapeOf),
      listScratchBytes: listScratchBytes(gpu.device),
    });
    expect(buffers.map((b) => `${b.label} ${b.size}`).sort()).toEqual(table.map((b) => `${b.name} ${b.bytes}`).sort());
    const uniformBytes = created.filter((b) => b.usage & GPUBufferUsage.UNIFORM).reduce((n, b) => n + b.size, 0);
    expect(gpu.liveBytes - before - uniformBytes).toBe(planBytes(table));
    await gpu.freeSince(mark);
  });

  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: export -> import -> eval gives the in-memory model's loss`, async () => {
      const { gpu, spec, weights } = await tinyModel(family);
      const mark = gpu.mark();
      const state = await buildDora(gpu, weights);
      await perturb(gpu, state, 7);
      const exported = await exportAdapter(gpu, spec, state, { baseModel: 'tiny' });
      const files = peftFiles(exported);
      const config = JSON.parse(files['adapter_config.json'] as string);
      expect(config.use_dora).toBe(true);
      expect(config.peft_type).toBe('LORA');
      expect(config.fan_in_fan_out).toBe(family === 'gpt2');
      const names = exported.tensors.map((t) => t.name);
      const first = allLinears(spec)[0].path;
      expect(names).toContain(`base_model.model.${first}.lora_magnitude_vector`);
      expect(names).toContain(`base_model.model.${first}.lora_A.weight`);
      const store = await openSafetensors(
        bytesSource('adapter_model.safetensors', files['adapter_model.safetensors'] as Uint8Array),
      );
      const imported = await loadPeftAdapter(gpu, spec, config, store, 'export');
      const batches = [4, 5].map((s) => ({ ...randomBatch(spec, SHAPE.batch, SHAPE.seq, s), ...SHAPE }));
      const loss = async (adapters?: Map<string, LinearAdapter>) =>
        (await evaluate(gpu, new TransformerGraph(gpu, weights, { ...SHAPE, train: 'none', adapters }), batches)).loss;
      const inMemory = await loss(state.adapters);
      const roundTrip = await loss(imported.adapters);
      const base = await loss();
      expect(Math.abs(inMemory - base)).toBeGreaterThan(1e-3);
      expect(Math.abs(roundTrip - inMemory) / inMemory).toBeLessThan(1e-6);
      await gpu.freeSince(mark);
    });
  }

  it('import refuses a DoRA folder without magnitudes, and magnitudes without use_dora', async () => {
    const { gpu, spec } = await tinyModel('llama');
    const info = allLinears(spec)[0];
    const rng = new Rng(1);
    const module = {
      path: info.path,
      rank: 2,
      scale: 2,
      A: rng.normals(2 * info.in),
      B: rng.normals(2 * info.out),
      m: rng.normals(info.out),
      in: info.in,
      out: info.out,
    };
    const e = exportPeftDora(spec, [module], { alpha: 4, baseModel: 'tiny' });
    const config = { ...e.config, target_modules: [info.path] };
    const noM = e.tensors.filter((t) => !t.name.endsWith('magnitude_vector'));
    await expect(
      importPeftDora(spec, config, await memoryStore('adapter_model.safetensors', noM), 'f'),
    ).rejects.toThrow(/use_dora is true but .* has no lora_magnitude_vector/);
    await expect(
      loadPeftAdapter(gpu, spec, { ...config, use_dora: false }, await memoryStore('a', e.tensors), 'f'),
    ).rejects.toThrow(/DoRA magnitude vector, but adapter_config\.json does not set use_dora/);
    const back = await importPeftDora(spec, config, await memoryStore('a', e.tensors), 'f');
    expect(Array.from(back[0].m)).toEqual(Array.from(module.m));
  });
});

const ROOT = 'test/fixtures/hf-golden';
const golden = JSON.parse(readFileSync(`${ROOT}/golden-dora.json`, 'utf8'));

function examples(file: string): Example[] {
  return readFileSync(`${ROOT}/${file}`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const ids: number[] = JSON.parse(line).input_ids;
      return { inputIds: ids, labels: ids };
    });
}

describe('PEFT DoRA folders against PEFT itself (hf-golden unmerged_f64 losses)', () => {
  it("gpt2/dora: the KV-cache decoder's logits (1-row and 4-row DoRA binds) equal the full forward's", async () => {
    const gpu = await testGpu();
    const mark = gpu.mark();
    const model = await loadModelDir(await nodeDir(`${ROOT}/models/gpt2`));
    const base = await ModelWeights.upload(gpu, model.spec, model.source);
    const loaded = await loadPeftFolder(gpu, base, await nodeDir(`${ROOT}/adapters/gpt2/dora`));
    const prompt = examples('data/random.jsonl')[0].inputIds.slice(0, 12);
    const V = model.spec.vocabSize;
    const graph = new TransformerGraph(gpu, loaded.weights, {
      batch: 1,
      seq: prompt.length,
      train: 'none',
      adapters: loaded.adapters,
    });
    graph.setBatch({
      tokens: Uint32Array.from(prompt),
      targets: new Int32Array(prompt.length).fill(-100),
      positions: Uint32Array.from(prompt.keys()),
      supervised: 0,
    });
    graph.forwardList.run();
    const full = await gpu.read(graph.logits, (prompt.length - 1) * V, V);
    const decoder = new Decoder(gpu, loaded.weights, { capacity: 16, prefillRows: 4, adapters: loaded.adapters });
    decoder.prefill(Array.from(prompt.slice(0, -1)));
    const decoded = await decoder.stepLogits(prompt[prompt.length - 1]);
    const scale = Math.max(...full.map(Math.abs));
    expect(Math.max(...decoded.map((x, i) => Math.abs(x - full[i]))) / scale).toBeLessThan(1e-5);
    await gpu.freeSince(mark);
  });

  for (const m of ['llama_gqa', 'llama_tied_bf16', 'qwen2', 'gpt2']) {
    it(`${m}/dora`, async () => {
      const gpu = await testGpu();
      const mark = gpu.mark();
      const model = await loadModelDir(await nodeDir(`${ROOT}/models/${m}`));
      const base = await ModelWeights.upload(gpu, model.spec, model.source);
      const g = golden.adapters[m].dora;
      const loaded = await loadPeftFolder(gpu, base, await nodeDir(`${ROOT}/adapters/${m}/dora`));
      expect(loaded.adapters.size).toBe(g.tensors.length / 3);
      const files = ['data/random.jsonl', `data/${m}.jsonl`];
      for (const f of files) {
        const ex = examples(f);
        const seq = Math.max(...ex.map((e) => e.inputIds.length));
        const batches = padBatches(ex, { batch: ex.length, seq, padId: 0 });
        const graph = new TransformerGraph(gpu, loaded.weights, {
          batch: batches[0].batch,
          seq,
          train: 'none',
          adapters: loaded.adapters,
        });
        const r = await evaluate(gpu, graph, batches);
        const want = g.losses[f];
        expect(r.tokens).toBe(want.tokens);
        const rel = Math.abs(r.loss - want.unmerged_f64) / want.unmerged_f64;
        if (process.env.DORA_REPORT) console.log(`${m} ${f}: ${rel.toExponential(2)} (base ${want.base_loss})`);
        expect(rel, `${m} ${f}: loss ${r.loss}, PEFT ${want.unmerged_f64}`).toBeLessThan(1e-5);
      }
      await gpu.freeSince(mark);
      gpu.checkErrors(m);
    });
  }
});

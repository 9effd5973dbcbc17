import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu';
import { crossEntropyForward, crossEntropyForwardBackward, type CrossEntropyVariant } from '../../src/kernels/xent';
import { crossEntropyRef } from '../../src/kernels/xent.ref';
import { Rng } from '../../src/util/random';
import { dispatched, expectClose, runOnce, testGpu, testGpuWithoutFeatures, validated } from '../helpers/gpu';

/** Random logits and targets: rows 1 and 3 ignored (-100), the last one out of range; row 0 has a logit of 80. */
function problem(rng: Rng, rows: number, vocab: number) {
  const logits = rng.normals(rows * vocab, 2);
  logits[3 % vocab] = 80; // exp(80) overflows f32: only a max-subtracted softmax survives it
  const last = rows - 1;
  for (let j = 0; j < vocab; j++) logits[last * vocab + j] = -80 + rng.normal(); // large negative row
  const targets = new Int32Array(rows);
  for (let r = 0; r < rows; r++) targets[r] = rng.int(vocab);
  targets[1] = -100;
  targets[3] = -100;
  targets[4] = vocab; // out of range: treated as ignored
  return { logits, targets };
}

describe('cross-entropy reference', () => {
  it('dlogits matches finite differences of gradScale * sum(losses) (float64)', () => {
    const rng = new Rng(21);
    const rows = 6;
    const vocab = 5;
    const { logits: l32, targets } = problem(rng, rows, vocab);
    const logits = Float64Array.from(l32);
    const gradScale = 0.3;
    const loss = () => crossEntropyRef(logits, targets, rows, vocab).losses.reduce((s, x) => s + x, 0) * gradScale;
    const { dlogits } = crossEntropyRef(logits, targets, rows, vocab, gradScale);
    const eps = 1e-6;
    const fd = new Float64Array(logits.length);
    for (let i = 0; i < logits.length; i++) {
      const x0 = logits[i];
      logits[i] = x0 + eps;
      const up = loss();
      logits[i] = x0 - eps;
      const down = loss();
      logits[i] = x0;
      fd[i] = (up - down) / (2 * eps);
    }
    expectClose(dlogits, fd, 'dlogits vs finite differences', { atol: 1e-7, rtol: 1e-6 });
  });
});

// Wide rows reduce with subgroup operations on testGpu (it has subgroups) and with the shared-memory tree on the
// feature-less device; narrow rows use the tree on both, so they run once.
const CONFIGS: { name: string; variant: CrossEntropyVariant; device: () => Promise<Gpu> }[] = [
  { name: 'wide, subgroups', variant: 'wide', device: testGpu },
  { name: 'wide, no subgroups', variant: 'wide', device: testGpuWithoutFeatures },
  { name: 'narrow', variant: 'narrow', device: testGpu },
];

/** [rows, vocab]: rows >= 5 (problem() marks rows 1, 3 and 4); vocabs below, around and above 256 threads. */
const SHAPES: [number, number][] = [
  [9, 7],
  [9, 300],
  [5, 1],
  [33, 37],
  [5, 1037],
];

describe('cross-entropy', () => {
  for (const { name, variant, device } of CONFIGS)
    for (const [rows, vocab] of SHAPES) {
      it(`${name}: ${rows} rows, vocab ${vocab}: forward, forward+backward, and in place, with ignored rows and a logit of 80`, async () => {
        const gpu = await device();
        const rng = new Rng(vocab);
        const { logits, targets } = problem(rng, rows, vocab);
        const gradScale = 1 / 6;
        const want = crossEntropyRef(logits, targets, rows, vocab, gradScale);
        await validated(gpu, async () => {
          const tLogits = gpu.tensorFrom(logits, [rows, vocab], 'logits');
          const tTargets = gpu.tensor([rows], 'targets', 'i32');
          gpu.upload(tTargets, targets);
          const tScale = gpu.tensorFrom(new Float32Array([gradScale]), [1], 'gradScale');
          const sentinel = new Float32Array(rows).fill(3);

          const lossesF = gpu.tensorFrom(sentinel, [rows], 'lossesF');
          await runOnce(gpu, (l) =>
            crossEntropyForward(l, { logits: tLogits, targets: tTargets, losses: lossesF, rows, vocab, variant }),
          );
          expectClose(await gpu.read(lossesF), want.losses, 'forward losses');

          const lossesFB = gpu.tensorFrom(sentinel, [rows], 'lossesFB');
          const dlogits = gpu.tensorFrom(new Float32Array(rows * vocab).fill(3), [rows, vocab], 'dlogits');
          await runOnce(gpu, (l) =>
            crossEntropyForwardBackward(l, {
              logits: tLogits,
              targets: tTargets,
              losses: lossesFB,
              dlogits,
              gradScale: tScale,
              rows,
              vocab,
              variant,
            }),
          );
          expectClose(await gpu.read(lossesFB), want.losses, 'forward+backward losses');
          expectClose(await gpu.read(dlogits), want.dlogits, 'dlogits');
          expectClose(await gpu.read(tLogits), logits, 'logits untouched');

          const lossesIP = gpu.tensorFrom(sentinel, [rows], 'lossesIP');
          await runOnce(gpu, (l) =>
            crossEntropyForwardBackward(l, {
              logits: tLogits,
              targets: tTargets,
              losses: lossesIP,
              dlogits: tLogits,
              gradScale: tScale,
              rows,
              vocab,
              variant,
            }),
          );
          expectClose(await gpu.read(lossesIP), want.losses, 'in-place losses');
          expectClose(await gpu.read(tLogits), want.dlogits, 'in-place dlogits');
        });
      });
    }

  // The LM head runs in chunks of rows: each chunk's logits sit at row 0 of their own buffer, while targets and
  // losses are indexed from rowOffset. Chunks of 4 over 9 rows (the last one partial), every entry point.
  for (const { name, variant, device } of CONFIGS) {
    it(`${name}: chunks of rows through rowOffset`, async () => {
      const gpu = await device();
      const rng = new Rng(41);
      const rows = 9,
        vocab = 33,
        chunk = 4;
      const { logits, targets } = problem(rng, rows, vocab);
      const want = crossEntropyRef(logits, targets, rows, vocab, 0.25);
      await validated(gpu, async () => {
        const tTargets = gpu.tensor([rows], 'targets', 'i32');
        gpu.upload(tTargets, targets);
        const tScale = gpu.tensorFrom(new Float32Array([0.25]), [1], 'gradScale');
        const losses = {
          forward: gpu.tensor([rows], 'lossesF'),
          copy: gpu.tensor([rows], 'lossesFB'),
          inPlace: gpu.tensor([rows], 'lossesIP'),
        };
        for (let r0 = 0; r0 < rows; r0 += chunk) {
          const n = Math.min(chunk, rows - r0);
          const part = logits.slice(r0 * vocab, (r0 + n) * vocab);
          const chunkLogits = gpu.tensorFrom(part, [n, vocab], 'chunk');
          const dlogits = gpu.tensor([n, vocab], 'dchunk');
          const common = { targets: tTargets, rows: n, vocab, rowOffset: r0, variant };
          await runOnce(gpu, (l) => {
            crossEntropyForward(l, { ...common, logits: chunkLogits, losses: losses.forward });
            crossEntropyForwardBackward(l, {
              ...common,
              logits: chunkLogits,
              losses: losses.copy,
              dlogits,
              gradScale: tScale,
            });
            crossEntropyForwardBackward(l, {
              ...common,
              logits: chunkLogits,
              losses: losses.inPlace,
              dlogits: chunkLogits,
              gradScale: tScale,
            });
          });
          const wantChunk = want.dlogits.slice(r0 * vocab, (r0 + n) * vocab);
          expectClose(await gpu.read(dlogits), wantChunk, `dlogits rows ${r0}..`);
          expectClose(await gpu.read(chunkLogits), wantChunk, `in-place dlogits rows ${r0}..`);
        }
        for (const [name, t] of Object.entries(losses)) expectClose(await gpu.read(t), want.losses, `${name} losses`);
      });
    });
  }

  // testGpu has subgroups on every machine these tests run on (SwiftShader included): were it to lose them,
  // both wide configurations above would test the tree.
  it('wide rows compile from xent+subgroups on a device with subgroups, from xent without; narrow from xent', async () => {
    for (const [device, wide] of [
      [testGpu, 'xent+subgroups'],
      [testGpuWithoutFeatures, 'xent'],
    ] as const) {
      const gpu = await device();
      const logits = gpu.tensor([2, 3], 'logits');
      const targets = gpu.tensor([2], 'targets', 'i32');
      const losses = gpu.tensor([2], 'losses');
      for (const [variant, want] of [
        ['wide', wide],
        ['narrow', 'xent'],
      ] as const) {
        expect(
          await dispatched(gpu, (l) => crossEntropyForward(l, { logits, targets, losses, rows: 2, vocab: 3, variant })),
        ).toEqual([`${want}.forward`]);
      }
    }
  });

  it('rejects mismatched sizes and aliasing with clear errors', async () => {
    const gpu = await testGpu();
    const logits = gpu.tensor([4, 5], 'logits');
    const targets = gpu.tensor([4], 'targets', 'i32');
    const losses = gpu.tensor([4], 'losses');
    const gradScale = gpu.tensor([1], 'gradScale');
    const list = gpu.list('errors');
    expect(() => crossEntropyForward(list, { logits, targets, losses, rows: 4, vocab: 6 })).toThrow(
      /logits \(logits\)/,
    );
    expect(() =>
      crossEntropyForward(list, { logits, targets: gpu.tensor([4], 'ftargets'), losses, rows: 4, vocab: 5 }),
    ).toThrow(/targets \(ftargets\)/);
    expect(() =>
      crossEntropyForward(list, { logits, targets, losses: gpu.tensor([3], 'l3'), rows: 4, vocab: 5 }),
    ).toThrow(/losses \(l3\)/);
    expect(() =>
      crossEntropyForwardBackward(list, { logits, targets, losses, dlogits: losses, gradScale, rows: 4, vocab: 5 }),
    ).toThrow(/dlogits/);
  });
});

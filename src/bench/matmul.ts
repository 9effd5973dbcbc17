/**
 * Matmul throughput: our kernel against jax-js np.matmul and TensorFlow.js tf.matMul, same shapes, same
 * adapter, same process. Every implementation does `reps` products and then reads the last one back, so
 * the timing covers GPU work that has really finished; ours records all reps in one command list and one
 * submit (as a training step does), the peers use their normal eager APIs. The read-back product is
 * spot-checked against float64 dot products so a fast but wrong kernel cannot win.
 */
import type { CommandList, Gpu } from '../gpu/gpu';
import type { Tensor } from '../gpu/tensor';
import { matmul } from '../kernels/matmul';
import { storeWeight } from '../quant/store';
import { Rng } from '../util/random';
import { loadJax, loadTf, PEER_NAMES, type Jax, type PeerId, type PeerUnavailable, type Tf } from './peers';
import { measureInterleaved, type TimingOptions } from './timing';

export interface MatmulShape {
  label: string;
  M: number;
  K: number;
  N: number;
  /** B stored N x K (an nn.Linear weight, y = x Wᵀ) rather than K x N. */
  transB: boolean;
}

export interface MatmulResult {
  shape: string;
  M: number;
  K: number;
  N: number;
  transB: boolean;
  impl: string;
  gflops: number;
  msPerMatmul: number;
  reps: number;
  trials: number;
  /** Largest relative error of the spot-checked entries (|got - want| / (|A row|·|B col|)). */
  maxRelError: number;
  error?: string;
}

/** A prepared product: reps matmuls, then the last C read back. */
interface Prepared {
  run(reps: number): Promise<Float32Array>;
  dispose(): void;
  /** The B values the product really uses when they differ from the given ones (16-bit or quantized storage). */
  storedB?: Float32Array;
}

export interface MatmulImpl {
  name: string;
  prepare(s: MatmulShape, a: Float32Array<ArrayBuffer>, b: Float32Array<ArrayBuffer>): Promise<Prepared>;
}

export function squareShape(n: number): MatmulShape {
  return { label: `${n}³`, M: n, K: n, N: n, transB: false };
}

/** Linear-layer shapes of one SmolLM2-135M block (d = 576) over T tokens, and its LoRA factors at rank r. */
export function llmShapes(T = 512, d = 576, r = 16): MatmulShape[] {
  return [
    { label: `x·Wᵀ T×d×d`, M: T, K: d, N: d, transB: true },
    { label: `x·Wᵀ T×d×4d`, M: T, K: d, N: 4 * d, transB: true },
    { label: `x·Aᵀ T×d×r`, M: T, K: d, N: r, transB: true },
    { label: `h·Bᵀ T×r×d`, M: T, K: r, N: d, transB: true },
  ];
}

/** Storage of the B operand: a frozen weight's precisions (f32 is the plain product). */
export type BStorage = 'f32' | 'bf16' | 'nf4' | 'int8';

/** Our kernel; with `storage`, B is stored like a frozen weight of that precision ("ours, B nf4"). */
export function ours(gpu: Gpu, storage: BStorage = 'f32'): MatmulImpl {
  return {
    name: storage === 'f32' ? 'ours' : `ours, B ${storage}`,
    async prepare(s, a, b) {
      const ta = gpu.tensorFrom(a, [s.M, s.K], 'bench.A');
      const tb = await storeWeight(gpu, b, s.transB ? [s.N, s.K] : [s.K, s.N], 'bench.B', storage);
      const storedB = storage === 'f32' ? undefined : await gpu.read(tb);
      const tc = gpu.tensor([s.M, s.N], 'bench.C');
      // One recording per repetition count, replayed for every trial.
      const lists = new Map<number, CommandList>();
      const record = (reps: number) => {
        const list = gpu.list(`bench matmul x${reps}`);
        for (let i = 0; i < reps; i++) {
          matmul(list, {
            a: { t: ta, ld: s.K },
            b: { t: tb, ld: s.transB ? s.K : s.N },
            c: { t: tc, ld: s.N },
            M: s.M,
            N: s.N,
            K: s.K,
            transB: s.transB,
          });
        }
        return list;
      };
      return {
        async run(reps) {
          let list = lists.get(reps);
          if (!list) lists.set(reps, (list = record(reps)));
          list.run();
          const c = await gpu.read(tc); // queued behind the products: resolves once they are done
          gpu.checkErrors('bench matmul');
          return c;
        },
        dispose() {
          for (const t of [ta, tb, tc] as Tensor[]) t.buffer.destroy();
        },
        storedB,
      };
    },
  };
}

export function jaxImpl(jax: Jax): MatmulImpl {
  const np = jax.numpy;
  return {
    name: PEER_NAMES.jax,
    async prepare(s, aData, bData) {
      const a = np.array(aData).reshape([s.M, s.K]);
      const b = np.array(bData).reshape(s.transB ? [s.N, s.K] : [s.K, s.N]);
      await jax.blockUntilReady([a, b]);
      return {
        async run(reps) {
          // Arrays are lazy: every product must be realized, or jax-js would skip the unread ones.
          const outs = [];
          for (let i = 0; i < reps; i++) outs.push(np.matmul(a.ref, s.transB ? b.ref.transpose() : b.ref));
          const last = outs.pop()!;
          await Promise.all(outs.map((o) => o.blockUntilReady()));
          for (const o of outs) o.dispose();
          return (await last.data()) as Float32Array; // data() consumes `last`
        },
        dispose() {
          a.dispose();
          b.dispose();
        },
      };
    },
  };
}

export function tfImpl(tf: Tf): MatmulImpl {
  return {
    name: PEER_NAMES.tf,
    async prepare(s, aData, bData) {
      const a = tf.tensor2d(aData, [s.M, s.K]);
      const b = tf.tensor2d(bData, s.transB ? [s.N, s.K] : [s.K, s.N]);
      return {
        async run(reps) {
          const outs = [];
          for (let i = 0; i < reps; i++) outs.push(tf.matMul(a, b, false, s.transB));
          // One queue: reading the last product waits for all of them.
          const c = (await outs[outs.length - 1].data()) as Float32Array;
          tf.dispose(outs);
          return c;
        },
        dispose() {
          tf.dispose([a, b]);
        },
      };
    },
  };
}

/**
 * The peers' matmul implementations, loaded now (dynamic imports: only a bench run pays for them). A peer that
 * cannot start is returned with its own error instead of failing the others.
 */
export async function peerMatmulImpls(
  peers: PeerId[],
): Promise<{ impls: MatmulImpl[]; unavailable: PeerUnavailable[] }> {
  const impls: MatmulImpl[] = [];
  const unavailable: PeerUnavailable[] = [];
  for (const peer of peers) {
    try {
      impls.push(peer === 'jax' ? jaxImpl(await loadJax()) : tfImpl(await loadTf()));
    } catch (e) {
      unavailable.push({ peer, name: PEER_NAMES[peer], error: (e as Error).message });
    }
  }
  return { impls, unavailable };
}

/** Entries of C checked against float64 dot products. */
const SPOT_CHECKS = 64;

function spotCheck(s: MatmulShape, a: Float32Array, b: Float32Array, c: Float32Array, rng: Rng): number {
  if (c.length !== s.M * s.N) return Infinity;
  let worst = 0;
  for (let n = 0; n < SPOT_CHECKS; n++) {
    const i = rng.int(s.M);
    const j = rng.int(s.N);
    let want = 0;
    let scale = 0;
    for (let k = 0; k < s.K; k++) {
      const x = a[i * s.K + k];
      const y = s.transB ? b[j * s.K + k] : b[k * s.N + j];
      want += x * y;
      scale += Math.abs(x * y);
    }
    const err = Math.abs(c[i * s.N + j] - want) / Math.max(scale, 1e-30);
    worst = Math.max(worst, Number.isNaN(err) ? Infinity : err);
  }
  return worst;
}

/** Measures every implementation on one shape, trials interleaved; a failing implementation gets an error row. */
export async function benchMatmulShape(
  impls: MatmulImpl[],
  s: MatmulShape,
  timing: TimingOptions,
  seed = 0,
): Promise<MatmulResult[]> {
  const rng = new Rng(seed + s.M * 7 + s.K * 13 + s.N * 17);
  const a = new Float32Array(rng.normals(s.M * s.K));
  const b = new Float32Array(rng.normals(s.K * s.N));
  const base = (impl: MatmulImpl) => ({ shape: s.label, M: s.M, K: s.K, N: s.N, transB: s.transB, impl: impl.name });
  const failed = (impl: MatmulImpl, e: unknown): MatmulResult => ({
    ...base(impl),
    gflops: NaN,
    msPerMatmul: NaN,
    reps: 0,
    trials: 0,
    maxRelError: NaN,
    error: (e as Error).message,
  });
  const prepared: { impl: MatmulImpl; p: Prepared; last: Float32Array }[] = [];
  const results = new Map<MatmulImpl, MatmulResult>();
  try {
    for (const impl of impls) {
      try {
        const p = await impl.prepare(s, a, b);
        prepared.push({ impl, p, last: new Float32Array(0) });
        await p.run(1); // the warm-up; a failure shows here, alone, not in the middle of the trials
      } catch (e) {
        results.set(impl, failed(impl, e));
      }
    }
    const live = prepared.filter((x) => !results.has(x.impl));
    const runs = live.map((x) => async (reps: number) => {
      x.last = await x.p.run(reps);
    });
    try {
      const measured = await measureInterleaved(runs, timing);
      const flops = 2 * s.M * s.N * s.K;
      live.forEach((x, i) => {
        const m = measured[i];
        results.set(x.impl, {
          ...base(x.impl),
          gflops: flops / (m.msPerRep * 1e6),
          msPerMatmul: m.msPerRep,
          reps: m.reps,
          trials: m.trials,
          maxRelError: spotCheck(s, a, x.p.storedB ?? b, x.last, rng),
        });
      });
    } catch (e) {
      for (const x of live) results.set(x.impl, failed(x.impl, e));
    }
  } finally {
    for (const x of prepared) x.p.dispose();
  }
  return impls.map((impl) => results.get(impl)!);
}

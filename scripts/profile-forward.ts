// Profiles the demo model's forward list and its LoRA training list (forward + backward) kernel by kernel.
// Build and run: node scripts/build-cli.mjs scripts/profile-forward.ts dist-cli/prof.mjs && node dist-cli/prof.mjs [batch] [seq]
import { Gpu, type CommandList } from '../src/gpu/gpu';
import { nodeDevice } from '../src/gpu/node-device';
import { loadModelDir } from '../src/engine/load-model';
import { nodeDir } from '../src/model/formats/node-source';
import { ModelWeights } from '../src/model/weights';
import { TransformerGraph } from '../src/model/transformer';
import { createLoraLayers } from '../src/adapters/lora/model';

const B = Number(process.argv[2] ?? 4);
const T = Number(process.argv[3] ?? 64);
const gpu = new Gpu(await nodeDevice());
console.log(`adapter: ${gpu.handle.adapter.description || gpu.handle.adapter.vendor} (software: ${gpu.handle.adapter.software})`);
const m = await loadModelDir(await nodeDir('public/demo/model'));
const w = await ModelWeights.upload(gpu, m.spec, m.source);
const R = B * T;
const batch = {
  tokens: Uint32Array.from({ length: R }, (_, i) => (i * 7 + 3) % m.spec.vocabSize),
  targets: Int32Array.from({ length: R }, (_, i) => (i * 5 + 1) % m.spec.vocabSize),
  positions: Uint32Array.from({ length: R }, (_, i) => i % T),
  supervised: R,
};

/**
 * Median wall and CPU time of whole-list runs (one submit each, waited for). On a CPU driver the process's
 * CPU time (all driver threads) is steadier than wall time when other work shares the machine.
 */
async function timeList(list: CommandList, runs = 5): Promise<{ wall: number; cpu: number }> {
  list.run();
  await gpu.sync(); // warm-up: pipelines compiled, buffers resident
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    list.run();
    await gpu.sync();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const median = (x: number[]) => x.sort((a, b) => a - b)[Math.floor(runs / 2)];
  return { wall: median(wall), cpu: median(cpu) };
}

async function report(name: string, list: CommandList): Promise<void> {
  const t = await timeList(list);
  console.log(`\n${name} at ${B}x${T}: ${t.wall.toFixed(0)} ms wall, ${t.cpu.toFixed(0)} ms CPU per run (median of 5), ${list.dispatchCount} dispatches`);
  const prof = await list.profile();
  const rows = [...prof].sort((a, b) => b[1].ms - a[1].ms);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(34)} ${v.ms.toFixed(1).padStart(8)} ms / ${String(v.count).padStart(3)}  = ${(v.ms / v.count).toFixed(2)} ms per call`);
}

const fwd = new TransformerGraph(gpu, w, { batch: B, seq: T, train: 'none' });
fwd.setBatch(batch);
await report('forward', fwd.forwardList);
fwd.forwardList.run();
const [lossSum] = await gpu.read(fwd.lossSum);
console.log(`  mean loss ${(lossSum / R).toFixed(4)}`);

const targets = m.spec.family === 'gpt2' ? ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const adapters = createLoraLayers(gpu, m.spec, { rank: 8, alpha: 16, targets, rslora: false, lrRatioB: 1 }, 1);
const train = new TransformerGraph(gpu, w, { batch: B, seq: T, train: 'adapters', adapters });
train.setBatch(batch);
await report('train (forward + backward, LoRA r8 on all linears)', train.backwardList!);
gpu.checkErrors('profile');
process.exit(0);

import { Gpu } from '../src/gpu/gpu';
import { nodeDevice } from '../src/gpu/node-device';
import { loadModelDir } from '../src/engine/load-model';
import { nodeDir } from '../src/model/formats/node-source';
import { ModelWeights } from '../src/model/weights';
import { TransformerGraph } from '../src/model/transformer';
const gpu = new Gpu(await nodeDevice());
const m = await loadModelDir(await nodeDir('public/demo/model'));
const w = await ModelWeights.upload(gpu, m.spec, m.source);
for (const [B, T] of [[1, 16]]) {
  let t = performance.now();
  const g = new TransformerGraph(gpu, w, { batch: B, seq: T, train: 'none' });
  console.log('build', B, T, (performance.now() - t).toFixed(0), 'ms; dispatches', g.forwardList.dispatchCount, 'pipelines', gpu.counters.pipelinesCompiled);
  g.setBatch({ tokens: new Uint32Array(B * T).fill(5), targets: new Int32Array(B * T).fill(6), positions: Uint32Array.from({ length: B * T }, (_, i) => i % T), supervised: B * T });
  for (let i = 0; i < 4; i++) {
    t = performance.now();
    g.forwardList.run();
    const [l] = await gpu.read(g.lossSum);
    console.log('forward', B, T, (performance.now() - t).toFixed(0), 'ms', l / (B * T));
  }
}

{
  const g = new TransformerGraph(gpu, w, { batch: 4, seq: 64, train: 'none' });
  g.setBatch({ tokens: new Uint32Array(256).fill(5), targets: new Int32Array(256).fill(6), positions: Uint32Array.from({ length: 256 }, (_, i) => i % 64), supervised: 256 });
  const prof = await g.forwardList.profile();
  console.log([...prof].sort((a, b) => b[1].ms - a[1].ms).map(([k, v]) => `${k}: ${v.ms.toFixed(0)} ms / ${v.count}`).join('\n'));
}
process.exit(0);

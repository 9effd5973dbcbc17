// Softmax cross-entropy over rows of logits [rows, vocab], one workgroup (of WG threads) per row.
//   losses[r]  = logsumexp(logits[r]) - logits[r][target[r]]            (0 for ignored rows)
//   dlogits[r] = (softmax(logits[r]) - onehot(target[r])) * gradScale[0] (0 for ignored rows)
// A row is ignored when its target is negative (-100 by convention) or not below vocab; the data layer
// validates token ids, so the second case only guards against reading outside the row.
// One pass keeps a running (max, sum of exp(x - max)) per thread, so large logits cannot overflow; the
// backward pass then writes every gradient. dlogits may overwrite logits in place (forward_backward_inplace).
// The threads' stats merge in a shared-memory tree, or where the device has subgroups (xent.ts picks) with
// subgroupMax and subgroupAdd per subgroup and one fixed-order pass over the subgroups' partials.
//
// Entry points bind different buffers; each declares its own names (WGSL allows shared binding numbers
// across entry points, not within one):
//   forward:                  logits, targets, losses, params @3
//   forward_backward:         logits, targets, losses, gradScale, dlogits, params @5
//   forward_backward_inplace: logitsInPlace, targets, losses, gradScale, params @4

// rowOffset: row r of logits is row rowOffset + r of targets and losses (the LM head runs in chunks of rows).
struct Params {
  rows: u32, vocab: u32, rowOffset: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(0) var<storage, read_write> logitsInPlace: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read_write> losses: array<f32>;
@group(0) @binding(3) var<storage, read> gradScale: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(3) var<uniform> pForward: Params;
@group(0) @binding(5) var<uniform> pForwardBackward: Params;
@group(0) @binding(4) var<uniform> pInPlace: Params;

// Threads per row: 256 on GPUs; small on software adapters, where every barrier is costly (xent.ts decides).
override WG: u32 = 256u;
const NEG_BIG = -3.0e38; // a finite "minus infinity": combining two empty threads gives 0, not NaN

var<workgroup> redMax: array<f32, WG>;
var<workgroup> redSum: array<f32, WG>;
var<workgroup> rowTarget: i32;
var<workgroup> targetLogit: f32;

struct Stats {
  max: f32,
  sum: f32, // sum of exp(x - max)
}

fn addLogit(st: Stats, x: f32) -> Stats {
  if (x > st.max) { return Stats(x, st.sum * exp(st.max - x) + 1.0); }
  return Stats(st.max, st.sum + exp(x - st.max));
}

fn merge(a: Stats, b: Stats) -> Stats {
  let m = max(a.max, b.max);
  return Stats(m, a.sum * exp(a.max - m) + b.sum * exp(b.max - m));
}

// The merge of every thread's stats in two forms, the shared-memory tree and then the subgroup one: the
// kernel source keeps one of them (see src/kernels/subgroups.ts). Entry points take an Invocation (declared by subgroups.ts for each form).
// subgroups:begin
// Combines every thread's stats into the row's; call from uniform control flow.
fn reduceStats(st: Stats, inv: Invocation) -> Stats {
  let lid = inv.lid;
  redMax[lid] = st.max;
  redSum[lid] = st.sum;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let m = merge(Stats(redMax[lid], redSum[lid]), Stats(redMax[lid + s], redSum[lid + s]));
      redMax[lid] = m.max;
      redSum[lid] = m.sum;
    }
    workgroupBarrier();
  }
  return Stats(redMax[0], redSum[0]);
}
// subgroups:alternative
// Each subgroup's stats go to slot subgroup_id (WG slots: enough for any subgroup size); every thread then
// merges the partials in subgroup order. Call from uniform control flow.
fn reduceStats(st: Stats, inv: Invocation) -> Stats {
  let m = subgroupMax(st.max);
  let s = subgroupAdd(st.sum * exp(st.max - m)); // empty threads add 0 * exp(NEG_BIG - m) = 0
  if (inv.sgLane == 0u) {
    redMax[inv.sg] = m;
    redSum[inv.sg] = s;
  }
  workgroupBarrier();
  var total = Stats(NEG_BIG, 0.0);
  for (var i = 0u; i < inv.numSg; i++) { total = merge(total, Stats(redMax[i], redSum[i])); }
  return total;
}
// subgroups:end

fn groupIndex(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wg.x + wg.y * nwg.x;
}

// The row's target, loaded so that every thread provably sees the same value (uniform control flow).
fn loadTarget(row: u32, lid: u32) -> i32 {
  if (lid == 0u) { rowTarget = targets[row]; }
  return workgroupUniformLoad(&rowTarget);
}

fn ignored(tgt: i32, vocab: u32) -> bool {
  return tgt < 0 || u32(tgt) >= vocab;
}

fn lossOf(st: Stats) -> f32 {
  return log(st.sum) + st.max - targetLogit;
}

// softmax - onehot, before the gradient scale.
fn gradOf(x: f32, j: u32, tgt: u32, st: Stats) -> f32 {
  let y = exp(x - st.max) / st.sum;
  return select(y, y - 1.0, j == tgt);
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           inv: Invocation) {
  let lid = inv.lid;
  let row = groupIndex(wg, nwg);
  let V = pForward.vocab;
  if (row >= pForward.rows) { return; }
  let at = row + pForward.rowOffset; // this row's target and loss
  let tgt = loadTarget(at, lid);
  if (ignored(tgt, V)) {
    if (lid == 0u) { losses[at] = 0.0; }
    return;
  }
  let base = row * V;
  if (lid == 0u) { targetLogit = logits[base + u32(tgt)]; }
  var st = Stats(NEG_BIG, 0.0);
  for (var j = lid; j < V; j += WG) { st = addLogit(st, logits[base + j]); }
  st = reduceStats(st, inv);
  if (lid == 0u) { losses[at] = lossOf(st); }
}

@compute @workgroup_size(WG)
fn forward_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    inv: Invocation) {
  let lid = inv.lid;
  let row = groupIndex(wg, nwg);
  let V = pForwardBackward.vocab;
  if (row >= pForwardBackward.rows) { return; }
  let base = row * V;
  let at = row + pForwardBackward.rowOffset; // this row's target and loss
  let tgt = loadTarget(at, lid);
  if (ignored(tgt, V)) {
    if (lid == 0u) { losses[at] = 0.0; }
    for (var j = lid; j < V; j += WG) { dlogits[base + j] = 0.0; }
    return;
  }
  if (lid == 0u) { targetLogit = logits[base + u32(tgt)]; }
  var st = Stats(NEG_BIG, 0.0);
  for (var j = lid; j < V; j += WG) { st = addLogit(st, logits[base + j]); }
  st = reduceStats(st, inv);
  if (lid == 0u) { losses[at] = lossOf(st); }
  let scale = gradScale[0];
  for (var j = lid; j < V; j += WG) {
    dlogits[base + j] = gradOf(logits[base + j], j, u32(tgt), st) * scale;
  }
}

// As forward_backward, with the gradient written over the logits. Thread 0 reads the target's logit
// before the reduction's barriers; after them each thread rewrites only the elements it reads itself.
@compute @workgroup_size(WG)
fn forward_backward_inplace(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            inv: Invocation) {
  let lid = inv.lid;
  let row = groupIndex(wg, nwg);
  let V = pInPlace.vocab;
  if (row >= pInPlace.rows) { return; }
  let base = row * V;
  let at = row + pInPlace.rowOffset; // this row's target and loss
  let tgt = loadTarget(at, lid);
  if (ignored(tgt, V)) {
    if (lid == 0u) { losses[at] = 0.0; }
    for (var j = lid; j < V; j += WG) { logitsInPlace[base + j] = 0.0; }
    return;
  }
  if (lid == 0u) { targetLogit = logitsInPlace[base + u32(tgt)]; }
  var st = Stats(NEG_BIG, 0.0);
  for (var j = lid; j < V; j += WG) { st = addLogit(st, logitsInPlace[base + j]); }
  st = reduceStats(st, inv);
  storageBarrier();
  if (lid == 0u) { losses[at] = lossOf(st); }
  let scale = gradScale[0];
  for (var j = lid; j < V; j += WG) {
    logitsInPlace[base + j] = gradOf(logitsInPlace[base + j], j, u32(tgt), st) * scale;
  }
}

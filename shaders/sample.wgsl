// Draws the next token from one logits row, as transformers' generate samples: repetition penalty over the tokens
// seen so far, temperature, top-k, top-p, min-p (in that order), then a draw with the uniform number u the host
// computed from (seed, step). Temperature 0 is greedy: the first index of the largest penalized logit.
//
// One workgroup, one dispatch, no sort. Logits are compared through an order-preserving u32 key, and each filter
// is a key threshold: the kept tokens are those with key >= threshold. A threshold is the largest key K whose
// measure(keys >= K) reaches a goal (top-k: count >= k; top-p: mass >= top_p x the top-k mass), found by
// bisection over the key range in passes over the row; each pass also finds the nearest element keys on both
// sides of the midpoint, so the range snaps to element keys and ends as soon as one group of equal logits is left
// (at most 32 passes, usually far fewer). Ties are kept together, as transformers' top-k keeps them.
//
// The draw: every thread sums the kept weights exp((logit - max) / temperature) of a contiguous chunk; thread 0
// walks the chunks' sums in order to the one where the running sum passes u x total, and that chunk's thread
// walks its tokens: the first index (in vocabulary order) where the running sum exceeds u x total. It writes the
// token and sets its bit in `seen` (so the next step penalizes it): the host reads back 4 bytes.
// A row with a NaN draws no token (NONE); -inf logits weigh 0.

struct Params {
  vocab: u32,
  topK: u32,        // 0: off
  temperature: f32, // 0: greedy
  topP: f32,        // 1: off
  minP: f32,        // 0: off
  penalty: f32,     // 1: off
  u: f32,           // in [0, 1)
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> seen: array<u32>; // bit i: token i is in the prompt or generated
@group(0) @binding(2) var<storage, read_write> out: array<u32>;  // [1]: the token
@group(0) @binding(3) var<uniform> p: Params;

// Threads: 256 on GPUs; a few on software adapters, where every barrier is a coroutine switch per thread.
override WG: u32 = 256u;
const NONE = 0xffffffffu;
const KEY_PLUS_INF = 0xff800000u;  // orderKey(+inf)
const KEY_MINUS_INF = 0x007fffffu; // orderKey(-inf)
// exp of anything lower underflows in f32; such tokens weigh 0 everywhere (the reference too).
const MIN_EXPONENT = -103.0;

// One reduction slot: a sum (mass), a count, and a min and a max key (or an argmax's value and index).
struct Partial {
  mass: f32,
  count: u32,
  lo: u32,
  hi: u32,
}

var<workgroup> red: array<Partial, WG>;
var<workgroup> chunkMass: array<f32, WG>;
var<workgroup> pick: vec2<f32>; // x: the chosen chunk's thread, y: the mass to pass inside it

fn penalized(i: u32) -> f32 {
  let x = logits[i];
  if (p.penalty != 1.0 && (seen[i >> 5u] & (1u << (i & 31u))) != 0u) {
    return select(x * p.penalty, x / p.penalty, x > 0.0);
  }
  return x;
}

// Monotone in the value: a < b <=> key(a) < key(b); -0 and +0 share a key (they are equal logits).
fn orderKey(v: f32) -> u32 {
  let b = select(bitcast<u32>(v), 0u, v == 0.0);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn weight(v: f32, maxValue: f32) -> f32 {
  let e = (v - maxValue) / p.temperature;
  return select(exp(e), 0.0, e < MIN_EXPONENT);
}

// Combines two partials: sums add, lo takes the min, hi the max. Call from uniform control flow.
fn combine(a: Partial, b: Partial) -> Partial {
  return Partial(a.mass + b.mass, a.count + b.count, min(a.lo, b.lo), max(a.hi, b.hi));
}

fn reduce(mine: Partial, lid: u32) -> Partial {
  workgroupBarrier(); // the previous reduction's result (slot 0) has been read by every thread
  red[lid] = mine;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) { red[lid] = combine(red[lid], red[lid + s]); }
  }
  return workgroupUniformLoad(&red[0]);
}

// The first index of the largest value (mass: the value, count: the index). Call from uniform control flow.
fn reduceArgmax(mine: Partial, lid: u32) -> Partial {
  workgroupBarrier();
  red[lid] = mine;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) {
      let a = red[lid];
      let b = red[lid + s];
      if (b.count != NONE && (a.count == NONE || b.mass > a.mass || (b.mass == a.mass && b.count < a.count))) {
        red[lid] = Partial(b.mass, b.count, min(a.lo, b.lo), max(a.hi, b.hi));
      } else {
        red[lid] = Partial(a.mass, a.count, min(a.lo, b.lo), max(a.hi, b.hi));
      }
    }
  }
  return workgroupUniformLoad(&red[0]);
}

// Over keys >= `floor`, with mid splitting [lo, hi): count and mass at keys >= mid, the smallest key >= mid and
// the largest key in [floor, mid).
fn measure(floor: u32, mid: u32, maxValue: f32, withMass: bool, lid: u32) -> Partial {
  var part = Partial(0.0, 0u, NONE, 0u);
  for (var i = lid; i < p.vocab; i += WG) {
    let v = penalized(i);
    let k = orderKey(v);
    if (k >= mid) {
      part.count += 1u;
      if (withMass) { part.mass += weight(v, maxValue); }
      part.lo = min(part.lo, k);
    } else if (k >= floor) {
      part.hi = max(part.hi, k);
    }
  }
  return reduce(part, lid);
}

// The largest key K in [lo, hi) with measure(keys >= K) >= goal (count, or mass withMass). lo must qualify
// and hi must not; both move to element keys, so the loop ends once no element lies strictly between them.
// Each pass at least halves hi - lo: 33 passes cover the key range; the cap is a guard (a GPU must never loop
// unbounded).
fn threshold(lo0: u32, hi0: u32, goal: f32, maxValue: f32, withMass: bool, lid: u32) -> u32 {
  var lo = lo0;
  var hi = hi0;
  for (var iteration = 0u; iteration < 40u; iteration++) {
    if (hi <= lo + 1u) { break; }
    let mid = lo + (hi - lo) / 2u;
    let r = measure(lo, mid, maxValue, withMass, lid);
    let reached = select(f32(r.count) >= goal, r.mass >= goal, withMass);
    if (reached) {
      lo = r.lo; // the smallest element key >= mid: the same measure
    } else {
      hi = r.hi + 1u; // past the largest element key below mid (lo itself is one)
    }
  }
  return lo;
}

@compute @workgroup_size(WG)
fn sample(@builtin(local_invocation_index) lid: u32) {
  let V = p.vocab;
  // Pass 1: the argmax of the penalized logits, and the smallest and largest keys.
  var first = Partial(0.0, NONE, NONE, 0u);
  for (var i = lid; i < V; i += WG) {
    let v = penalized(i);
    if (first.count == NONE || v > first.mass) {
      first.mass = v;
      first.count = i;
    }
    let k = orderKey(v);
    first.lo = min(first.lo, k);
    first.hi = max(first.hi, k);
  }
  let top = reduceArgmax(first, lid);
  // A NaN's key lies beyond an infinity's: such a row has no distribution to draw from, and NONE tells the host
  // (comparisons with NaN are not to be trusted on every GPU compiler; integer keys are).
  if (top.hi > KEY_PLUS_INF || top.lo < KEY_MINUS_INF) {
    if (lid == 0u) { out[0] = NONE; }
    return;
  }
  if (p.temperature == 0.0) {
    if (lid == 0u) { finish(top.count); }
    return;
  }
  let maxValue = top.mass;
  let maxKey = top.hi;

  // top-k: the k-th largest logit's key (count(keys >= K) >= k). Every token qualifies at the smallest key.
  var cut = top.lo;
  if (p.topK > 0u && p.topK < V) {
    cut = threshold(top.lo, maxKey + 1u, f32(p.topK), maxValue, false, lid);
  }
  // top-p: over the top-k survivors, the largest key whose tokens and those above hold top_p of their mass.
  if (p.topP < 1.0) {
    let kept = measure(cut, cut, maxValue, true, lid);
    cut = threshold(cut, maxKey + 1u, p.topP * kept.mass, maxValue, true, lid);
  }

  // The draw. Thread lid owns tokens [start, end); min-p drops weights below min_p (the top token weighs 1).
  let chunk = (V + WG - 1u) / WG;
  let start = min(lid * chunk, V);
  let end = min(start + chunk, V);
  var mass = 0.0;
  for (var i = start; i < end; i++) {
    let v = penalized(i);
    let w = weight(v, maxValue);
    if (orderKey(v) >= cut && w >= p.minP) { mass += w; }
  }
  chunkMass[lid] = mass;
  workgroupBarrier();
  if (lid == 0u) {
    // Sequential sums of non-negative terms never decrease: exactly one chunk is the first to pass the goal.
    var total = 0.0;
    for (var t = 0u; t < WG; t++) { total += chunkMass[t]; }
    let goal = p.u * total;
    var before = 0.0;
    var chosen = NONE;
    var lastNonEmpty = 0u;
    for (var t = 0u; t < WG; t++) {
      if (chunkMass[t] > 0.0) { lastNonEmpty = t; }
      if (chosen == NONE && before + chunkMass[t] > goal) {
        chosen = t;
        break;
      }
      before += chunkMass[t];
    }
    if (chosen == NONE) {
      // Rounding left u x total at or past the sum: the last chunk with mass.
      chosen = lastNonEmpty;
      before = total - chunkMass[chosen];
    }
    pick = vec2<f32>(f32(chosen), goal - before);
  }
  let picked = workgroupUniformLoad(&pick);
  if (lid == u32(picked.x)) {
    // The same additions as the chunk's sum above, compared with the mass left to pass inside it.
    var acc = 0.0;
    var token = NONE;
    var lastKept = NONE;
    for (var i = start; i < end; i++) {
      let v = penalized(i);
      let w = weight(v, maxValue);
      if (orderKey(v) >= cut && w >= p.minP && w > 0.0) {
        acc += w;
        lastKept = i;
        if (acc > picked.y) {
          token = i;
          break;
        }
      }
    }
    finish(select(token, lastKept, token == NONE));
  }
}

// Writes the token and marks it seen. Called by one thread, after every read of `seen`.
fn finish(token: u32) {
  out[0] = token;
  seen[token >> 5u] |= 1u << (token & 31u);
}

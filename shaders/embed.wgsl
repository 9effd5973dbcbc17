// Token (and GPT-2 learned position) embeddings: gather forward, deterministic scatter-add backward.
//   forward:  out[r, c] = table[tok[r], c] (+ posTable[pos[r], c]); an id outside its table reads as 0.
//             A table may hold a range of the vocabulary (a shard: rows rowStart .. rowStart + vocab); with
//             accumulate, out[r, c] += table[tok[r] - rowStart, c] for the ids in that range and the other rows
//             are left alone (the shards after the first).
//   backward: dtable[v, c] (+)= sum over rows r with ids[r] == v of dout[r, c].
// The backward runs one thread per column, walking the rows in order: no two threads touch the same
// element and every sum has a fixed order, so results are deterministic without float atomics.

struct Params {
  rows: u32, width: u32, vocab: u32, maxPos: u32,
  accumulate: u32, rowStart: u32, _p1: u32, _p2: u32,
}

const WG = 64u;

fn linearIndex(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wg.x + wg.y * nwg.x) * WG + lid;
}

// True when token id `tok` is one of the table's rows [rowStart, rowStart + vocab) (u32: tok - rowStart wraps below).
fn inTable(tok: u32, rowStart: u32, vocab: u32) -> bool {
  return tok >= rowStart && tok - rowStart < vocab;
}

// The token table of both forward entry points (binding 1): a frozen table may be packed f16/bf16, and
// kernels/weight-storage.ts then swaps this block for readers of packed words.
// weight-storage:begin Table 1
@group(0) @binding(1) var<storage, read> Table: array<f32>;
fn readTable(i: u32) -> f32 { return Table[i]; }
// weight-storage:end

// ------------------------------------------------------------------ forward, tokens only
@group(0) @binding(0) var<storage, read> f_tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> f_out: array<f32>;
@group(0) @binding(3) var<uniform> f_p: Params;

@compute @workgroup_size(WG)
fn embed_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let i = linearIndex(wg, nwg, lid);
  if (i >= f_p.rows * f_p.width) { return; }
  let r = i / f_p.width;
  let c = i % f_p.width;
  let tok = f_tokens[r];
  let hit = inTable(tok, f_p.rowStart, f_p.vocab);
  var v = 0.0;
  if (hit) { v = readTable((tok - f_p.rowStart) * f_p.width + c); }
  if (f_p.accumulate == 0u) { f_out[i] = v; } else if (hit) { f_out[i] += v; }
}

// ------------------------------------------------------------------ forward, tokens + positions
@group(0) @binding(0) var<storage, read> fp_tokens: array<u32>;
@group(0) @binding(2) var<storage, read> fp_positions: array<u32>;
@group(0) @binding(3) var<storage, read> fp_posTable: array<f32>;
@group(0) @binding(4) var<storage, read_write> fp_out: array<f32>;
@group(0) @binding(5) var<uniform> fp_p: Params;

@compute @workgroup_size(WG)
fn embed_pos_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let i = linearIndex(wg, nwg, lid);
  if (i >= fp_p.rows * fp_p.width) { return; }
  let r = i / fp_p.width;
  let c = i % fp_p.width;
  let tok = fp_tokens[r];
  let pos = fp_positions[r];
  var v = 0.0;
  if (inTable(tok, fp_p.rowStart, fp_p.vocab)) { v = readTable((tok - fp_p.rowStart) * fp_p.width + c); }
  if (pos < fp_p.maxPos) { v += fp_posTable[pos * fp_p.width + c]; }
  fp_out[i] = v;
}

// ------------------------------------------------------------------ backward (tokens or positions)
@group(0) @binding(0) var<storage, read> b_ids: array<u32>;
@group(0) @binding(1) var<storage, read> b_dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> b_dtable: array<f32>;
@group(0) @binding(3) var<uniform> b_p: Params;

// Zeroes the first vocab rows of dtable (the overwrite mode's first step).
@compute @workgroup_size(WG)
fn embed_backward_zero(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
  let i = linearIndex(wg, nwg, lid);
  if (i < b_p.vocab * b_p.width) { b_dtable[i] = 0.0; }
}

@compute @workgroup_size(WG)
fn embed_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let c = linearIndex(wg, nwg, lid);
  if (c >= b_p.width) { return; }
  for (var r = 0u; r < b_p.rows; r++) {
    let id = b_ids[r];
    if (id < b_p.vocab) {
      let k = id * b_p.width + c;
      b_dtable[k] += b_dout[r * b_p.width + c];
    }
  }
}

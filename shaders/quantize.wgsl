// Quantization of frozen weights at load (src/quant/store.ts), into a layout of src/quant/layout.ts. The host
// computes the per-block (or per-row) statistics from the f32 values, exactly as bitsandbytes does; these kernels
// do the per-element work over a chunk of the tensor and write the codes section of the layout.
//   codes4: NF4 code of x * recip[block] = how many codebook midpoints lie strictly below it (a tie goes to
//           the lower code); element 2k is the high nibble of byte k; a padding nibble after an odd count is 7
//           (the code of 0.0); one thread per output word (8 elements).
//   codes8: round-half-even(x * factor[row]) as i8, 4 per word; one thread per output word.

struct Params {
  n: u32, outWord: u32, group: u32, _p0: u32,
}

const WG = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> factor: array<f32>;
@group(0) @binding(2) var<storage, read> mids: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;

fn code4(e: u32) -> u32 {
  if (e >= p.n) { return select(0u, 7u, e == p.n && (e & 1u) == 1u); }
  let v = x[e] * factor[e / p.group];
  var c = 0u;
  for (var k = 0u; k < 15u; k++) { c += select(0u, 1u, mids[k] < v); }
  return c;
}

@compute @workgroup_size(WG)
fn codes4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let w = (wg.x + wg.y * nwg.x) * WG + lid;
  if (w >= (p.n + 7u) / 8u) { return; }
  var word = 0u;
  for (var b = 0u; b < 4u; b++) {
    let e = 8u * w + 2u * b;
    word |= ((code4(e) << 4u) | code4(e + 1u)) << (8u * b);
  }
  out[p.outWord + w] = word;
}

@group(0) @binding(0) var<storage, read> x8: array<f32>;
@group(0) @binding(1) var<storage, read> factor8: array<f32>;
@group(0) @binding(2) var<storage, read_write> out8: array<u32>;
@group(0) @binding(3) var<uniform> p8: Params;

@compute @workgroup_size(WG)
fn codes8(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let w = (wg.x + wg.y * nwg.x) * WG + lid;
  if (w >= (p8.n + 3u) / 4u) { return; }
  var word = 0u;
  for (var b = 0u; b < 4u; b++) {
    let e = 4u * w + b;
    if (e < p8.n) {
      let c = clamp(i32(round(x8[e] * factor8[e / p8.group])), -127, 127);
      word |= (bitcast<u32>(c) & 0xffu) << (8u * b);
    }
  }
  out8[p8.outWord + w] = word;
}

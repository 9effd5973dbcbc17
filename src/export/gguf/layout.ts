/**
 * The weight layout changes convert_hf_to_gguf.py makes: llama's Q/K row permutation (LlamaModel.permute) and the
 * transpose of GPT-2's Conv1D weights.
 */

/**
 * llama.cpp's llama architecture rotates adjacent pairs (x[2i], x[2i+1]), Hugging Face's Llama rotates halves
 * (x[i], x[i + d/2]); the converter undoes HF's permutation of q_proj/k_proj rows, head by head:
 * row i*2 + s of a head takes row s*(d/2) + i, for s in {0, 1} (weights [heads*d, cols] and biases [heads*d]).
 */
export function permuteRopeRows(data: Float32Array, rows: number, heads: number, name: string): Float32Array {
  if (rows % (heads * 2) !== 0) {
    throw new Error(`GGUF export: ${name} has ${rows} rows, not a multiple of 2 x ${heads} heads`);
  }
  const cols = data.length / rows;
  const perHead = rows / heads;
  const half = perHead / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let s = 0; s < 2; s++) {
        const from = (h * perHead + s * half + i) * cols;
        const to = (h * perHead + i * 2 + s) * cols;
        out.set(data.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

/** [rows, cols] -> [cols, rows]: GPT-2's Conv1D stores weights as [in, out], llama.cpp wants [out, in] rows. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  }
  return out;
}

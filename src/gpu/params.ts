/** Packs a kernel's uniform parameters: a flat WGSL struct of 4-byte scalars, padded to 16 bytes. */
export type ParamValue = { u32: number } | { i32: number } | { f32: number };

export function packParams(values: ParamValue[]): ArrayBuffer {
  const bytes = Math.max(16, Math.ceil((values.length * 4) / 16) * 16);
  const buf = new ArrayBuffer(bytes);
  const view = new DataView(buf);
  values.forEach((v, i) => {
    if ('u32' in v) view.setUint32(i * 4, v.u32 >>> 0, true);
    else if ('i32' in v) view.setInt32(i * 4, v.i32 | 0, true);
    else view.setFloat32(i * 4, v.f32, true);
  });
  return buf;
}

export const u32 = (x: number): ParamValue => {
  if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new Error(`u32 parameter out of range: ${x}`);
  return { u32: x };
};
export const i32 = (x: number): ParamValue => ({ i32: x });
export const f32 = (x: number): ParamValue => ({ f32: x });

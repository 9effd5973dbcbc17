/**
 * Whether this device's shader compiler accepts the subgroup WGSL our reductions use. An adapter may list the
 * `subgroups` feature while its compiler cannot build it (wgpu's naga does not parse `enable subgroups;` yet), and
 * a kernel that fails to compile mid-run loses the whole step; so a tiny shader with every subgroup built-in and
 * function the kernels use is compiled once at device setup, and subgroups are turned off when it fails.
 */

/** The subgroup surface of shaders/{argmax,norm,reduce,xent}.wgsl in one entry point. */
export const SUBGROUP_PROBE_WGSL = `enable subgroups;
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_id) sg: u32,
  @builtin(num_subgroups) numSg: u32,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let x = f32(lane + sg * numSg);
  out[lid] = subgroupAdd(x) + subgroupMax(x) + subgroupMin(x);
}
`;

/** Null when `code` compiles into a compute pipeline on `device`; otherwise the compiler's or validator's words. */
export async function subgroupCompileError(device: GPUDevice, code = SUBGROUP_PROBE_WGSL): Promise<string | null> {
  device.pushErrorScope('internal');
  device.pushErrorScope('validation');
  const problems: string[] = [];
  try {
    const module = device.createShaderModule({ code, label: 'subgroup probe' });
    // Not every implementation has getCompilationInfo; the pipeline below fails as well where it would.
    const info = await module.getCompilationInfo?.();
    for (const m of info?.messages ?? []) if (m.type === 'error') problems.push(m.message);
    if (problems.length === 0) {
      await device.createComputePipelineAsync({ label: 'subgroup probe', layout: 'auto', compute: { module } });
    }
  } catch (e) {
    problems.push((e as Error).message ?? String(e));
  }
  const validation = await device.popErrorScope();
  const internal = await device.popErrorScope();
  for (const error of [validation, internal]) if (error) problems.push(error.message);
  // wgpu reports a parse error both as compilation info and as a validation error: say it once.
  return problems.length === 0 ? null : [...new Set(problems.map((p) => p.trim()))].join('; ');
}

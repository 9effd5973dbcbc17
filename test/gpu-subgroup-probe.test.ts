/**
 * Subgroups are used only where the device's compiler builds them: the probe compiles on a device with the feature
 * and reports the compiler's words where it cannot (here: the feature left off, as naga rejects `enable subgroups;`).
 */
import { describe, expect, it } from 'vitest';
import { subgroupCompileError } from '../src/gpu/subgroup-probe';
import { testGpu, testGpuWithoutFeatures } from './helpers/gpu';

describe('subgroup probe', () => {
  it('compiles the subgroup built-ins and functions the reductions use on a device with subgroups', async () => {
    const gpu = await testGpu();
    expect(gpu.handle.features.subgroups).toBe(true);
    expect(await subgroupCompileError(gpu.device)).toBeNull();
  });

  it('reports why, without an uncaptured error, where the compiler rejects the shader', async () => {
    const gpu = await testGpuWithoutFeatures();
    expect(await subgroupCompileError(gpu.device)).toMatch(/subgroups/);
    const withFeature = await testGpu();
    const broken = 'enable subgroups;\n@compute @workgroup_size(1) fn main() { let x = subgroupNoSuchThing(1u); }';
    expect(await subgroupCompileError(withFeature.device, broken)).toMatch(/subgroupNoSuchThing/);
    withFeature.checkErrors('the probe'); // nothing escaped its error scopes
    gpu.checkErrors('the probe');
  });
});

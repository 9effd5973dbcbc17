/** Acquire a GPUDevice with the adapter's own limits and the optional features we use. */

export interface GpuFeatures {
  f16: boolean;
  /**
   * Subgroup operations usable by our reductions: the `subgroups` feature plus WGSL's `subgroup_id`
   * built-in (the reductions index their per-subgroup partials by it, whatever the subgroup size).
   */
  subgroups: boolean;
  timestamps: boolean;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  description: string;
  /** True for CPU implementations (SwiftShader, lavapipe): absolute speed is meaningless there. */
  software: boolean;
}

export interface DeviceHandle {
  device: GPUDevice;
  features: GpuFeatures;
  adapter: AdapterDescription;
}

/** Limits we raise to the adapter's maximum: big models need big bindings. */
const RAISED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
] as const;

export async function requestDevice(
  gpu: GPU,
  opts: { disableF16?: boolean; disableSubgroups?: boolean } = {},
): Promise<DeviceHandle | null> {
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return null;
  const requiredFeatures: GPUFeatureName[] = [];
  const want = (name: string) => adapter.features.has(name) && requiredFeatures.push(name as GPUFeatureName);
  const f16 = !opts.disableF16 && adapter.features.has('shader-f16');
  if (f16) want('shader-f16');
  // Without subgroup_id a subgroup's place in its workgroup is unknown, so the feature would be unusable.
  if (!opts.disableSubgroups && gpu.wgslLanguageFeatures?.has('subgroup_id')) want('subgroups');
  want('timestamp-query');
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const architecture = info.architecture ?? '';
  const description = info.description ?? '';
  return {
    device,
    features: {
      f16: device.features.has('shader-f16'),
      subgroups: device.features.has('subgroups'),
      timestamps: device.features.has('timestamp-query'),
    },
    adapter: {
      vendor: info.vendor ?? '',
      architecture,
      description,
      software: /swiftshader|llvmpipe|lavapipe/i.test(`${architecture} ${description} ${info.vendor ?? ''}`),
    },
  };
}

/** Acquire a GPUDevice with the adapter's own limits and the optional features we use. */
import { subgroupCompileError } from './subgroup-probe';

export interface GpuFeatures {
  f16: boolean;
  /**
   * Subgroup operations usable by our reductions: the `subgroups` feature plus WGSL's `subgroup_id`
   * built-in (the reductions index their per-subgroup partials by it, whatever the subgroup size), and a
   * compiler that builds them (see subgroup-probe.ts).
   */
  subgroups: boolean;
  timestamps: boolean;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  description: string;
  /**
   * True for CPU implementations (SwiftShader, lavapipe): absolute speed is meaningless there. Known by name, or by
   * the adapter's isFallbackAdapter where the name is hidden (Firefox leaves every name blank).
   */
  software: boolean;
  /** The WebGPU implementation where the Node entry chose it ('dawn', 'wgpu (Deno 2.9.6)'); '' in a browser. */
  implementation: string;
  /**
   * Everything that tells this adapter from another, for caches of per-adapter measurements (the matmul autotune):
   * names alone can be blank (Firefox), so ids, the fallback flag, the limits and features that decide which kernels
   * run, and the WebGPU implementation are in it too.
   */
  identity: string;
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

export interface DeviceOptions {
  disableF16?: boolean;
  disableSubgroups?: boolean;
  /** The WebGPU implementation, where the caller knows it ('dawn', 'wgpu'): part of the adapter's identity. */
  implementation?: string;
}

export async function requestDevice(gpu: GPU, opts: DeviceOptions = {}): Promise<DeviceHandle | null> {
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
  const features: GpuFeatures = {
    f16: device.features.has('shader-f16'),
    subgroups: device.features.has('subgroups') && (await subgroupCompileError(device)) === null,
    timestamps: device.features.has('timestamp-query'),
  };
  return { device, features, adapter: describeAdapter(adapter, device, features, opts.implementation) };
}

/** What AdapterDescription is made of; GPUAdapterInfo's optional fields are absent in some implementations. */
export interface AdapterReport {
  info: Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean; device?: string };
  /** The pre-2025 place of the fallback flag (older Firefox and Chrome). */
  adapterIsFallback?: boolean;
  limits: Pick<
    GPUSupportedLimits,
    'maxComputeWorkgroupStorageSize' | 'maxComputeInvocationsPerWorkgroup' | 'maxStorageBufferBindingSize'
  >;
  features: GpuFeatures;
  implementation?: string;
}

const SOFTWARE_NAMES = /swiftshader|llvmpipe|lavapipe/i;

export function adapterDescription(f: AdapterReport): AdapterDescription {
  const i = f.info;
  const vendor = i.vendor ?? '';
  const architecture = i.architecture ?? '';
  const description = i.description ?? '';
  const fallback = i.isFallbackAdapter ?? f.adapterIsFallback ?? false;
  const identity = [
    vendor,
    architecture,
    i.device ?? '',
    description,
    fallback ? 'fallback' : 'hardware',
    `subgroup ${i.subgroupMinSize ?? '?'}-${i.subgroupMaxSize ?? '?'}`,
    `wg ${f.limits.maxComputeWorkgroupStorageSize}B/${f.limits.maxComputeInvocationsPerWorkgroup}`,
    `binding ${f.limits.maxStorageBufferBindingSize}`,
    [f.features.f16 && 'f16', f.features.subgroups && 'subgroups'].filter(Boolean).join('+') || 'no-features',
    f.implementation ?? '',
  ].join('|');
  return {
    vendor,
    architecture,
    description,
    software: fallback || SOFTWARE_NAMES.test(`${architecture} ${description} ${vendor}`),
    implementation: f.implementation ?? '',
    identity,
  };
}

function describeAdapter(
  adapter: GPUAdapter,
  device: GPUDevice,
  features: GpuFeatures,
  implementation?: string,
): AdapterDescription {
  return adapterDescription({
    info: adapter.info ?? {},
    adapterIsFallback: (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    limits: device.limits,
    features,
    implementation,
  });
}

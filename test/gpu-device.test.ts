/** Which WebGPU the Node entry takes, and how an adapter is described and told apart (no GPU needed). */
import { describe, expect, it } from 'vitest';
import { adapterDescription, type AdapterReport, type GpuFeatures } from '../src/gpu/device';
import { chooseWebgpuRuntime } from '../src/gpu/webgpu-runtime';

describe('chooseWebgpuRuntime (LORA_STUDIO_WEBGPU)', () => {
  it("takes the runtime's own navigator.gpu where there is one (Deno), Dawn elsewhere (Node)", () => {
    expect(chooseWebgpuRuntime(undefined, true)).toBe('builtin');
    expect(chooseWebgpuRuntime('', false)).toBe('dawn');
    expect(chooseWebgpuRuntime('auto', true)).toBe('builtin');
  });

  it('dawn forces Dawn even under Deno; builtin insists on navigator.gpu', () => {
    expect(chooseWebgpuRuntime('dawn', true)).toBe('dawn');
    expect(chooseWebgpuRuntime(' Dawn ', true)).toBe('dawn');
    expect(chooseWebgpuRuntime('builtin', true)).toBe('builtin');
    expect(() => chooseWebgpuRuntime('builtin', false)).toThrow(/no navigator\.gpu/);
    expect(() => chooseWebgpuRuntime('wgpu', true)).toThrow(/LORA_STUDIO_WEBGPU=wgpu: expected auto, dawn or builtin/);
  });
});

const FEATURES: GpuFeatures = { f16: true, subgroups: false, timestamps: true };
const LIMITS = {
  maxComputeWorkgroupStorageSize: 32768,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxStorageBufferBindingSize: 2 ** 31,
};
const report = (info: AdapterReport['info'], over: Partial<AdapterReport> = {}): AdapterReport => ({
  info,
  limits: LIMITS,
  features: FEATURES,
  implementation: 'wgpu',
  ...over,
});

describe('adapterDescription', () => {
  it('knows software renderers by name (Dawn, Chrome) or by isFallbackAdapter where names are blank (Firefox)', () => {
    expect(adapterDescription(report({ vendor: 'google', architecture: 'swiftshader' })).software).toBe(true);
    expect(adapterDescription(report({ description: 'llvmpipe (LLVM 15.0.6, 256 bits)' })).software).toBe(true);
    expect(adapterDescription(report({ vendor: '', architecture: '', isFallbackAdapter: true })).software).toBe(true);
    // Before isFallbackAdapter moved to GPUAdapterInfo it sat on the adapter.
    expect(adapterDescription(report({}, { adapterIsFallback: true })).software).toBe(true);
    expect(adapterDescription(report({ vendor: 'nvidia', isFallbackAdapter: false })).software).toBe(false);
    expect(adapterDescription(report({})).software).toBe(false);
  });

  it('tells adapters with blank names apart by the fallback flag, limits, features and implementation', () => {
    const blank = { vendor: '', architecture: '', description: '', isFallbackAdapter: false };
    const base = adapterDescription(report(blank)).identity;
    const others = [
      report({ ...blank, isFallbackAdapter: true }),
      report({ ...blank, device: '0x2684' }),
      report({ ...blank, subgroupMinSize: 32, subgroupMaxSize: 32 }),
      report(blank, { limits: { ...LIMITS, maxComputeWorkgroupStorageSize: 16384 } }),
      report(blank, { limits: { ...LIMITS, maxStorageBufferBindingSize: 2 ** 27 } }),
      report(blank, { features: { ...FEATURES, subgroups: true } }),
      report(blank, { implementation: 'dawn' }),
    ].map((r) => adapterDescription(r).identity);
    expect(new Set([base, ...others]).size).toBe(others.length + 1);
    expect(adapterDescription(report(blank)).identity).toBe(base); // stable: a cache finds it again
  });

  it('keeps the names in the identity, and says which implementation it came from', () => {
    const d = adapterDescription(report({ vendor: 'google', description: 'SwiftShader driver 5.0.0' }));
    expect(d.identity).toContain('SwiftShader driver 5.0.0');
    expect(d.implementation).toBe('wgpu');
    expect(adapterDescription(report({}, { implementation: undefined })).implementation).toBe('');
  });
});

/** Why Dawn found no adapter: the message names what is missing and the package that provides it (no GPU needed). */
import { describe, expect, it } from 'vitest';
import { findVulkanLoader, noAdapterMessage, vulkanLoaderDirs, type AdapterFacts } from '../../src/gpu/node-device';

const dirs = vulkanLoaderDirs({}, 'x64');
const facts = (over: Partial<AdapterFacts>): AdapterFacts => ({
  platform: 'linux',
  vulkanLoader: '/usr/lib/x86_64-linux-gnu/libvulkan.so.1',
  searched: dirs,
  gpuDeviceNode: false,
  icd: null,
  ...over,
});

describe('Vulkan loader detection', () => {
  it('searches LD_LIBRARY_PATH first, then the multiarch and usual system folders', () => {
    expect(vulkanLoaderDirs({ LD_LIBRARY_PATH: '/opt/vk/lib::/x' }, 'x64').slice(0, 4)).toEqual([
      '/opt/vk/lib',
      '/x',
      '/usr/lib/x86_64-linux-gnu',
      '/lib/x86_64-linux-gnu',
    ]);
    expect(vulkanLoaderDirs({}, 'arm64')).toContain('/usr/lib/aarch64-linux-gnu');
    expect(dirs).toEqual(expect.arrayContaining(['/usr/lib64', '/lib64', '/usr/lib', '/lib']));
  });

  it('finds libvulkan.so.1 in the first folder that holds it, or null', () => {
    const present = new Set(['/usr/lib64/libvulkan.so.1', '/usr/lib/libvulkan.so.1']);
    expect(findVulkanLoader(dirs, (p) => present.has(p))).toBe('/usr/lib64/libvulkan.so.1');
    expect(findVulkanLoader(['/opt/vk', ...dirs], (p) => p === '/opt/vk/libvulkan.so.1')).toBe(
      '/opt/vk/libvulkan.so.1',
    );
    expect(findVulkanLoader(dirs, () => false)).toBeNull();
  });
});

describe('noAdapterMessage', () => {
  it('says the Vulkan loader is missing and how to install it, plus chromium on a machine without a GPU', () => {
    const m = noAdapterMessage(facts({ vulkanLoader: null }));
    expect(m).toContain('libvulkan.so.1 (the Vulkan loader) is not installed: `apt-get install libvulkan1`');
    expect(m).toContain('`apt-get install chromium`');
    expect(m).toContain('/usr/lib/x86_64-linux-gnu');
    expect(m).not.toMatch(/even on SwiftShader/);
  });

  it('asks only for the loader where a GPU or the SwiftShader driver is there', () => {
    for (const f of [
      facts({ vulkanLoader: null, gpuDeviceNode: true }),
      facts({ vulkanLoader: null, icd: '/usr/lib/chromium/vk_swiftshader_icd.json' }),
    ]) {
      const m = noAdapterMessage(f);
      expect(m).toContain('`apt-get install libvulkan1`');
      expect(m).not.toContain('chromium`');
    }
  });

  it('with the loader installed: no SwiftShader driver, or SwiftShader failed too', () => {
    expect(noAdapterMessage(facts({}))).toMatch(
      /no SwiftShader Vulkan driver to fall back to.*apt-get install chromium/,
    );
    expect(noAdapterMessage(facts({ icd: '/usr/lib/chromium/vk_swiftshader_icd.json' }))).toMatch(
      /even on SwiftShader \(VK_ICD_FILENAMES=\/usr\/lib\/chromium\/vk_swiftshader_icd\.json\)/,
    );
  });

  it('does not blame the Vulkan loader off Linux', () => {
    expect(noAdapterMessage(facts({ platform: 'darwin', vulkanLoader: null }))).not.toContain('libvulkan');
  });
});

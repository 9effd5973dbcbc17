/**
 * Node only: a GPUDevice through Dawn (the `webgpu` package).
 * Real drivers first; on machines without a GPU fall back to the SwiftShader Vulkan driver that ships
 * inside Debian's chromium package (see docs/ARCHITECTURE.md).
 */
import { existsSync } from 'node:fs';
import { requestDevice, type DeviceHandle } from './device';

const SWIFTSHADER_ICDS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/x86_64-linux-gnu/chromium/vk_swiftshader_icd.json',
  '/opt/google/chrome/vk_swiftshader_icd.json',
];

let cached: Promise<DeviceHandle> | null = null;
const liveInstances: unknown[] = [];

export function nodeDevice(): Promise<DeviceHandle> {
  cached ??= acquire();
  return cached;
}

async function acquire(): Promise<DeviceHandle> {
  const webgpu = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  const tryCreate = async () => {
    const instance = webgpu.create([]);
    // Dawn keeps processing events for every instance: one that is garbage-collected while its
    // event loop hook is still scheduled crashes the process, so every instance stays referenced.
    liveInstances.push(instance);
    return requestDevice(instance as unknown as GPU);
  };
  let handle = process.env.VK_ICD_FILENAMES ? await tryCreate() : await tryCreate().catch(() => null);
  if (!handle) {
    const icd = SWIFTSHADER_ICDS.find((p) => existsSync(p));
    if (!icd) {
      throw new Error(
        'No WebGPU adapter found and no SwiftShader Vulkan driver to fall back to. ' +
          'Install a GPU driver, or `apt-get install chromium` (its SwiftShader driver is used as a CPU fallback).',
      );
    }
    process.env.VK_ICD_FILENAMES = icd;
    handle = await tryCreate();
  }
  if (!handle) throw new Error('Dawn found no WebGPU adapter, even on SwiftShader (VK_ICD_FILENAMES=' + process.env.VK_ICD_FILENAMES + ').');
  handle.device.lost.then((info) => {
    if (info.reason !== 'destroyed') console.error(`GPU device lost: ${info.message}`);
  });
  return handle;
}

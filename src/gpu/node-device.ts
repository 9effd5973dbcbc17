/**
 * Node only: a GPUDevice through Dawn (the `webgpu` package).
 * Real drivers first; on machines without a GPU fall back to the SwiftShader Vulkan driver that ships
 * inside Debian's chromium package (see docs/ARCHITECTURE.md).
 */
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { requestDevice, type DeviceHandle } from './device';

const SWIFTSHADER_ICDS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/x86_64-linux-gnu/chromium/vk_swiftshader_icd.json',
  '/opt/google/chrome/vk_swiftshader_icd.json',
];

let cached: Promise<DeviceHandle> | null = null;
const liveInstances: unknown[] = [];
let deviceInstance: GPU | null = null;

export function nodeDevice(): Promise<DeviceHandle> {
  cached ??= acquire();
  return cached;
}

/**
 * The Dawn GPU instance behind nodeDevice()'s device. Other WebGPU libraries measured beside ours
 * (the bench) request their adapter from it, so everything runs on the same adapter and driver.
 */
export async function nodeGpuInstance(): Promise<GPU> {
  await nodeDevice();
  return deviceInstance!;
}

async function acquire(): Promise<DeviceHandle> {
  // The Vulkan loader complains on every instance when XDG_RUNTIME_DIR is unset (headless servers, CI).
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  const webgpu = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  const tryCreate = async () => {
    const instance = webgpu.create([]);
    // Dawn keeps processing events for every instance: one that is garbage-collected while its
    // event loop hook is still scheduled crashes the process, so every instance stays referenced.
    liveInstances.push(instance);
    const handle = await requestDevice(instance as unknown as GPU);
    if (handle) deviceInstance = instance as unknown as GPU;
    return handle;
  };
  // No GPU device node at all: the system's Vulkan drivers can only be Mesa's CPU or absent-hardware ones
  // (Debian's lavapipe is too old for Dawn), so go to SwiftShader directly instead of letting Dawn fail noisily.
  if (!process.env.VK_ICD_FILENAMES && !hasGpuDeviceNode()) {
    const icd = SWIFTSHADER_ICDS.find((p) => existsSync(p));
    if (icd) process.env.VK_ICD_FILENAMES = icd;
  }
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

/** A GPU the kernel knows about: a DRM render node or an NVIDIA device (Linux); elsewhere assume yes. */
function hasGpuDeviceNode(): boolean {
  if (process.platform !== 'linux') return true;
  const dri = existsSync('/dev/dri') ? readdirSync('/dev/dri').some((f) => f.startsWith('renderD')) : false;
  return dri || existsSync('/dev/nvidia0') || existsSync('/dev/nvidiactl');
}

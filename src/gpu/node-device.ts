/**
 * The Node entry's GPUDevice (CLI, bench, tests): Dawn through the `webgpu` package under Node, the runtime's own
 * WebGPU under Deno (wgpu), see webgpu-runtime.ts. Real drivers first; on machines without a GPU both go to the
 * SwiftShader Vulkan driver that ships inside Debian's chromium package (see docs/ARCHITECTURE.md).
 */
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requestDevice, type DeviceHandle } from './device';
import { builtinWebgpu, chooseWebgpuRuntime, implementationName, WEBGPU_ENV } from './webgpu-runtime';

const SWIFTSHADER_ICDS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/x86_64-linux-gnu/chromium/vk_swiftshader_icd.json',
  '/opt/google/chrome/vk_swiftshader_icd.json',
];

/** The SwiftShader Vulkan driver's manifest on this machine, or null. */
export function swiftshaderIcd(): string | null {
  return SWIFTSHADER_ICDS.find((p) => existsSync(p)) ?? null;
}

let cached: Promise<DeviceHandle> | null = null;
/** The device `cached` resolved to (loseNodeDevice destroys it at once, between two steps of a run). */
let opened: DeviceHandle | null = null;
const liveInstances: unknown[] = [];
let deviceInstance: GPU | null = null;

export function nodeDevice(): Promise<DeviceHandle> {
  cached ??= acquire();
  return cached;
}

/**
 * Test hook: destroys nodeDevice()'s device as a GPU loss would (its `lost` promise resolves with reason
 * 'destroyed', pending readbacks fail with DeviceLostError) and forgets it, so the next nodeDevice() opens a new one.
 * Resolves with the lost info; null when no device was open yet.
 */
export function loseNodeDevice(): Promise<GPUDeviceLostInfo | null> {
  const device = opened?.device;
  if (!device) return Promise.resolve(null);
  cached = null;
  opened = null;
  device.destroy();
  return device.lost;
}

/**
 * The GPU instance behind nodeDevice()'s device. Other WebGPU libraries measured beside ours
 * (the bench) request their adapter from it, so everything runs on the same adapter and driver.
 */
export async function nodeGpuInstance(): Promise<GPU> {
  await nodeDevice();
  return deviceInstance!;
}

async function acquire(): Promise<DeviceHandle> {
  // The Vulkan loader complains on every instance when XDG_RUNTIME_DIR is unset (headless servers, CI).
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  // No GPU device node at all: the system's Vulkan drivers can only be Mesa's CPU or absent-hardware ones
  // (Debian's lavapipe is too old for Dawn), so go to SwiftShader directly instead of letting Dawn fail noisily.
  // Set before the first adapter request: that is when Dawn and Deno's wgpu create their Vulkan instance.
  if (!process.env.VK_ICD_FILENAMES && !hasGpuDeviceNode()) {
    const icd = swiftshaderIcd();
    if (icd) process.env.VK_ICD_FILENAMES = icd;
  }
  const builtin = builtinWebgpu();
  const runtime = chooseWebgpuRuntime(process.env[WEBGPU_ENV], builtin !== null);
  const handle = runtime === 'builtin' ? await builtinDevice(builtin!) : await dawnDevice();
  handle.device.lost.then((info) => {
    if (info.reason !== 'destroyed') console.error(`GPU device lost: ${info.message}`);
  });
  opened = handle;
  return handle;
}

/** Deno's navigator.gpu: one instance per process, so no retry on another driver (set VK_ICD_FILENAMES for that). */
async function builtinDevice(gpu: GPU): Promise<DeviceHandle> {
  const implementation = implementationName('builtin');
  const handle = await requestDevice(gpu, { implementation });
  if (!handle) {
    const icd = process.env.VK_ICD_FILENAMES;
    throw new Error(
      `${implementation} found no WebGPU adapter${icd ? ` (VK_ICD_FILENAMES=${icd})` : ''}. ` +
        `Point VK_ICD_FILENAMES at a Vulkan driver, or run with ${WEBGPU_ENV}=dawn to use Dawn instead.`,
    );
  }
  deviceInstance = gpu;
  return handle;
}

async function dawnDevice(): Promise<DeviceHandle> {
  const webgpu = await import('webgpu');
  // Under Deno the WebGPU globals are its own; Dawn's objects are used only through their methods.
  if (typeof GPUBufferUsage === 'undefined') Object.assign(globalThis, webgpu.globals);
  const tryCreate = async () => {
    const instance = webgpu.create([]);
    // Dawn keeps processing events for every instance: one that is garbage-collected while its
    // event loop hook is still scheduled crashes the process, so every instance stays referenced.
    liveInstances.push(instance);
    const handle = await requestDevice(instance as unknown as GPU, { implementation: 'dawn' });
    if (handle) deviceInstance = instance as unknown as GPU;
    return handle;
  };
  let handle = process.env.VK_ICD_FILENAMES ? await tryCreate() : await tryCreate().catch(() => null);
  if (!handle) {
    const icd = swiftshaderIcd();
    if (!icd) throw new Error(noAdapterMessage(systemFacts(null)));
    process.env.VK_ICD_FILENAMES = icd;
    handle = await tryCreate();
  }
  if (!handle) throw new Error(noAdapterMessage(systemFacts(process.env.VK_ICD_FILENAMES ?? null)));
  return handle;
}

/** A GPU the kernel knows about: a DRM render node or an NVIDIA device (Linux); elsewhere assume yes. */
function hasGpuDeviceNode(): boolean {
  if (process.platform !== 'linux') return true;
  const dri = existsSync('/dev/dri') ? readdirSync('/dev/dri').some((f) => f.startsWith('renderD')) : false;
  return dri || existsSync('/dev/nvidia0') || existsSync('/dev/nvidiactl');
}

/** The Vulkan loader Dawn opens with dlopen on Linux (Debian's libvulkan1). */
export const VULKAN_LOADER = 'libvulkan.so.1';

/** Where the dynamic linker finds VULKAN_LOADER: LD_LIBRARY_PATH first, then the usual system folders. */
export function vulkanLoaderDirs(
  env: Record<string, string | undefined> = process.env,
  arch: string = process.arch,
): string[] {
  const fromEnv = (env.LD_LIBRARY_PATH ?? '').split(':').filter((d) => d !== '');
  const multiarch = (
    {
      x64: 'x86_64-linux-gnu',
      arm64: 'aarch64-linux-gnu',
      arm: 'arm-linux-gnueabihf',
      ia32: 'i386-linux-gnu',
      riscv64: 'riscv64-linux-gnu',
    } as Record<string, string>
  )[arch];
  return [
    ...fromEnv,
    ...(multiarch ? [`/usr/lib/${multiarch}`, `/lib/${multiarch}`] : []),
    '/usr/lib64',
    '/lib64',
    '/usr/lib',
    '/lib',
    '/usr/local/lib',
  ];
}

/** The path of the Vulkan loader in `dirs`, or null where none of them holds it. */
export function findVulkanLoader(dirs: string[], exists: (path: string) => boolean = existsSync): string | null {
  for (const dir of dirs) {
    const path = join(dir, VULKAN_LOADER);
    if (exists(path)) return path;
  }
  return null;
}

/** What noAdapterMessage needs to know about the machine (injected in tests). */
export interface AdapterFacts {
  platform: string;
  /** Linux: the Vulkan loader's path, or null when it is not installed (see findVulkanLoader). */
  vulkanLoader: string | null;
  /** Folders searched for the loader, named in the message when it is missing. */
  searched: string[];
  /** A GPU device node (/dev/dri/renderD*, /dev/nvidia*). */
  gpuDeviceNode: boolean;
  /** The SwiftShader ICD Dawn was pointed at (VK_ICD_FILENAMES) after the first try failed, or null if none. */
  icd: string | null;
}

function systemFacts(icd: string | null): AdapterFacts {
  const searched = vulkanLoaderDirs();
  const linux = process.platform === 'linux';
  return {
    platform: process.platform,
    vulkanLoader: linux ? findVulkanLoader(searched) : null,
    searched,
    gpuDeviceNode: hasGpuDeviceNode(),
    icd,
  };
}

/**
 * Why Dawn found no adapter, and what to install. On Linux Dawn reaches every GPU, and SwiftShader, through the
 * Vulkan loader: without libvulkan.so.1 nothing else matters, so that is said first (Dawn's own warning above
 * says "Couldn't load Vulkan").
 */
export function noAdapterMessage(f: AdapterFacts): string {
  const cpuFallback = 'its SwiftShader Vulkan driver is the CPU fallback (slow, but correct)';
  if (f.platform === 'linux' && f.vulkanLoader === null) {
    const noGpu = !f.gpuDeviceNode && f.icd === null;
    return (
      `No WebGPU adapter: ${VULKAN_LOADER} (the Vulkan loader) is not installed: \`apt-get install libvulkan1\`.` +
      (noGpu ? ` This machine has no GPU, so also \`apt-get install chromium\`: ${cpuFallback}.` : '') +
      ` Dawn reaches every GPU, and SwiftShader, through the loader (looked in ${f.searched.join(', ')}).`
    );
  }
  if (f.icd === null) {
    return (
      'No WebGPU adapter found and no SwiftShader Vulkan driver to fall back to. ' +
      `Install a GPU driver, or \`apt-get install chromium\`: ${cpuFallback}.`
    );
  }
  return `Dawn found no WebGPU adapter, even on SwiftShader (VK_ICD_FILENAMES=${f.icd}); see Dawn's warnings above.`;
}

/**
 * Which WebGPU implementation the Node entry (CLI, bench, tests) runs on. Node has no WebGPU of its own, so Dawn comes
 * from the `webgpu` package; Deno has one built in (wgpu, as in Firefox) at navigator.gpu, and that is used unless
 * LORA_STUDIO_WEBGPU=dawn asks for Dawn.
 */

export const WEBGPU_ENV = 'LORA_STUDIO_WEBGPU';

/** 'builtin': the runtime's navigator.gpu (Deno: wgpu); 'dawn': the `webgpu` package. */
export type WebgpuRuntime = 'builtin' | 'dawn';

const SETTINGS: Record<string, WebgpuRuntime | 'auto'> = { '': 'auto', auto: 'auto', dawn: 'dawn', builtin: 'builtin' };

/** The runtime for a LORA_STUDIO_WEBGPU value, given whether this JavaScript runtime has navigator.gpu. */
export function chooseWebgpuRuntime(setting: string | undefined, hasBuiltin: boolean): WebgpuRuntime {
  const wanted = SETTINGS[(setting ?? '').trim().toLowerCase()];
  if (!wanted) throw new Error(`${WEBGPU_ENV}=${setting}: expected auto, dawn or builtin`);
  if (wanted === 'builtin' && !hasBuiltin)
    throw new Error(`${WEBGPU_ENV}=builtin, but this runtime has no navigator.gpu (Node has none: use dawn)`);
  if (wanted === 'auto') return hasBuiltin ? 'builtin' : 'dawn';
  return wanted;
}

/** The runtime's own WebGPU, where it has one (Deno; browsers, though they never reach the Node entry). */
export function builtinWebgpu(): GPU | null {
  return (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu ?? null;
}

/** Names the implementation behind a runtime, for logs and the adapter identity: Dawn, or Deno's wgpu. */
export function implementationName(runtime: WebgpuRuntime): string {
  if (runtime === 'dawn') return 'dawn';
  const deno = (globalThis as { Deno?: { version?: { deno?: string } } }).Deno?.version?.deno;
  return deno ? `wgpu (Deno ${deno})` : 'builtin';
}

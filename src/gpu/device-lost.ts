/**
 * A lost GPUDevice (driver reset, GPU process crash, `device.destroy()`) rejects every pending readback with a bare
 * AbortError. Readbacks go through mapForRead, which names the loss instead, so a run on a lost device stops with
 * an error that says what happened rather than an empty message or a stale loss.
 */

/**
 * How long a failed map waits for the device's `lost` promise. They settle in either order: after `destroy()`,
 * Chrome fails the maps at once but resolves `lost` only once its GPU process answers, which can take seconds
 * while that process compiles shaders on SwiftShader.
 */
export const LOST_GRACE_MS = 10_000;

export class DeviceLostError extends Error {
  /** GPUDeviceLostInfo's reason ('destroyed' or 'unknown') and message. */
  constructor(
    readonly reason: string,
    readonly detail: string,
  ) {
    super(`The GPU device was lost (${describeLoss(reason, detail)}): everything it held is gone.`);
    this.name = 'DeviceLostError';
  }
}

/** "destroyed", or the driver's message when the reason is only 'unknown'. */
export function describeLoss(reason: string, detail: string): string {
  if (reason !== 'unknown' || !detail) return reason || 'no reason given';
  return detail;
}

/** Whether `err` is what WebGPU rejects a pending operation with when its device goes away. */
export function mayBeDeviceLoss(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return err instanceof DeviceLostError || name === 'AbortError' || name === 'OperationError';
}

/** The device's lost info when it is lost within `ms`, else null. */
export async function lostWithin(device: GPUDevice, ms: number): Promise<GPUDeviceLostInfo | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([device.lost, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `buffer.mapAsync(READ)`, failing with DeviceLostError when the map failed because the device is gone. */
export async function mapForRead(device: GPUDevice, buffer: GPUBuffer, offset?: number, size?: number): Promise<void> {
  try {
    await buffer.mapAsync(GPUMapMode.READ, offset, size);
  } catch (err) {
    const info = mayBeDeviceLoss(err) ? await lostWithin(device, LOST_GRACE_MS) : null;
    throw info ? new DeviceLostError(info.reason, info.message) : err;
  }
}

/**
 * A Gpu that remembers which buffers each job created, so the studio can free a finished run's
 * activations, gradients and optimizer state (the engine allocates them once per run and never frees
 * them; a session that trains many runs would otherwise run the GPU out of memory).
 *
 * Jobs run one at a time (see GpuQueue), so "the scope on top of the stack" is always the job that is
 * creating buffers. Buffers created with no scope open belong to the session and are never freed.
 */
import { Gpu } from '../gpu/gpu';

export class BufferScope {
  readonly buffers: GPUBuffer[] = [];
  constructor(readonly label: string) {}

  get bytes(): number {
    return this.buffers.reduce((n, b) => n + b.size, 0);
  }
}

export class ScopedGpu extends Gpu {
  private readonly stack: BufferScope[] = [];

  override createBuffer(bytes: number, usage: number, label: string): GPUBuffer {
    const buffer = super.createBuffer(bytes, usage, label);
    this.stack.at(-1)?.buffers.push(buffer);
    return buffer;
  }

  open(label: string): BufferScope {
    const scope = new BufferScope(label);
    this.stack.push(scope);
    return scope;
  }

  /** Stops collecting into `scope` (its buffers stay alive until release()). */
  close(scope: BufferScope): void {
    const i = this.stack.lastIndexOf(scope);
    if (i >= 0) this.stack.splice(i, 1);
  }

  /**
   * Destroys the scope's buffers except `keep`, after the GPU has finished with them. Returns the kept
   * buffers as a new scope (for example a full fine-tune's trained weights, freed when the run is deleted).
   */
  async release(scope: BufferScope, keep: Set<GPUBuffer> = new Set()): Promise<BufferScope | null> {
    this.close(scope);
    try {
      await this.sync();
    } catch {
      // A lost device has nothing left to wait for; destroying is still safe.
    }
    const kept = new BufferScope(`${scope.label} (kept)`);
    for (const b of scope.buffers) if (keep.has(b)) kept.buffers.push(b);
    this.destroyBuffers(scope.buffers.filter((b) => !keep.has(b)));
    scope.buffers.length = 0;
    return kept.buffers.length ? kept : null;
  }
}

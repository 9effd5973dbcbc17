/**
 * The GPU runtime: tensor allocation, a pipeline cache, and command lists.
 *
 * A CommandList is a static recording of dispatches (pipeline + bind group + grid) built once, when a
 * model or trainer is set up. Running it encodes every dispatch into one compute pass and needs no
 * new buffers or bind groups, which is how a whole training step stays at one submit and zero
 * allocations. Parameters that change per step (learning rate, step count) are rewritten in place.
 */
import type { DeviceHandle } from './device';
import { mapForRead } from './device-lost';
import { dequantizeLayout, H, quantFormat } from '../quant/layout';
import {
  isHalf,
  isQuantized,
  numel,
  shapeString,
  storageBytes,
  type DType,
  type QuantDType,
  type Tensor,
} from './tensor';
import { packHalf, unpackHalf, type HalfDType } from './half';
import { packParams, type ParamValue } from './params';

export type BindingKind = 'read' | 'rw';

export interface KernelSource {
  /** Short name for errors and timing tables. */
  name: string;
  code: string;
}

export interface KernelSpec {
  source: KernelSource;
  entry: string;
  /** Storage bindings 0..n-1 in order; the uniform params, if any, are binding n. */
  bindings: BindingKind[];
  /** Pipeline-overridable constants (e.g. transpose flags, tile sizes). */
  constants?: Record<string, number>;
}

export type Grid = [number, number, number];

interface DispatchCmd {
  kind: 'dispatch';
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  grid: Grid;
  uniform?: GPUBuffer;
}
interface ClearCmd {
  kind: 'clear';
  buffer: GPUBuffer;
}
interface CopyCmd {
  kind: 'copy';
  src: GPUBuffer;
  srcOffset: number;
  dst: GPUBuffer;
  dstOffset: number;
  bytes: number;
}
type Cmd = DispatchCmd | ClearCmd | CopyCmd;

export interface DispatchHandle {
  /** Rewrites this dispatch's uniform parameters (queue.writeBuffer; no allocation). */
  setParams(values: ParamValue[]): void;
}

export interface GpuCounters {
  buffersCreated: number;
  bytesAllocated: number;
  submits: number;
  pipelinesCompiled: number;
}

export class Gpu {
  readonly device: GPUDevice;
  readonly counters: GpuCounters = { buffersCreated: 0, bytesAllocated: 0, submits: 0, pipelinesCompiled: 0 };
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly bindGroupLayouts = new Map<string, GPUBindGroupLayout>();

  /** Bytes of live (created, not destroyed) buffers, and their high-water mark. */
  liveBytes = 0;
  peakBytes = 0;
  private readonly live = new Set<GPUBuffer>();

  /** Validation and out-of-memory errors Dawn/the browser reported asynchronously (they never throw). */
  readonly errors: string[] = [];

  constructor(readonly handle: DeviceHandle) {
    this.device = handle.device;
    this.device.addEventListener('uncapturederror', (e) => {
      const msg = (e as GPUUncapturedErrorEvent).error.message;
      this.errors.push(msg);
      if (this.errors.length <= 5) console.error(`WebGPU error: ${msg}`);
    });
  }

  /** Throws if the GPU reported any error since the last check: a failed dispatch must not pass silently. */
  checkErrors(context: string): void {
    if (this.errors.length === 0) return;
    const first = this.errors[0];
    const n = this.errors.length;
    this.errors.length = 0;
    throw new Error(`${context}: the GPU reported ${n} error${n > 1 ? 's' : ''}; first: ${first}`);
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  // ---------------------------------------------------------------- memory

  createBuffer(bytes: number, usage: number, label: string): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (size > this.device.limits.maxBufferSize) {
      throw new Error(
        `${label}: needs a ${formatBytes(size)} buffer, but this GPU allows at most ${formatBytes(this.device.limits.maxBufferSize)} per buffer.`,
      );
    }
    this.counters.buffersCreated++;
    this.counters.bytesAllocated += size;
    const buffer = this.device.createBuffer({ size, usage, label });
    this.live.add(buffer);
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return buffer;
  }

  /** The buffers alive now: a phase that allocates temporaries marks before and frees since the mark after. */
  mark(): ReadonlySet<GPUBuffer> {
    return new Set(this.live);
  }

  /** The live buffers created after `mark`. */
  createdSince(mark: ReadonlySet<GPUBuffer>): GPUBuffer[] {
    return [...this.live].filter((b) => !mark.has(b));
  }

  /** Destroys every buffer created after `mark`, once the GPU is done with them. */
  async freeSince(mark: ReadonlySet<GPUBuffer>): Promise<void> {
    await this.free(this.createdSince(mark));
  }

  /** Destroys buffers once the GPU is done with them. */
  async free(buffers: GPUBuffer[]): Promise<void> {
    await this.sync();
    this.destroyBuffers(buffers);
  }

  /** Destroys buffers (idempotent). The caller makes sure no queued work still uses them (await sync() first). */
  destroyBuffers(buffers: Iterable<GPUBuffer>): void {
    for (const b of buffers) {
      if (!this.live.delete(b)) continue;
      this.liveBytes -= b.size;
      b.destroy();
    }
  }

  /** Frees tensors of a finished phase (a method's preparation, a graph that is no longer needed). */
  async freeTensors(tensors: Iterable<Tensor | null | undefined>): Promise<void> {
    await this.sync();
    this.destroyBuffers([...tensors].filter((t): t is Tensor => !!t).map((t) => t.buffer));
  }

  tensor(shape: readonly number[], label: string, dtype: DType = 'f32'): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`${label}: invalid shape ${shapeString(shape)}`);
    }
    const size = numel(shape);
    const buffer = this.storageBuffer(storageBytes(size, dtype, shape[shape.length - 1]), shape, label);
    return { buffer, shape: [...shape], dtype, size, label };
  }

  /**
   * A quantized weight from its packed words (src/quant/layout.ts), sized by them: a checkpoint's own blocks may
   * differ from the default layout storageBytes counts.
   */
  tensorWords(words: Uint32Array, shape: readonly number[], label: string, dtype: QuantDType): Tensor {
    const buffer = this.storageBuffer(words.byteLength, shape, label);
    this.device.queue.writeBuffer(buffer, 0, words.buffer, words.byteOffset, words.byteLength);
    return { buffer, shape: [...shape], dtype, size: numel(shape), label, quant: quantFormat(words) };
  }

  /** A storage buffer for one tensor, which must fit one binding. */
  private storageBuffer(bytes: number, shape: readonly number[], label: string): GPUBuffer {
    if (bytes > this.device.limits.maxStorageBufferBindingSize) {
      throw new Error(
        `${label} ${shapeString(shape)} needs ${formatBytes(bytes)} in one binding; this GPU's maxStorageBufferBindingSize is ${formatBytes(this.device.limits.maxStorageBufferBindingSize)}.`,
      );
    }
    return this.createBuffer(bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label);
  }

  /** The packed words of a quantized tensor (its codes included: a GPU quantizer writes them). */
  async readWords(t: Tensor): Promise<Uint32Array> {
    const words = new Uint32Array(await this.readBytes(t.buffer, 0, t.buffer.size));
    return words.subarray(0, words[H.words] || words.length);
  }

  upload(t: Tensor, data: Float32Array | Uint32Array | Int32Array, elementOffset = 0): void {
    if (isHalf(t.dtype)) throw new Error(`${t.label}: ${t.dtype} tensors are written whole by tensorFrom`);
    if (isQuantized(t.dtype)) throw new Error(`${t.label}: ${t.dtype} tensors are written whole by tensorWords`);
    if (data.length + elementOffset > t.size) {
      throw new Error(
        `${t.label}: upload of ${data.length} elements at ${elementOffset} overflows ${shapeString(t.shape)}`,
      );
    }
    this.device.queue.writeBuffer(t.buffer, elementOffset * 4, data.buffer, data.byteOffset, data.byteLength);
  }

  /** A tensor holding `data`; f16/bf16 round each value to nearest even and pack two per word. */
  tensorFrom(data: Float32Array, shape: readonly number[], label: string, dtype: 'f32' | HalfDType = 'f32'): Tensor {
    if (data.length !== numel(shape))
      throw new Error(`${label}: ${data.length} values for shape ${shapeString(shape)}`);
    const t = this.tensor(shape, label, dtype);
    if (dtype === 'f32') {
      this.upload(t, data);
    } else {
      const words = packHalf(data, dtype);
      this.device.queue.writeBuffer(t.buffer, 0, words.buffer, words.byteOffset, words.byteLength);
    }
    return t;
  }

  /** Reads a tensor back (allocates a staging buffer: for tests, export and set-up, not the step loop). */
  async read(t: Tensor, elementOffset = 0, count = t.size - elementOffset): Promise<Float32Array> {
    if (isQuantized(t.dtype)) {
      if (elementOffset !== 0 || count !== t.size) throw new Error(`${t.label}: ${t.dtype} tensors are read whole`);
      return dequantizeLayout(await this.readWords(t));
    }
    if (isHalf(t.dtype)) {
      if (elementOffset !== 0 || count !== t.size) throw new Error(`${t.label}: ${t.dtype} tensors are read whole`);
      return unpackHalf(new Uint32Array(await this.readBytes(t.buffer, 0, t.buffer.size)), t.size, t.dtype);
    }
    const bytes = await this.readBytes(t.buffer, elementOffset * 4, count * 4);
    return new Float32Array(bytes);
  }

  /**
   * Reads many f32 tensors (or element ranges of them) with one copy pass, one submit and one map (export,
   * set-up phases).
   */
  async readMany(items: (Tensor | { t: Tensor; offset: number; count: number })[]): Promise<Float32Array[]> {
    if (items.length === 0) return [];
    const ranges = items.map((x) => ('buffer' in x ? { t: x, offset: 0, count: x.size } : x));
    const half = ranges.find((r) => isHalf(r.t.dtype) || isQuantized(r.t.dtype));
    if (half) throw new Error(`readMany reads f32 tensors; ${half.t.label} is ${half.t.dtype} (use read)`);
    const at: number[] = [];
    let total = 0;
    for (const r of ranges) {
      at.push(total);
      total += r.count * 4;
    }
    const staging = this.device.createBuffer({
      size: Math.max(16, total),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      label: 'staging',
    });
    const enc = this.device.createCommandEncoder();
    ranges.forEach(
      (r, i) => r.count > 0 && enc.copyBufferToBuffer(r.t.buffer, r.offset * 4, staging, at[i], r.count * 4),
    );
    this.submit([enc.finish()]);
    await mapForRead(this.device, staging);
    const all = staging.getMappedRange(0, total).slice(0);
    staging.unmap();
    staging.destroy();
    return ranges.map((r, i) => new Float32Array(all, at[i], r.count));
  }

  async readU32(t: Tensor): Promise<Uint32Array> {
    return new Uint32Array(await this.readBytes(t.buffer, 0, t.size * 4));
  }

  private async readBytes(src: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    const staging = this.device.createBuffer({
      size: Math.max(16, Math.ceil(bytes / 4) * 4),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      label: 'staging',
    });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(src, offset, staging, 0, Math.ceil(bytes / 4) * 4);
    this.submit([enc.finish()]);
    await mapForRead(this.device, staging);
    const out = staging.getMappedRange(0, bytes).slice(0);
    staging.unmap();
    staging.destroy();
    return out;
  }

  // ------------------------------------------------------------- pipelines

  /** The layout of a spec's bind groups: always has the uniform slot. */
  layoutFor(spec: KernelSpec): GPUBindGroupLayout {
    const key = spec.bindings.join(',');
    let l = this.bindGroupLayouts.get(key);
    if (l) return l;
    l = this.device.createBindGroupLayout({ entries: layoutEntries(spec.bindings), label: key });
    this.bindGroupLayouts.set(key, l);
    return l;
  }

  /**
   * Every pipeline has a pipeline layout of its own, even where another kernel has the same bindings. wgpu (Firefox,
   * Deno) checks the size of a bound uniform against the first pipeline it saw with a pipeline layout
   * (gfx-rs/wgpu#7359): with shared layouts, rope's 32-byte params were checked against matmul's 80 bytes and the
   * dispatch was dropped. A layout is made once per pipeline, at record time, so a step still creates nothing; and
   * the params buffers keep their exact sizes, so an implementation that validates them still catches a wrapper
   * that passes too few. Bind group layouts stay shared: wgpu keys the check by pipeline layout only.
   */
  pipeline(spec: KernelSpec): GPUComputePipeline {
    const constants = spec.constants ?? {};
    const key = `${spec.source.name}|${spec.entry}|${spec.bindings.join(',')}|${JSON.stringify(constants)}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    let module = this.modules.get(spec.source.name);
    if (!module) {
      module = this.device.createShaderModule({ code: spec.source.code, label: spec.source.name });
      this.modules.set(spec.source.name, module);
    }
    const label = `${spec.source.name}.${spec.entry}`;
    p = this.device.createComputePipeline({
      label,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [this.layoutFor(spec)], label }),
      compute: { module, entryPoint: spec.entry, constants },
    });
    this.counters.pipelinesCompiled++;
    this.pipelines.set(key, p);
    return p;
  }

  // ------------------------------------------------------------ submission

  submit(buffers: GPUCommandBuffer[]): void {
    this.counters.submits++;
    this.device.queue.submit(buffers);
  }

  /** Waits until the GPU has finished everything submitted so far. */
  async sync(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
  }

  list(label: string): CommandList {
    return new CommandList(this, label);
  }

  /** Records, runs and waits for a one-off list (set-up phases), then frees its parameter buffers. */
  async runOnce(label: string, record: (list: CommandList) => void): Promise<void> {
    const list = this.list(label);
    record(list);
    list.run();
    await list.release();
  }
}

/** Storage bindings 0..n-1, then the uniform params at n. */
function layoutEntries(bindings: BindingKind[]): GPUBindGroupLayoutEntry[] {
  const entries: GPUBindGroupLayoutEntry[] = bindings.map((kind, i) => ({
    binding: i,
    visibility: GPUShaderStage.COMPUTE,
    buffer: { type: kind === 'read' ? 'read-only-storage' : 'storage' },
  }));
  entries.push({ binding: bindings.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
  return entries;
}

/** A recorded sequence of GPU commands, replayable any number of times without allocation. */
export class CommandList {
  private readonly cmds: Cmd[] = [];
  private readonly uniforms: GPUBuffer[] = [];
  private readonly scratches: Tensor[] = [];

  constructor(
    readonly gpu: Gpu,
    readonly label: string,
  ) {}

  get length(): number {
    return this.cmds.length;
  }

  /** Frees the list's parameter and scratch buffers once the GPU is done; the list must not run again. */
  async release(): Promise<void> {
    await this.gpu.free([...this.uniforms.splice(0), ...this.scratches.splice(0).map((t) => t.buffer)]);
    this.cmds.length = 0;
  }

  /**
   * f32 scratch of at least `elements` for intermediates that live between two consecutive dispatches of
   * this list (split-K partial products). Every user shares it, since the list's dispatches run in order;
   * a larger request allocates a larger one (at record time, never while running), and the dispatches
   * recorded earlier keep theirs.
   */
  scratch(elements: number): Tensor {
    const last = this.scratches[this.scratches.length - 1];
    if (last && last.size >= elements) return last;
    const t = this.gpu.tensor([Math.max(elements, 2 * (last?.size ?? 0))], `${this.label}.scratch`);
    this.scratches.push(t);
    return t;
  }

  get dispatchCount(): number {
    return this.cmds.filter((c) => c.kind === 'dispatch').length;
  }

  dispatch(spec: KernelSpec, tensors: (Tensor | GPUBuffer)[], params: ParamValue[], grid: Grid): DispatchHandle {
    if (tensors.length !== spec.bindings.length) {
      throw new Error(
        `${spec.source.name}.${spec.entry}: expects ${spec.bindings.length} buffers, got ${tensors.length}`,
      );
    }
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    for (const g of grid) {
      if (!Number.isInteger(g) || g < 0 || g > max) {
        throw new Error(
          `${spec.source.name}.${spec.entry}: grid ${grid.join('x')} exceeds the limit ${max} per dimension`,
        );
      }
    }
    const gpu = this.gpu;
    const pipeline = gpu.pipeline(spec);
    const data = packParams(params);
    const uniform = gpu.createBuffer(
      data.byteLength,
      GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      `${spec.entry}.params`,
    );
    gpu.device.queue.writeBuffer(uniform, 0, data);
    this.uniforms.push(uniform);
    const entries: GPUBindGroupEntry[] = tensors.map((t, i) => ({
      binding: i,
      resource: { buffer: 'buffer' in t ? t.buffer : t },
    }));
    entries.push({ binding: tensors.length, resource: { buffer: uniform } });
    const bindGroup = gpu.device.createBindGroup({ layout: gpu.layoutFor(spec), entries, label: spec.entry });
    if (grid.some((g) => g === 0)) return { setParams: () => {} }; // empty work: nothing to record
    this.cmds.push({
      kind: 'dispatch',
      label: `${spec.source.name}.${spec.entry}`,
      pipeline,
      bindGroup,
      grid,
      uniform,
    });
    return {
      setParams: (values) => gpu.device.queue.writeBuffer(uniform, 0, packParams(values)),
    };
  }

  clear(t: Tensor | GPUBuffer): void {
    this.cmds.push({ kind: 'clear', buffer: 'buffer' in t ? t.buffer : t });
  }

  copy(src: Tensor, dst: Tensor, elements = Math.min(src.size, dst.size), srcOffset = 0, dstOffset = 0): void {
    if (elements === 0) return;
    if (isHalf(src.dtype) || isHalf(dst.dtype) || isQuantized(src.dtype) || isQuantized(dst.dtype))
      throw new Error(`copy ${src.label} -> ${dst.label}: 16-bit and quantized tensors are not copied by element`);
    this.cmds.push({
      kind: 'copy',
      src: src.buffer,
      srcOffset: srcOffset * 4,
      dst: dst.buffer,
      dstOffset: dstOffset * 4,
      bytes: elements * 4,
    });
  }

  /** Appends every command of another list (the two stay independent recordings). */
  append(other: CommandList): void {
    this.cmds.push(...other.cmds);
  }

  /**
   * Encodes the list: consecutive dispatches share one compute pass. With a timestamp query set (2 entries per
   * dispatch), each dispatch gets its own pass with begin/end timestamps instead.
   */
  encode(enc: GPUCommandEncoder, timestamps?: GPUQuerySet): void {
    let pass: GPUComputePassEncoder | null = null;
    let query = 0;
    const endPass = () => {
      pass?.end();
      pass = null;
    };
    for (const c of this.cmds) {
      if (c.kind === 'dispatch') {
        if (timestamps) {
          // Profiling: every dispatch in its own pass, between two timestamp writes.
          endPass();
          pass = enc.beginComputePass({
            label: c.label,
            timestampWrites: { querySet: timestamps, beginningOfPassWriteIndex: query, endOfPassWriteIndex: query + 1 },
          });
          query += 2;
        }
        pass ??= enc.beginComputePass({ label: this.label });
        pass.setPipeline(c.pipeline);
        pass.setBindGroup(0, c.bindGroup);
        pass.dispatchWorkgroups(c.grid[0], c.grid[1], c.grid[2]);
      } else if (c.kind === 'clear') {
        endPass();
        enc.clearBuffer(c.buffer);
      } else {
        endPass();
        enc.copyBufferToBuffer(c.src, c.srcOffset, c.dst, c.dstOffset, c.bytes);
      }
    }
    endPass();
  }

  /**
   * Runs each command alone and waits for it: wall-clock milliseconds per kernel name. Slow and
   * approximate (it includes submit latency); for finding hot spots where timestamp queries are missing.
   */
  async profile(): Promise<Map<string, { ms: number; count: number }>> {
    const out = new Map<string, { ms: number; count: number }>();
    for (const c of this.cmds) {
      const one = new CommandList(this.gpu, this.label);
      one.cmds.push(c);
      const t0 = performance.now();
      one.run();
      await this.gpu.sync();
      const name = c.kind === 'dispatch' ? c.label : c.kind;
      const e = out.get(name) ?? { ms: 0, count: 0 };
      e.ms += performance.now() - t0;
      e.count++;
      out.set(name, e);
    }
    return out;
  }

  /**
   * GPU time per kernel name from timestamp queries (adapters with 'timestamp-query'): the whole list runs in
   * one submit, each dispatch in its own compute pass with begin/end timestamps. Returns null without the feature.
   */
  async profileTimestamps(): Promise<Map<string, { ms: number; count: number }> | null> {
    const gpu = this.gpu;
    if (!gpu.handle.features.timestamps) return null;
    const dispatches = this.cmds.filter((c): c is Extract<Cmd, { kind: 'dispatch' }> => c.kind === 'dispatch');
    if (dispatches.length === 0) return new Map();
    const count = 2 * dispatches.length;
    const querySet = gpu.device.createQuerySet({ type: 'timestamp', count });
    const resolved = gpu.device.createBuffer({
      size: count * 8,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const staging = gpu.device.createBuffer({
      size: count * 8,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      const enc = gpu.device.createCommandEncoder({ label: `${this.label} (timestamps)` });
      this.encode(enc, querySet);
      enc.resolveQuerySet(querySet, 0, count, resolved, 0);
      enc.copyBufferToBuffer(resolved, 0, staging, 0, count * 8);
      gpu.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const ticks = new BigUint64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      const out = new Map<string, { ms: number; count: number }>();
      dispatches.forEach((c, i) => {
        // Nanoseconds; a driver may report end < begin for an empty pass: count it as 0.
        const ns = ticks[2 * i + 1] > ticks[2 * i] ? Number(ticks[2 * i + 1] - ticks[2 * i]) : 0;
        const e = out.get(c.label) ?? { ms: 0, count: 0 };
        e.ms += ns / 1e6;
        e.count++;
        out.set(c.label, e);
      });
      return out;
    } finally {
      querySet.destroy();
      resolved.destroy();
      staging.destroy();
    }
  }

  /** Encodes and submits this list alone. */
  run(): void {
    const enc = this.gpu.device.createCommandEncoder({ label: this.label });
    this.encode(enc);
    this.gpu.submit([enc.finish()]);
  }
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Grid for a 1-D problem of n items with `perGroup` items per workgroup, folded into 2-D past the per-dimension limit. */
export function grid1d(n: number, perGroup: number, maxPerDim = 65535): Grid {
  const groups = Math.ceil(n / perGroup);
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}

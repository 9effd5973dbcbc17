/**
 * Property-based fuzzing harness (fast-check) for the file parsers: fixed seeds, a bounded number of cases
 * (FUZZ_RUNS for the long run, `npm run fuzz`), and the one property every parser shares: an input either loads,
 * or fails with the project's own error, which names the file. Never a raw TypeError/RangeError/SyntaxError from
 * deep inside, never a hang, and never an allocation sized by an untrusted field (guardAllocations).
 */
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import type { ByteSource, DirSource } from '../../src/model/formats/source';
import { bytesSource, decodeUtf8 } from '../../src/model/formats/source';

/** The seed every property starts from (FUZZ_SEED overrides it to explore further; failures print theirs). */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20240607);

/** Set for the long run (`npm run fuzz`): cases per property, before each property's share (fuzzRuns). */
const LONG_RUNS = Number(process.env.FUZZ_RUNS ?? 0);

/** Per fuzz test: long enough for the long run, short enough that a hang in CI fails in minutes, not hours. */
export const FUZZ_TIMEOUT = LONG_RUNS > 0 ? 1_800_000 : 120_000;

/** A case slower than this is a hang as far as a user dropping a file is concerned. */
export const CASE_LIMIT_MS = Number(process.env.FUZZ_CASE_MS ?? 5000);

/**
 * Cases for one property: `ci` in CI; in the long run FUZZ_RUNS times `share` (costly properties, such as those that
 * upload to the GPU, take a smaller share), never fewer than in CI.
 */
export function fuzzRuns(ci: number, share = 1): number {
  return LONG_RUNS > 0 ? Math.max(ci, Math.round(LONG_RUNS * share)) : ci;
}

/** A case still running after this is an endless loop: the watchdog prints it and stops the test process. */
const HANG_MS = Number(process.env.FUZZ_HANG_MS ?? 60_000);

/**
 * A synchronous endless loop blocks this thread, its timers and vitest's timeouts with it: a watchdog thread sees
 * the case's start time in shared memory, prints the case (name and input, also in shared memory) and kills the
 * process, so a hang fails the run within a minute, with its input, instead of stalling it.
 */
const watchdog = (() => {
  // state[0]: the running case's number (0: none); state[1]: its description's length in bytes.
  const shared = new SharedArrayBuffer(8 + 65536);
  const state = new Int32Array(shared, 0, 2);
  const text = new Uint8Array(shared, 8);
  let cases = 0;
  let worker: Worker | null = null;
  // The watchdog counts on its own clock how long the same case has been running: no time crosses threads.
  const code = `
    const { workerData } = require('node:worker_threads');
    const fs = require('node:fs');
    const { shared, limit } = workerData;
    const state = new Int32Array(shared, 0, 2);
    const text = new Uint8Array(shared, 8);
    let seen = 0;
    let since = Date.now();
    setInterval(() => {
      const running = Atomics.load(state, 0);
      if (running === 0 || running !== seen) {
        seen = running;
        since = Date.now();
      } else if (Date.now() - since > limit) {
        const input = Buffer.from(text.slice(0, Atomics.load(state, 1))).toString('utf8');
        fs.writeSync(2, '\\nfuzz: a case has run for over ' + limit + ' ms (an endless loop?); stopping. The case:\\n' + input + '\\n');
        process.kill(process.pid, 'SIGKILL');
      }
    }, 250);`;
  return {
    start(name: string, input: unknown): void {
      if (!worker) {
        worker = new Worker(code, { eval: true, workerData: { shared, limit: HANG_MS } });
        worker.on('error', (e) => console.error('fuzz: the hang watchdog failed to start', e));
        worker.unref();
      }
      const { written } = new TextEncoder().encodeInto(`${name} (seed ${FUZZ_SEED})\n${describeInput(input)}`, text);
      Atomics.store(state, 1, written);
      cases = (cases % 0x7fffffff) + 1;
      Atomics.store(state, 0, cases);
    },
    stop(): void {
      Atomics.store(state, 0, 0);
    },
  };
})();

/** A case's input as JSON, cheaply: a typed array (a whole file) is named by its size, not spelled out. */
function describeInput(input: unknown): string {
  return JSON.stringify(input, (_key, value) => {
    if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.byteLength} bytes)`;
    return typeof value === 'bigint' ? `${value}n` : value;
  });
}

/** What one property saw: cases run, inputs that loaded, inputs refused with a named error. */
export interface FuzzTally {
  cases: number;
  loaded: number;
  refused: number;
}

/**
 * Runs an async property with a fixed seed and `runs` cases, counting outcomes. `check` returns 'loaded' or
 * 'refused' (after asserting what each must satisfy) and throws on anything unexpected.
 */
export async function fuzz<T>(
  name: string,
  arbitrary: fc.Arbitrary<T>,
  runs: number,
  check: (input: T) => Promise<'loaded' | 'refused'>,
  /** A case's time limit; GPU properties (a forward pass on SwiftShader, on busy cores) need more than parsing. */
  caseLimitMs = CASE_LIMIT_MS,
): Promise<FuzzTally> {
  const tally: FuzzTally = { cases: 0, loaded: 0, refused: 0 };
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(arbitrary, async (input) => {
      watchdog.start(name, input);
      const t0 = performance.now();
      const outcome = await check(input).finally(() => watchdog.stop());
      const elapsed = performance.now() - t0;
      if (elapsed > caseLimitMs) throw new Error(`${name}: one case took ${Math.round(elapsed)} ms (a hang?)`);
      tally.cases++;
      tally[outcome]++;
    }),
    { seed: FUZZ_SEED, numRuns: runs, endOnFailure: true },
  );
  if (process.env.FUZZ_RUNS || process.env.FUZZ_REPORT) {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`fuzz ${name}: ${tally.cases} cases, ${tally.loaded} loaded, ${tally.refused} refused, ${seconds} s`);
  }
  return tally;
}

// ---------------------------------------------------------------------------------------------
// The shared property: the project's own, named error

/** Messages of the engine's own errors: a parser that let one through crashed inside instead of checking. */
const ENGINE_MESSAGES =
  /Cannot read propert|Cannot set propert|is not a function|is not iterable|is not a constructor|Cannot convert|Cannot use 'in' operator|Invalid array length|Invalid typed array length|Array buffer allocation failed|Maximum call stack|out of memory|Offset is outside the bounds|Invalid DataView|Start offset .* is outside/;

const RAW_ERRORS = [TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError];

/**
 * Why `err` is not the project's own named error, or null when it is: an Error (or a project subclass), not
 * a builtin TypeError/RangeError/..., whose message names one of `files` and does not carry an engine message,
 * unless it matches `wrapped` (a parser that deliberately quotes a library's reason, e.g. "not a readable Parquet
 * file (...)"); the same holds for its causes.
 */
export function namedErrorProblem(err: unknown, files: string[], wrapped?: RegExp): string | null {
  if (!(err instanceof Error)) return `threw a non-Error: ${String(err)}`;
  if (err instanceof AllocationError) return err.message;
  const raw = RAW_ERRORS.find((C) => err instanceof C);
  if (raw) return `raw ${err.constructor.name} from inside the parser: ${err.message}\n${err.stack}`;
  const quoted = wrapped?.test(err.message) ?? false;
  if (ENGINE_MESSAGES.test(err.message) && !quoted)
    return `an engine error passed on as the message: ${err.message}\n${err.stack}`;
  if (!files.some((f) => err.message.includes(f)))
    return `the message names none of ${files.join(', ')}: ${err.message}\n${err.stack}`;
  for (let cause = err.cause; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof AllocationError) return cause.message;
    if (RAW_ERRORS.some((C) => cause instanceof C) && !quoted)
      return `wraps a raw ${(cause as Error).constructor.name}: ${err.message}\n${(cause as Error).stack}`;
  }
  return null;
}

/** Runs `load`: 'loaded' when it returns (then `verify` checks the result), 'refused' for a named error. */
export async function loadsOrRefuses<T>(
  load: () => Promise<T> | T,
  files: string[],
  opts: { wrapped?: RegExp; verify?: (value: T) => Promise<void> | void } = {},
): Promise<'loaded' | 'refused'> {
  let value: T;
  try {
    value = await load();
  } catch (err) {
    const problem = namedErrorProblem(err, files, opts.wrapped);
    if (problem) throw new Error(problem);
    return 'refused';
  }
  await opts.verify?.(value);
  return 'loaded';
}

// ---------------------------------------------------------------------------------------------
// Allocations

/** An allocation over the case's limit: thrown (so it never happens) and recorded (in case a parser wraps it). */
export class AllocationError extends Error {}

const SIZED_CONSTRUCTORS = [
  'ArrayBuffer',
  'SharedArrayBuffer',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'Array',
] as const;

function bytesPerElement(name: string): number {
  if (name === 'ArrayBuffer' || name === 'SharedArrayBuffer') return 1;
  if (name === 'Array') return 8;
  return (globalThis as unknown as Record<string, { BYTES_PER_ELEMENT: number }>)[name].BYTES_PER_ELEMENT;
}

/**
 * Runs `body` with every buffer, typed-array and Array constructor of this realm checking the size it is asked for:
 * a numeric length over `limitBytes` throws AllocationError instead of allocating. The parsers look these
 * constructors up at call time, so a header-sized `new Float32Array(n)` anywhere below is caught before it happens.
 */
export async function guardAllocations<T>(limitBytes: number, body: () => Promise<T>): Promise<T> {
  const global = globalThis as unknown as Record<string, unknown>;
  const originals = new Map<string, unknown>();
  const violations: string[] = [];
  const check = (name: string, args: unknown[]) => {
    const n = args[0];
    if (typeof n !== 'number' || (name === 'Array' && args.length !== 1)) return;
    const bytes = n * bytesPerElement(name);
    if (bytes > limitBytes) {
      const message = `allocation of ${n} elements (${name}, ${bytes} bytes) over the limit of ${limitBytes} bytes for this input`;
      // Where it was asked for: a parser that wraps the AllocationError loses this stack.
      violations.push(`${message}\n${new Error().stack?.split('\n').slice(2, 8).join('\n')}`);
      throw new AllocationError(message);
    }
  };
  for (const name of SIZED_CONSTRUCTORS) {
    const original = global[name] as (new (...args: unknown[]) => object) | undefined;
    if (!original) continue;
    originals.set(name, original);
    const guarded: object = new Proxy(original, {
      construct(target, args, newTarget) {
        check(name, args);
        return Reflect.construct(target, args, newTarget === guarded ? target : newTarget);
      },
      apply(target, self, args) {
        check(name, args);
        return Reflect.apply(target as unknown as (...a: unknown[]) => unknown, self, args);
      },
    });
    global[name] = guarded;
  }
  let result: T;
  try {
    result = await body();
  } catch (err) {
    if (violations.length) throw new AllocationError(violations[0]);
    throw err;
  } finally {
    for (const [name, original] of originals) global[name] = original;
  }
  // A parser that caught the AllocationError and went on still asked for the allocation.
  if (violations.length) throw new AllocationError(violations[0]);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Sources that watch what a parser asks for

/** A ByteSource over bytes that records every range requested. */
export interface RecordingSource extends ByteSource {
  /** Requests that went past the end of the file (the parser should have checked first). */
  pastEnd: string[];
  largestRead: number;
}

export function recordingSource(name: string, bytes: Uint8Array): RecordingSource {
  const inner = bytesSource(name, bytes);
  const src: RecordingSource = {
    name,
    size: bytes.length,
    pastEnd: [],
    largestRead: 0,
    read(offset, length) {
      src.largestRead = Math.max(src.largestRead, length);
      if (!(offset >= 0 && length >= 0 && offset + length <= bytes.length))
        src.pastEnd.push(`read(${offset}, ${length}) of a ${bytes.length}-byte file`);
      return inner.read(offset, length);
    },
  };
  return src;
}

/** A folder of recording sources; `sources` lists them to check after a case. */
export function recordingDir(
  name: string,
  files: Record<string, Uint8Array | string>,
): DirSource & { sources: RecordingSource[] } {
  const encoder = new TextEncoder();
  const byName = new Map<string, RecordingSource>();
  for (const [file, content] of Object.entries(files)) {
    byName.set(
      file,
      recordingSource(`${name}/${file}`, typeof content === 'string' ? encoder.encode(content) : content),
    );
  }
  return {
    name,
    folder: name,
    sources: [...byName.values()],
    list: () => [...byName.keys()],
    file: (file) => byName.get(file),
    async text(file) {
      const src = byName.get(file);
      if (!src) throw new Error(`${name} has no file ${file}`);
      return decodeUtf8(await src.read(0, src.size), src.name);
    },
  };
}

/** Throws when a recorded source was asked for bytes past its end. */
export function expectReadsInside(sources: RecordingSource[]): void {
  for (const src of sources) {
    if (src.pastEnd.length) throw new Error(`${src.name}: the parser asked for ${src.pastEnd[0]}`);
    if (src.largestRead > src.size) throw new Error(`${src.name}: a read of ${src.largestRead} bytes`);
  }
}

// ---------------------------------------------------------------------------------------------
// Mutations

/** Byte values parsers care about: JSON punctuation, digits, UTF-8 lead/continuation bytes, extremes. */
const ODD_BYTES = [
  0, 1, 0x7f, 0x80, 0xbf, 0xc0, 0xff, 0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x39, 0x2d, 0x0a,
];

/** Little-endian integers parsers read as lengths, counts and offsets. */
const ODD_INTS = [0, 1, 2, 7, 8, 255, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 40, 2 ** 53 - 1, 2 ** 53, 2 ** 63];

export type ByteMutation =
  | { op: 'set'; at: number; value: number }
  | { op: 'flip'; at: number; bit: number }
  | { op: 'int'; at: number; value: number; width: 4 | 8 }
  | { op: 'insert'; at: number; bytes: number[] }
  | { op: 'delete'; at: number; length: number }
  | { op: 'truncate'; at: number };

/**
 * Mutations of a file of `size` bytes, positions drawn mostly from `focus` ([begin, end): a header, a footer),
 * otherwise anywhere.
 */
export function byteMutations(
  size: number,
  focus: [number, number] = [0, size],
  max = 4,
): fc.Arbitrary<ByteMutation[]> {
  const inFocus = fc.integer({ min: focus[0], max: Math.max(focus[0], focus[1] - 1) });
  const at = fc.oneof({ weight: 4, arbitrary: inFocus }, { weight: 1, arbitrary: fc.nat({ max: Math.max(0, size) }) });
  const mutation: fc.Arbitrary<ByteMutation> = fc.oneof(
    fc.record({ op: fc.constant('set' as const), at, value: fc.oneof(fc.constantFrom(...ODD_BYTES), fc.nat(255)) }),
    fc.record({ op: fc.constant('flip' as const), at, bit: fc.nat(7) }),
    fc.record({
      op: fc.constant('int' as const),
      at,
      value: fc.oneof(fc.constantFrom(...ODD_INTS), fc.integer({ min: -1, max: size + 16 })),
      width: fc.constantFrom(4 as const, 8 as const),
    }),
    fc.record({
      op: fc.constant('insert' as const),
      at,
      bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 16 }),
    }),
    fc.record({ op: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({ op: fc.constant('truncate' as const), at }),
  );
  return fc.array(mutation, { minLength: 1, maxLength: max });
}

export function applyByteMutations(bytes: Uint8Array, mutations: ByteMutation[]): Uint8Array {
  let out = bytes.slice();
  for (const m of mutations) {
    const at = Math.min(m.at, out.length);
    switch (m.op) {
      case 'set':
        if (at < out.length) out[at] = m.value;
        break;
      case 'flip':
        if (at < out.length) out[at] ^= 1 << m.bit;
        break;
      case 'int': {
        const room = out.length - at;
        if (room < m.width) break;
        const view = new DataView(out.buffer, out.byteOffset + at, m.width);
        if (m.width === 4) view.setUint32(0, m.value >>> 0, true);
        else view.setBigUint64(0, BigInt.asUintN(64, BigInt(Math.trunc(m.value))), true);
        break;
      }
      case 'insert': {
        const next = new Uint8Array(out.length + m.bytes.length);
        next.set(out.subarray(0, at));
        next.set(m.bytes, at);
        next.set(out.subarray(at), at + m.bytes.length);
        out = next;
        break;
      }
      case 'delete': {
        const end = Math.min(out.length, at + m.length);
        const next = new Uint8Array(out.length - (end - at));
        next.set(out.subarray(0, at));
        next.set(out.subarray(end), at);
        out = next;
        break;
      }
      case 'truncate':
        out = out.slice(0, at);
        break;
    }
  }
  return out;
}

/** JSON values that break naive readers: wrong types, extremes, regex metacharacters, prototype names. */
export const oddValues: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    false,
    0,
    -1,
    1,
    2,
    3,
    0.5,
    -0.5,
    1e-300,
    1e300,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    2 ** 53 + 2,
    -(2 ** 31),
    1e15,
    '',
    ' ',
    '(',
    '[',
    '*',
    '.*',
    'a|b',
    '__proto__',
    'constructor',
    'toString',
    'NaN',
    '1',
    'null',
    [],
    {},
    [null],
    [[]],
    [1, 2],
    ['a', 1],
    { a: 1 },
  ),
  fc.integer({ min: -4, max: 70 }),
  fc.string({ maxLength: 8 }),
  fc.jsonValue({ maxDepth: 2 }),
);

/** A path into a JSON value: object keys and array indices. */
export type JsonPath = (string | number)[];

/** Every path in `value` (the root included), for mutations to pick from. */
export function jsonPaths(value: unknown, prefix: JsonPath = [], out: JsonPath[] = [], limit = 4000): JsonPath[] {
  out.push(prefix);
  if (out.length >= limit) return out;
  if (Array.isArray(value)) value.forEach((v, i) => jsonPaths(v, [...prefix, i], out, limit));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) jsonPaths(v, [...prefix, k], out, limit);
  return out;
}

export type JsonMutation =
  | { op: 'replace'; path: JsonPath; value: unknown }
  | { op: 'delete'; path: JsonPath }
  | { op: 'add'; path: JsonPath; key: string; value: unknown }
  | { op: 'copy'; path: JsonPath; from: JsonPath };

/**
 * Mutations of a JSON document: values replaced, keys deleted or added (`keys`: names the parser reads, `values`:
 * what replaces a value, default oddValues), at paths `keep` accepts (e.g. a few of a vocabulary's thousand entries).
 */
export function jsonMutations(
  doc: unknown,
  keys: string[],
  max = 3,
  opts: { values?: fc.Arbitrary<unknown>; keep?: (path: JsonPath) => boolean } = {},
): fc.Arbitrary<JsonMutation[]> {
  const paths = jsonPaths(doc).filter((p) => opts.keep?.(p) ?? true);
  const path = fc.constantFrom(...paths);
  const value = opts.values ?? oddValues;
  const key = fc.oneof(fc.constantFrom(...keys, '__proto__', 'constructor', ''), fc.string({ maxLength: 6 }));
  const mutation: fc.Arbitrary<JsonMutation> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('replace' as const), path, value }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), path }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('add' as const), path, key, value }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('copy' as const), path, from: path }) },
  );
  return fc.array(mutation, { minLength: 1, maxLength: max });
}

/** Sets an own property, even "__proto__" (which `o[k] = v` would turn into a prototype change). */
function setOwn(target: Record<string | number, unknown>, key: string | number, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function getAt(doc: unknown, path: JsonPath): unknown {
  let v = doc;
  for (const k of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v as object, k)) return undefined;
    v = (v as Record<string | number, unknown>)[k];
  }
  return v;
}

/** Applies mutations to a deep copy of `doc`; a mutation whose path no longer exists is skipped. */
export function applyJsonMutations(doc: unknown, mutations: JsonMutation[]): unknown {
  let root: unknown = structuredClone(doc);
  for (const m of mutations) {
    const fresh =
      m.op === 'copy' ? structuredClone(getAt(root, m.from)) : structuredClone((m as { value?: unknown }).value);
    if (m.path.length === 0) {
      if (m.op === 'replace' || m.op === 'copy') root = fresh;
      else if (m.op === 'add' && root !== null && typeof root === 'object' && !Array.isArray(root))
        setOwn(root as Record<string, unknown>, m.key, fresh);
      continue;
    }
    const parent = getAt(root, m.path.slice(0, -1));
    const last = m.path[m.path.length - 1];
    if (parent === null || typeof parent !== 'object' || !Object.hasOwn(parent, last)) continue;
    const target = parent as Record<string | number, unknown>;
    if (m.op === 'replace' || m.op === 'copy') setOwn(target, last, fresh);
    else if (m.op === 'delete') {
      if (Array.isArray(target)) target.splice(last as number, 1);
      else delete target[last];
    } else {
      const child = target[last];
      if (Array.isArray(child)) child.push(fresh);
      else if (child !== null && typeof child === 'object') setOwn(child as Record<string, unknown>, m.key, fresh);
    }
  }
  return root;
}

export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

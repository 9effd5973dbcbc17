/**
 * The Web Locks the studio's tabs share (tab-locks.ts), over an in-memory LockManager with the semantics the studio
 * relies on: exclusive locks granted in request order, `ifAvailable` answering null at once when held, a lock
 * released when its callback's promise settles. Two "tabs" are two claims on one manager.
 */
import { describe, expect, test } from 'vitest';
import { claimGpu, exclusive, GPU_LOCK, RECORDS_LOCK, type GpuRole, type Locks } from '../src/app/tab-locks';

/** The handover wait, shortened for the tests (the studio waits HANDOVER_MS). */
const HANDOVER = 30;

/** navigator.locks for exclusive locks, as the browser grants them. */
export function memoryLocks(): Locks & { held: Set<string> } {
  const held = new Set<string>();
  const queues = new Map<string, (() => void)[]>();
  const release = (name: string) => {
    held.delete(name);
    queues.get(name)?.shift()?.();
  };
  function request<T>(
    name: string,
    a: LockOptions | ((lock: Lock | null) => Promise<T> | T),
    b?: (lock: Lock | null) => Promise<T> | T,
  ): Promise<T> {
    const options = typeof a === 'function' ? {} : a;
    const callback = (typeof a === 'function' ? a : b)!;
    if (options.ifAvailable && held.has(name)) return Promise.resolve().then(() => callback(null));
    return new Promise<T>((resolve, reject) => {
      const grant = () => {
        held.add(name);
        Promise.resolve()
          .then(() => callback({ name, mode: 'exclusive' } as Lock))
          .then(resolve, reject)
          .finally(() => release(name));
      };
      if (held.has(name)) queues.set(name, [...(queues.get(name) ?? []), grant]);
      else grant();
    });
  }
  return { held, request: request as Locks['request'] };
}

/** A tab's claim on the GPU, with every role it went through and a way to close the tab. */
function tab(locks: Locks | null) {
  const roles: GpuRole[] = [];
  const closing = new AbortController();
  const claim = claimGpu(locks, (role) => roles.push(role), closing.signal, HANDOVER);
  return { claim, roles, close: () => closing.abort() };
}

describe('the GPU lock', () => {
  test('the first tab owns the GPU; the second waits, and takes over when the first closes', async () => {
    const locks = memoryLocks();
    const a = tab(locks);
    expect(await a.claim.decided).toBe(true);
    expect(a.roles).toEqual(['asking', 'owner']);
    expect(locks.held.has(GPU_LOCK)).toBe(true);

    const b = tab(locks);
    expect(await b.claim.decided).toBe(false);
    expect(b.roles).toEqual(['asking', 'waiting']);
    let granted = false;
    void b.claim.granted.then(() => (granted = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(granted).toBe(false);

    a.close();
    await b.claim.granted;
    expect(b.roles).toEqual(['asking', 'waiting', 'owner']);
    expect(locks.held.has(GPU_LOCK)).toBe(true);
  });

  test('a reload: the new page asks before the old one has let go, and still owns the GPU without waiting', async () => {
    const locks = memoryLocks();
    const before = tab(locks);
    await before.claim.granted;
    const after = tab(locks);
    setTimeout(before.close, HANDOVER / 3); // the browser releases the old page's lock a moment later
    expect(await after.claim.decided).toBe(true);
    expect(after.roles).toEqual(['asking', 'owner']);
  });

  test('without Web Locks a tab works alone; a refused request (an opaque origin) too', async () => {
    const a = tab(null);
    expect(await a.claim.decided).toBe(true);
    await a.claim.granted;
    expect(a.roles).toEqual(['alone']);

    const refusing: Locks = { request: () => Promise.reject(new DOMException('opaque origin', 'SecurityError')) };
    const b = tab(refusing);
    expect(await b.claim.decided).toBe(true);
    expect(b.roles).toEqual(['asking', 'alone']);
  });
});

describe('exclusive writes', () => {
  test('one read-modify-write at a time: two tabs incrementing a shared counter lose no increment', async () => {
    const locks = memoryLocks();
    let stored = 0;
    const tick = () => new Promise((r) => setTimeout(r, 1));
    const increment = () =>
      exclusive(
        RECORDS_LOCK,
        async () => {
          const read = stored;
          await tick(); // another tab would write here without the lock
          stored = read + 1;
          return stored;
        },
        locks,
      );
    await Promise.all(Array.from({ length: 20 }, increment));
    expect(stored).toBe(20);
    expect(locks.held.size).toBe(0);
  });

  test("the write's own error reaches the caller; a refused lock runs the write unguarded", async () => {
    const locks = memoryLocks();
    await expect(exclusive(RECORDS_LOCK, () => Promise.reject(new Error('full')), locks)).rejects.toThrow('full');
    expect(locks.held.size).toBe(0);
    const refusing: Locks = { request: () => Promise.reject(new DOMException('detached', 'InvalidStateError')) };
    expect(await exclusive(RECORDS_LOCK, async () => 'written', refusing)).toBe('written');
    expect(await exclusive(RECORDS_LOCK, async () => 'alone', null)).toBe('alone');
  });
});

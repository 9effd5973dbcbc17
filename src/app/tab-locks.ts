/**
 * Web Locks shared by the studio's tabs: one tab at a time owns the GPU (its worker trains; the others wait in
 * the lock's queue and take over when that tab closes: the browser releases a closed page's locks), and one
 * write at a time changes stored records (each write reads what is stored and merges its own changes onto it).
 * Without navigator.locks every tab works alone, as before these locks existed.
 */

/** Held by the tab whose worker uses the GPU, until the tab closes. */
export const GPU_LOCK = 'lora-studio-gpu';
/** Held around each read-merge-write of stored run and experiment records. */
export const RECORDS_LOCK = 'lora-studio-records';

/** The part of navigator.locks the studio uses (a fake in tests). */
export interface Locks {
  request<T>(name: string, callback: (lock: Lock | null) => Promise<T> | T): Promise<T>;
  request<T>(name: string, options: LockOptions, callback: (lock: Lock | null) => Promise<T> | T): Promise<T>;
}

export function browserLocks(): Locks | null {
  return (globalThis.navigator?.locks as Locks | undefined) ?? null;
}

/** Runs `write` holding `name`; without Web Locks (or where the page may not take them) it runs unguarded. */
export async function exclusive<T>(name: string, write: () => Promise<T>, locks = browserLocks()): Promise<T> {
  if (!locks) return write();
  let ran = false;
  try {
    return await locks.request(name, () => {
      ran = true;
      return write();
    });
  } catch (err) {
    // The write's own failure is the caller's; a refused lock (an opaque origin, a detached page) is not.
    if (ran) throw err;
    return write();
  }
}

/**
 * Who uses the GPU from this tab's point of view: 'asking' until the lock answers, 'owner' (this tab's worker),
 * 'waiting' (another tab's worker; this one takes over when it closes), 'alone' (no Web Locks: no coordination).
 */
export type GpuRole = 'asking' | 'owner' | 'waiting' | 'alone';

export interface GpuClaim {
  /** Resolves with the first answer: true when this tab may use the GPU now, false when another tab has it. */
  decided: Promise<boolean>;
  /** Resolves once this tab may use the GPU (at once, or when the tab holding it closes). */
  granted: Promise<void>;
}

/**
 * How long a lock held elsewhere may take to come free before this tab says another tab has the GPU: a reloading
 * tab's new page can ask before the browser has released the old page's lock.
 */
export const HANDOVER_MS = 1000;

/**
 * Asks for the GPU lock and keeps it for the page's life once granted (`release`, for tests, gives it back).
 * `onRole` hears every change of role.
 */
export function claimGpu(
  locks: Locks | null,
  onRole: (role: GpuRole) => void,
  release?: AbortSignal,
  handoverMs = HANDOVER_MS,
): GpuClaim {
  let decide!: (owner: boolean) => void;
  let grant!: () => void;
  const decided = new Promise<boolean>((r) => (decide = r));
  const granted = new Promise<void>((r) => (grant = r));
  let owner = false;
  const alone = () => {
    onRole('alone');
    decide(true);
    grant();
  };
  const hold = () => {
    owner = true;
    onRole('owner');
    decide(true);
    grant();
    return new Promise<void>((done) => release?.addEventListener('abort', () => done()));
  };
  if (!locks) {
    alone();
    return { decided, granted };
  }
  onRole('asking');
  locks
    .request(GPU_LOCK, { ifAvailable: true }, (lock) => {
      if (lock) return hold();
      // In the lock's queue: granted when the tab holding it closes.
      void locks.request(GPU_LOCK, hold).catch(alone);
      setTimeout(() => {
        if (owner) return;
        onRole('waiting');
        decide(false);
      }, handoverMs);
      return undefined;
    })
    .catch(alone);
  return { decided, granted };
}

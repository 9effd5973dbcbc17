/**
 * The studio's test hook for GPU device loss. Opened with `?test-hooks` in the URL (or localStorage
 * "lora-studio:test-hooks" = "1"), the page tells the worker so at init, and `window.loraStudioTest.loseDevice()`
 * destroys the worker's GPUDevice: its lost event arrives with reason "destroyed" and the studio recovers as from a
 * real loss (e2e/device-loss.spec.ts). Without the flag the worker refuses the command.
 */
import type { Command } from '../worker/protocol';

export const TEST_HOOKS_PARAM = 'test-hooks';
export const TEST_HOOKS_KEY = 'lora-studio:test-hooks';

export interface TestHooks {
  /** Destroys the worker's GPU device (the recovery follows by itself). */
  loseDevice(): void;
}

/** Whether this page was opened for tests: `?test-hooks` in `search`, or the localStorage flag. */
export function testHooksEnabled(search: string, stored: string | null): boolean {
  return new URLSearchParams(search).has(TEST_HOOKS_PARAM) || stored === '1';
}

/** The page's own flag (false where there is no window, e.g. in node tests). */
export function pageWantsTestHooks(): boolean {
  if (typeof window === 'undefined') return false;
  let stored: string | null = null;
  try {
    stored = window.localStorage.getItem(TEST_HOOKS_KEY);
  } catch {
    // Storage can be blocked; the URL alone decides then.
  }
  return testHooksEnabled(window.location.search, stored);
}

/** Puts `window.loraStudioTest` in place when the page was opened for tests; returns whether it did. */
export function installTestHooks(send: (cmd: Command) => void): boolean {
  if (!pageWantsTestHooks()) return false;
  const hooks: TestHooks = { loseDevice: () => send({ type: 'debugLoseDevice' }) };
  (window as unknown as { loraStudioTest: TestHooks }).loraStudioTest = hooks;
  return true;
}

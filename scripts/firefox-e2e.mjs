/**
 * `npm run test:e2e:firefox`: the studio's e2e test in Firefox (e2e-firefox/, node:test + puppeteer-core over
 * WebDriver BiDi). Without firefox-esr (or SwiftShader's Vulkan driver) it is skipped with a message, except in CI
 * (CI set), where that is an error: CI must run it (scripts/ensure-system.sh installs firefox-esr as root).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { firefoxMissing } from '../e2e-firefox/browsers.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CI = !!process.env.CI && !['0', 'false'].includes(process.env.CI.toLowerCase());
/** The test's own limits are 4 minutes a browser; this catches a hang outside them. */
const WATCHDOG_MS = 10 * 60_000;

const missing = firefoxMissing();
if (missing) {
  if (CI) {
    console.error(`\nERROR: the Firefox e2e test cannot run in CI: ${missing}.\n`);
    process.exit(1);
  }
  console.warn(`\nSkipping the Firefox e2e test: ${missing}. (In CI this is an error.)\n`);
  process.exit(0);
}

// Its own process group (the test starts vite and the browsers): a hang or Ctrl-C stops all of it.
const child = spawn(process.execPath, ['--test', '--test-reporter=spec', 'e2e-firefox/studio.test.mjs'], {
  cwd: ROOT,
  stdio: 'inherit',
  detached: true,
});
const stop = (why) => {
  if (why) console.error(`\nERROR: ${why}: stopping the Firefox e2e test.\n`);
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    // Already gone.
  }
};
const watchdog = setTimeout(() => stop(`still running after ${WATCHDOG_MS / 60_000} minutes`), WATCHDOG_MS);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stop(signal));
child.on('exit', (code, signal) => {
  clearTimeout(watchdog);
  process.exit(code ?? (signal ? 1 : 0));
});

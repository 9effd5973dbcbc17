/**
 * The built studio on its own port, beside the Playwright suite's: `vite build` into dist-<port>/ (git-ignored, as
 * the Playwright builds), then `vite preview` on that port (a port in use is an error, never someone else's server).
 */
import { spawn, spawnSync } from 'node:child_process';

export const PORT = Number(process.env.FIREFOX_E2E_PORT ?? 4331);

/** Builds the app and serves it; resolves with its URL and a stop function once it answers. */
export async function serveStudio(port = PORT) {
  const url = `http://localhost:${port}/`;
  if (await answers(url)) throw new Error(`Port ${port} is in use: stop what serves ${url} or set FIREFOX_E2E_PORT`);
  const outDir = `dist-${port}`;
  const build = spawnSync('npx', ['vite', 'build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`vite build failed (exit ${build.status}):\n${build.stderr}`);
  // Its own process group, so that stopping it also stops the node process npx starts.
  const server = spawn('npx', ['vite', 'preview', '--outDir', outDir, '--port', String(port), '--strictPort'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  server.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => server.once('exit', resolve));
  const stop = async () => {
    if (server.exitCode !== null || server.signalCode !== null) return;
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
    await exited;
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exitCode !== null)
      throw new Error(`vite preview on port ${port} exited (${server.exitCode}):\n${stderr}`);
    if (await answers(url)) return { url, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`vite preview did not answer on ${url} within 60 s:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function answers(url) {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
}

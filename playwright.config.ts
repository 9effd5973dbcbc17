/**
 * End-to-end tests of the built studio in the system Chromium with WebGPU. Without a GPU, Chromium
 * falls back to SwiftShader (a CPU Vulkan): everything works, slowly, so the tests train tiny runs.
 */
import { defineConfig } from 'playwright/test';

// E2E_PORT runs a second suite beside the first (its own port, build and results folders).
const PORT = Number(process.env.E2E_PORT ?? 4317);
const SUFFIX = process.env.E2E_PORT ? `-${PORT}` : '';

export default defineConfig({
  testDir: 'e2e',
  timeout: 8 * 60_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: `test-results${SUFFIX}`,
  use: {
    baseURL: `http://localhost:${PORT}`,
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1360, height: 900 },
    acceptDownloads: true,
    launchOptions: {
      executablePath: process.env.CHROME_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--enable-unsafe-webgpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  webServer: {
    command: `npx vite build --outDir dist${SUFFIX} && npx vite preview --outDir dist${SUFFIX} --port ${PORT} --strictPort`,
    url: `http://localhost:${PORT}`,
    reuseExistingServer: !process.env.CI,
    timeout: 180_000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});

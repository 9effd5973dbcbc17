/**
 * The studio end to end in Firefox (Debian's firefox-esr, WebGPU through wgpu; SwiftShader without a GPU), driven
 * by puppeteer-core over WebDriver BiDi: "Try the demo → train → compare → export". The same steps then run in
 * Chromium (Dawn) as the reference: both browsers must agree on GoRA's ranks, the parameter counts, the validation
 * losses and the exported adapter's weights.
 *
 * Run it with `npm run test:e2e:firefox` (scripts/firefox-e2e.mjs: it skips, outside CI, when firefox-esr is
 * missing). Screenshots of the panels go to e2e-artifacts/firefox-e2e/ (firefox-*.png, chromium-*.png).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { firefoxMissing, launchChromium, launchFirefox } from './browsers.mjs';
import { serveStudio } from './server.mjs';
import { demoFlow } from './studio-flow.mjs';

const ARTIFACTS = 'e2e-artifacts/firefox-e2e';
const t0 = Date.now();
const log = (line) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${line}\n`);

let studio;
let downloads;
let firefox = null;

before(async () => {
  const missing = firefoxMissing();
  if (missing) throw new Error(`Cannot run the Firefox e2e test: ${missing}`);
  downloads = mkdtempSync(join(tmpdir(), 'lora-studio-firefox-e2e-'));
  studio = await serveStudio();
  log(`studio built and served at ${studio.url}`);
});

after(async () => {
  await studio?.stop();
  if (downloads) rmSync(downloads, { recursive: true, force: true });
});

test('Firefox: Try the demo → train → compare → export', { timeout: 4 * 60_000 }, async () => {
  const { browser, version, vulkan } = await launchFirefox();
  log(`${version}, Vulkan driver ${vulkan.icd}`);
  try {
    firefox = await demoFlow(browser, {
      url: studio.url,
      downloadDir: join(downloads, 'firefox'),
      artifacts: ARTIFACTS,
      prefix: 'firefox',
      // SwiftShader is a fallback adapter: the studio badges it "software".
      expectSoftware: vulkan.swiftshader,
      log,
    });
  } finally {
    await browser.close();
  }
});

// The Chromium reference (under puppeteer) hung after loading the demo in a fresh-clone CI run: opt-in until diagnosed.
test('Chromium (Dawn) trains the same runs to the same losses and adapter', { timeout: 4 * 60_000 }, async (t) => {
  if (!process.env.FIREFOX_E2E_CHROMIUM) return t.skip('set FIREFOX_E2E_CHROMIUM=1 to compare with Chromium');
  if (!firefox) return t.skip('the Firefox run did not finish');
  const { browser, version } = await launchChromium();
  log(version);
  let chromium;
  try {
    chromium = await demoFlow(browser, {
      url: studio.url,
      downloadDir: join(downloads, 'chromium'),
      artifacts: ARTIFACTS,
      prefix: 'chromium',
      expectSoftware: false,
      log,
    });
  } finally {
    await browser.close();
  }
  // The same ranks and parameter counts (GoRA's come from its gradients), and losses to the table's 3 decimals.
  const same = (rows) => rows.map((r) => [r.method, r.ranks, r.params]);
  assert.deepEqual(same(firefox.rows), same(chromium.rows));
  for (let i = 0; i < firefox.rows.length; i++) {
    const [f, c] = [firefox.rows[i], chromium.rows[i]];
    for (const key of ['finalValLoss', 'delta'])
      assert.ok(
        Math.abs(Number(f[key]) - Number(c[key])) <= 0.0015,
        `${f.method}'s ${key}: Firefox ${f[key]}, Chromium ${c[key]}`,
      );
  }
  // The LoRA adapters agree weight by weight, each tensor to 1e-3 of its largest value (B is only a few steps of
  // AdamW from zero: a wrong update shows): bit for bit on SwiftShader; another driver may round differently.
  const names = Object.keys(firefox.adapter).sort();
  assert.deepEqual(names, Object.keys(chromium.adapter).sort());
  let worst = { name: '', ratio: 0, diff: 0 };
  let identical = 0;
  for (const name of names) {
    const [f, c] = [firefox.adapter[name].values, chromium.adapter[name].values];
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < c.length; i++) {
      diff = Math.max(diff, Math.abs(f[i] - c[i]));
      scale = Math.max(scale, Math.abs(c[i]));
    }
    if (diff === 0) identical++;
    else if (diff / scale > worst.ratio) worst = { name, ratio: diff / scale, diff };
  }
  log(`adapter weights: ${identical} of ${names.length} tensors identical; worst ${JSON.stringify(worst)}`);
  assert.ok(worst.ratio <= 1e-3, `${worst.name}: Firefox's and Chromium's weights differ by up to ${worst.diff}`);
});

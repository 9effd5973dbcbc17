/**
 * "Try the demo → train → compare → export" through puppeteer-core, the same steps in Firefox (WebDriver BiDi) and
 * Chromium (CDP), with the testids of e2e/studio.spec.ts: the GPU badge, the demo's model on the GPU, two of its
 * runs shrunk so SwiftShader trains them in seconds (LoRA, and GoRA with its gradient-based preparation), their
 * loss curves and comparison rows, the LoRA adapter downloaded as a PEFT zip, and screenshots of the panels.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { json, readSafetensors, readZip, stats } from './adapter.mjs';

/** stories260K (public/demo/model/config.json): hidden 64, 4 KV heads of 8, intermediate 172, 5 layers. */
export const LAYERS = 5;
export const SHAPES = {
  'self_attn.q_proj': [64, 64],
  'self_attn.k_proj': [64, 32],
  'self_attn.v_proj': [64, 32],
  'self_attn.o_proj': [64, 64],
  'mlp.gate_proj': [64, 172],
  'mlp.up_proj': [64, 172],
  'mlp.down_proj': [172, 64],
};
export const LORA = 'LoRA all-linear r=8';
export const GORA = 'GoRA all-linear r_ref=8';
const STEPS = 3;

/** As e2e/studio.spec.ts shrinks the demo's runs. */
const SHRINK = {
  Steps: String(STEPS),
  Batch: '2',
  'Seq. length': '32',
  'Val. examples': '4',
  'Eval every': '0',
  Warmup: '0',
};

const byTestId = (id) => `[data-testid="${id}"]`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` in the page until it returns something truthy (returned); `{ failed: message }` stops at once. The
 * error on timeout names what it waited for and the last value seen.
 */
async function poll(page, what, fn, arg, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (last && typeof last === 'object' && 'failed' in last) throw new Error(`${what}: ${last.failed}`);
    if (last) return last;
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs / 1000} s waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(250);
  }
}

/** Types `value` into the card's number field labelled `label`, as a user does (select all, type). */
async function fill(card, label, value) {
  const input = await card.evaluateHandle(
    (c, l) =>
      [...c.querySelectorAll('label.field')]
        .find((f) => f.querySelector('.field-label')?.textContent === l)
        ?.querySelector('input') ?? null,
    label,
  );
  assert.ok(input.asElement(), `no field "${label}" on the run card`);
  await input.evaluate((e) => {
    e.focus();
    e.select();
  });
  await input.type(value);
  assert.equal(await input.evaluate((e) => e.value), value, `the field "${label}"`);
}

/** A panel as an image: a tall window so that it fits, and the sticky top bar and toasts hidden. */
async function shootPanel(page, id, path) {
  const viewport = page.viewport();
  await page.setViewport({ ...viewport, height: 2400 });
  const style = await page.addStyleTag({ content: '.topbar, .toasts { visibility: hidden !important; }' });
  const panel = await page.$(byTestId(`panel-${id}`));
  assert.ok(panel, `no panel-${id}`);
  await panel.scrollIntoView();
  // Charts re-layout after the resize: shoot once the panel's box holds still for a few frames.
  await poll(
    page,
    `panel-${id} to hold still`,
    async (testId) => {
      const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const box = () => JSON.stringify(document.querySelector(`[data-testid="${testId}"]`).getBoundingClientRect());
      const before = box();
      await frame();
      await new Promise((r) => setTimeout(r, 150));
      return box() === before;
    },
    `panel-${id}`,
  );
  await panel.screenshot({ path });
  await style.evaluate((s) => s.remove());
  await page.setViewport(viewport);
}

/** Waits until the browser has saved `name` in `dir` (no partial file left) and returns its bytes. */
async function downloaded(dir, name, timeoutMs = 30_000) {
  const path = join(dir, name);
  const deadline = Date.now() + timeoutMs;
  let size = -1;
  for (;;) {
    const partial = readdirSync(dir).some((f) => f.endsWith('.part') || f.endsWith('.crdownload'));
    if (existsSync(path) && !partial) {
      // Complete once its size holds between two looks.
      const now = statSync(path).size;
      if (now > 0 && now === size) return readFileSync(path);
      size = now;
    }
    if (Date.now() > deadline)
      throw new Error(`${name} was not downloaded within ${timeoutMs / 1000} s (in ${dir}: ${readdirSync(dir)})`);
    await sleep(250);
  }
}

/**
 * The flow in `browser`, on the studio at `url`. Downloads go to `downloadDir`, screenshots to
 * `${artifacts}/${prefix}-*.png`. Returns what the two browsers are compared on.
 */
export async function demoFlow(browser, { url, downloadDir, artifacts, prefix, expectSoftware, log }) {
  mkdirSync(downloadDir, { recursive: true });
  mkdirSync(artifacts, { recursive: true });
  // A fresh context: empty storage, and downloads saved to downloadDir (WebDriver BiDi's browser.setDownloadBehavior
  // in Firefox, CDP's in Chromium).
  const context = await browser.createBrowserContext({
    downloadBehavior: { policy: 'allow', downloadPath: downloadDir },
  });
  const page = await context.newPage();
  const pageErrors = [];
  const consoleErrors = [];
  page.on('pageerror', (e) => {
    pageErrors.push(e.message);
    log(`[${prefix} page error] ${e.message}`);
  });
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warn') return;
    if (m.type() === 'error') consoleErrors.push(m.text());
    log(`[${prefix} console.${m.type()}] ${m.text()}`);
  });

  try {
    // The studio opens the GPU.
    await page.goto(url);
    // The GPU badge once the GPU is open; the page that explains how to get WebGPU fails the test with its reason.
    const badge = await poll(
      page,
      'the GPU badge',
      () => {
        const missing = document.querySelector('[data-testid="no-webgpu"]');
        if (missing) return { failed: `the studio found no WebGPU: ${missing.querySelector('.small')?.textContent}` };
        const b = document.querySelector('[data-testid="gpu-badge"]');
        return b && !b.textContent.includes('Opening the GPU') && b.textContent;
      },
      undefined,
      60_000,
    );
    log(`${prefix}: GPU badge "${badge}"`);
    assert.doesNotMatch(badge, /No WebGPU/);
    if (expectSoftware) assert.match(badge, /software/, 'a CPU adapter (SwiftShader) is badged "software"');

    // Try the demo: its model on the GPU, four runs drafted.
    await page.click(byTestId('try-demo'));
    await poll(page, 'the demo model card', () =>
      document.querySelector('[data-testid="model-card"]')?.textContent.includes('stories260K'),
    );
    await poll(
      page,
      'the demo model on the GPU',
      () => document.querySelector('[data-testid="model-status"]')?.textContent === 'On the GPU',
      undefined,
      120_000,
    );
    const drafts = await poll(page, 'the demo runs', () => {
      const cards = [...document.querySelectorAll('[data-testid="run-card"]')];
      return cards.length === 4 && cards.map((c) => ({ name: c.getAttribute('aria-label'), id: c.dataset.runId }));
    });
    assert.deepEqual(
      drafts.map((d) => d.name),
      [LORA, GORA, 'GraLoRA all-linear r=8 k=2', 'GeLoRA all-linear r_ref=8'],
    );
    const [lora, gora] = drafts;
    log(`${prefix}: demo loaded`);

    // Two runs, shrunk, started one after the other (the queue); GoRA on 2 gradient batches.
    const card = async (id) => page.$(`[data-testid="run-card"][data-run-id="${id}"]`);
    for (const [run, extra] of [
      [lora, {}],
      [gora, { 'N batches': '2' }],
    ]) {
      const el = await card(run.id);
      for (const [label, value] of Object.entries({ ...SHRINK, ...extra })) await fill(el, label, value);
      await (await el.$(byTestId('run-start'))).click();
    }
    const started = Date.now();
    await poll(
      page,
      'both runs to finish',
      (ids) => {
        const cards = ids.map((id) => document.querySelector(`[data-testid="run-card"][data-run-id="${id}"]`));
        const failed = cards.find((c) => c?.dataset.status === 'failed');
        if (failed)
          return {
            failed: `"${failed.getAttribute('aria-label')}" failed: ${failed.querySelector('[data-testid="run-message"]')?.textContent}`,
          };
        return cards.every((c) => c?.dataset.status === 'done');
      },
      [lora.id, gora.id],
      4 * 60_000,
    );
    const trainSeconds = (Date.now() - started) / 1000;
    log(`${prefix}: both runs done in ${trainSeconds.toFixed(1)} s`);
    for (const run of [lora, gora])
      assert.equal(await (await card(run.id)).$(byTestId('run-message')), null, `${run.name} has a message`);

    // Curves: both runs have their points; the loss chart draws them.
    for (const run of [lora, gora])
      await poll(
        page,
        `${run.name}'s ${STEPS} loss points`,
        ([id, steps]) =>
          document.querySelector(`[data-testid="loss-legend"][data-run-id="${id}"]`)?.dataset.points === steps,
        [run.id, String(STEPS)],
      );
    await poll(
      page,
      'two loss curves',
      () => document.querySelectorAll('[data-testid="loss-chart"] .recharts-line path.recharts-curve').length >= 2,
    );

    // The comparison: both runs, with their ranks, parameters and validation losses.
    const rows = await poll(page, 'two comparison rows with losses', () => {
      const rows = [...document.querySelectorAll('[data-testid="comparison-row"]')];
      if (rows.length !== 2) return null;
      return rows.map((r) => {
        const text = (id) => r.querySelector(`[data-testid="${id}"]`)?.textContent.trim() ?? null;
        const finalCell = r.querySelector('[data-testid="final-val-loss"]');
        return {
          status: r.dataset.status,
          method: text('comparison-method'),
          ranks: text('comparison-ranks'),
          params: text('comparison-params'),
          // The loss without its badges ("best", "not comparable").
          finalValLoss: finalCell?.firstChild?.textContent.trim() ?? null,
          // Δ: two cells on (after the perplexity).
          delta: finalCell?.nextElementSibling?.nextElementSibling?.textContent.trim() ?? null,
        };
      });
    });
    log(`${prefix}: comparison ${JSON.stringify(rows)}`);
    assert.deepEqual(
      rows.map((r) => [r.method, r.status]),
      [
        ['LoRA', 'done'],
        ['GoRA', 'done'],
      ],
    );
    assert.equal(rows[0].ranks, '8');
    assert.equal(rows[0].params, '46.2K');
    const [low, high] = rows[1].ranks.split('–').map(Number);
    assert.ok(low >= 2 && high <= 16 && low < high, `GoRA's ranks ${rows[1].ranks}: from r_min 2 to r_max 16`);
    for (const r of rows) {
      assert.match(r.finalValLoss, /^\d+\.\d{3}$/, `${r.method}'s final validation loss`);
      assert.match(r.delta, /^[-+]\d+\.\d{3}$/, `${r.method}'s Δ`);
      const final = Number(r.finalValLoss);
      // stories260K starts near ln(512) = 6.2 on Shakespeare; three steps must lower it, not blow it up.
      assert.ok(final > 1 && final < 6.3, `${r.method}'s final validation loss ${final}`);
      assert.ok(Number(r.delta) < 0, `${r.method}'s validation loss went up: Δ ${r.delta}`);
    }

    // Export: the LoRA run's PEFT zip, saved by the browser.
    const exportButton = await page.$(
      `[data-testid="export-card"][data-run-id="${lora.id}"] ${byTestId('export-button')}`,
    );
    assert.ok(exportButton, 'no export button for the LoRA run');
    await exportButton.click();
    const zipName = 'lora-all-linear-r-8.zip';
    const zip = readZip(await downloaded(downloadDir, zipName));
    log(`${prefix}: downloaded ${zipName}: ${Object.keys(zip).join(', ')}`);
    const adapter = checkLoraZip(zip);

    await shootPanel(page, 'compare', `${artifacts}/${prefix}-compare.png`);
    await shootPanel(page, 'charts', `${artifacts}/${prefix}-charts.png`);
    await shootPanel(page, 'export', `${artifacts}/${prefix}-export.png`);
    await shootPanel(page, 'runs', `${artifacts}/${prefix}-runs.png`);
    // The top of the page: the GPU badge.
    await page.evaluate(() => window.scrollTo({ top: 0, behavior: 'instant' }));
    await poll(page, 'the page scrolled to the top', () => window.scrollY === 0);
    await page.screenshot({ path: `${artifacts}/${prefix}-top.png` });

    assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
    return { badge, rows, adapter, trainSeconds, consoleErrors };
  } finally {
    await context.close();
  }
}

/**
 * The LoRA run's zip: PEFT's adapter_config.json (LORA, r 8, every linear layer of stories260K) and
 * adapter_model.safetensors with A [8, in] and B [out, 8] for all 35 modules, finite, trained (B starts at zero).
 */
function checkLoraZip(zip) {
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'README.md'])
    assert.ok(zip[f], `${f} missing from the zip (${Object.keys(zip)})`);
  const config = json(zip['adapter_config.json']);
  assert.equal(config.peft_type, 'LORA');
  assert.equal(config.r, 8);
  assert.equal(config.base_model_name_or_path, 'stories260K');
  assert.ok(config.lora_alpha > 0, `lora_alpha ${config.lora_alpha}`);
  const { tensors } = readSafetensors(zip['adapter_model.safetensors']);
  const expected = [];
  for (let l = 0; l < LAYERS; l++)
    for (const [module, [inDim, outDim]] of Object.entries(SHAPES)) {
      const path = `model.layers.${l}.${module}`;
      assert.ok(
        config.target_modules.some((t) => path === t || path.endsWith(`.${t}`)),
        `${path} is not in target_modules ${JSON.stringify(config.target_modules)}`,
      );
      expected.push([`base_model.model.${path}.lora_A.weight`, [8, inDim]]);
      expected.push([`base_model.model.${path}.lora_B.weight`, [outDim, 8]]);
    }
  assert.deepEqual(Object.keys(tensors).sort(), expected.map(([n]) => n).sort());
  let trainedB = 0;
  for (const [name, shape] of expected) {
    const t = tensors[name];
    assert.deepEqual(t.shape, shape, name);
    const { maxAbs, finite } = stats(t.values);
    assert.ok(finite, `${name} has non-finite values`);
    assert.ok(maxAbs < 10, `${name}: |x| up to ${maxAbs}`);
    if (name.endsWith('lora_A.weight')) assert.ok(maxAbs > 0, `${name} is all zeros`);
    else if (maxAbs > 0) trainedB++;
  }
  // LoRA's B starts at zero: after three steps every B has moved.
  assert.equal(trainedB, LAYERS * Object.keys(SHAPES).length, 'lora_B tensors that training moved');
  return tensors;
}

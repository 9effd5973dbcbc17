/**
 * The studio end to end, in real Chromium with WebGPU (SwiftShader on machines without a GPU): the demo,
 * a short LoRA run, charts and comparison, the exported PEFT zip, persistence across a reload, a bad
 * dataset dropped with a real drag-and-drop event, and the page shown when WebGPU is missing.
 * Screenshots of every panel go to e2e-artifacts/.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { strFromU8, unzipSync } from 'fflate';
import { expect, test, type Page } from 'playwright/test';

const ARTIFACTS = 'e2e-artifacts';
const PANELS = ['model', 'dataset', 'runs', 'charts', 'compare', 'playground', 'export'] as const;

test.beforeAll(() => mkdirSync(ARTIFACTS, { recursive: true }));

/** A panel as an image: a tall viewport so the whole panel fits, and the sticky top bar hidden. */
async function shootPanel(page: Page, id: string, file = id) {
  const viewport = page.viewportSize()!;
  await page.setViewportSize({ width: viewport.width, height: 2400 });
  const panel = page.getByTestId(`panel-${id}`);
  await panel.scrollIntoViewIfNeeded();
  await panel.screenshot({ path: `${ARTIFACTS}/${file}.png`, style: '.topbar, .toasts { visibility: hidden !important; }' });
  await page.setViewportSize(viewport);
}

async function shootPanels(page: Page) {
  for (const id of PANELS) await shootPanel(page, id);
}

/** Drops files on an element the way a browser does: dragenter, dragover, drop, with a DataTransfer holding Files. */
async function dropFiles(page: Page, testId: string, files: { name: string; text: string; type?: string }[]) {
  const dataTransfer = await page.evaluateHandle((list) => {
    const dt = new DataTransfer();
    for (const f of list) dt.items.add(new File([f.text], f.name, { type: f.type ?? '' }));
    return dt;
  }, files);
  const zone = page.getByTestId(testId);
  await zone.dispatchEvent('dragenter', { dataTransfer });
  await zone.dispatchEvent('dragover', { dataTransfer });
  await zone.dispatchEvent('drop', { dataTransfer });
}

/** safetensors: 8-byte little-endian header length, then a JSON header naming every tensor. */
function safetensorsHeader(bytes: Uint8Array): Record<string, { dtype: string; shape: number[] }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  return JSON.parse(strFromU8(bytes.subarray(8, 8 + n)));
}

test('demo: train a short LoRA run, compare, export a PEFT zip, survive a reload, reject a bad dataset', async ({ page }) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`[browser] ${m.text()}`);
  });

  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await expect(page.getByTestId('no-webgpu')).toHaveCount(0);
  await page.screenshot({ path: `${ARTIFACTS}/00-landing.png` });

  // The demo: model card, dataset preview and three pre-configured runs.
  await page.getByTestId('try-demo').click();
  const card = page.getByTestId('model-card');
  await expect(card).toContainText('stories260K');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  for (const text of ['Layers', 'Hidden', '8 / 4', '512', '260K']) await expect(card).toContainText(text);
  const preview = page.getByTestId('dataset-preview');
  await expect(preview).toContainText('tinyshakespeare.txt');
  await expect(page.getByTestId('dataset-format')).toHaveText('Plain text');
  await expect(page.getByTestId('dataset-sample').first()).toContainText('First Citizen');
  const runs = page.getByTestId('run-card');
  await expect(runs).toHaveCount(3);
  await expect(runs.nth(0)).toContainText('8.96K trainable parameters');

  // Shrink the first run so SwiftShader finishes it in seconds, and start it.
  const first = runs.first();
  const set = async (label: string, value: string) => first.getByLabel(label, { exact: true }).fill(value);
  await set('Steps', '3');
  await set('Batch', '2');
  await set('Seq. length', '32');
  await set('Val. examples', '4');
  await set('Eval every', '0');
  await set('Warmup', '0');
  const runName = await first.getByLabel('Run name').inputValue();
  await first.getByTestId('run-start').click();
  await expect(first).toHaveAttribute('data-status', /queued|preparing|training/);
  await expect(first).toHaveAttribute('data-status', 'done', { timeout: 5 * 60_000 });
  await expect(first.getByTestId('run-message')).toHaveCount(0);

  // Curves and the comparison table.
  const chart = page.getByTestId('loss-chart');
  await expect(chart).toBeVisible();
  expect(Number(await chart.getAttribute('data-points'))).toBe(3);
  await expect(chart.locator('.recharts-line path.recharts-curve').first()).toBeVisible();
  await expect(page.getByTestId('grad-chart').locator('.recharts-line path.recharts-curve').first()).toBeVisible();
  const rows = page.getByTestId('comparison-row');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText(runName);
  await expect(rows.first().getByTestId('final-val-loss')).toHaveText(/^\d+\.\d{3}/);

  // Playground: base model and the run, side by side (a few tokens: every token is a forward pass).
  await page.getByLabel('Max new tokens').fill('8');
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('generation')).toHaveCount(2);
  await expect(page.getByTestId('generate')).toHaveText('Generate', { timeout: 120_000 });
  await expect(page.getByTestId('generation').nth(1)).toContainText('8 tokens');

  await shootPanels(page);
  await page.screenshot({ path: `${ARTIFACTS}/01-after-run-full.png`, fullPage: true, style: '.topbar { position: static !important; }' });

  // Export: a zip holding a PEFT LoRA adapter.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-button').first().click()]);
  expect(download.suggestedFilename()).toMatch(/\.zip$/);
  const files = unzipSync(new Uint8Array(readFileSync(await download.path())));
  expect(Object.keys(files).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
  const config = JSON.parse(strFromU8(files['adapter_config.json']));
  expect(config.peft_type).toBe('LORA');
  expect(config.r).toBe(8);
  expect(config.base_model_name_or_path).toBe('stories260K');
  expect(config.target_modules).toContain('model.layers.0.self_attn.q_proj');
  const tensors = Object.keys(safetensorsHeader(files['adapter_model.safetensors']));
  expect(tensors.some((n) => n.endsWith('lora_A.weight'))).toBe(true);
  expect(tensors.some((n) => n.endsWith('lora_B.weight'))).toBe(true);
  expect(tensors).toContain('base_model.model.model.layers.4.self_attn.v_proj.lora_B.weight');
  expect(strFromU8(files['README.md'])).toContain('PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base)');

  // Reload: the run, its curve and its comparison row come back from IndexedDB, and it still exports.
  // The demo model and dataset come back by themselves (the user's own files would have to be dropped again).
  await page.reload();
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(page.getByTestId('dataset-preview')).toContainText('tinyshakespeare.txt');
  const restored = page.getByTestId('run-card').filter({ hasText: runName }).first();
  await expect(restored).toHaveAttribute('data-status', 'done');
  await expect(page.getByTestId('comparison-row')).toHaveCount(1);
  expect(Number(await page.getByTestId('loss-chart').getAttribute('data-points'))).toBe(3);
  await expect(page.getByTestId('run-card')).toHaveCount(3);
  const [again] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-button').first().click()]);
  expect(Object.keys(unzipSync(new Uint8Array(readFileSync(await again.path()))))).toContain('adapter_model.safetensors');
  await shootPanel(page, 'runs', 'runs-after-reload');
  // The restored adapter generates again.
  await page.getByLabel('Max new tokens').fill('4');
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('generation')).toHaveCount(2);
  await expect(page.getByTestId('generate')).toHaveText('Generate', { timeout: 120_000 });
  await expect(page.getByTestId('generation').nth(1)).toContainText('4 tokens');

  // The queue: start both drafts, cancel the second while it waits and the first while it trains.
  const cards = page.getByTestId('run-card');
  const [queuedFirst, queuedSecond] = [cards.nth(1), cards.nth(2)];
  for (const card of [queuedFirst, queuedSecond]) {
    await card.getByLabel('Batch', { exact: true }).fill('2');
    await card.getByLabel('Seq. length', { exact: true }).fill('32');
    await card.getByLabel('Val. examples', { exact: true }).fill('0');
  }
  await page.getByTestId('start-all').click();
  await expect(queuedSecond).toHaveAttribute('data-status', 'queued');
  await queuedSecond.getByTestId('run-cancel').click();
  await expect(queuedSecond).toHaveAttribute('data-status', 'cancelled');
  await expect(queuedSecond.getByTestId('run-message')).toHaveText('Cancelled before it started.');
  await expect(queuedFirst.getByTestId('run-step')).toContainText('1/60', { timeout: 120_000 });
  await queuedFirst.getByTestId('run-cancel').click();
  await expect(queuedFirst).toHaveAttribute('data-status', 'cancelled', { timeout: 60_000 });
  await expect(queuedFirst.getByTestId('run-message')).toHaveText(/^Cancelled after \d+ of 60 steps\.$/);
  await expect(page.getByTestId('comparison-row')).toHaveCount(2);
  await shootPanel(page, 'runs', 'runs-queue-cancel');

  // A CSV with broken quoting, dropped with a real drag-and-drop event: a specific error, no crash.
  await dropFiles(page, 'dataset-drop', [{ name: 'broken.csv', type: 'text/csv', text: 'prompt,completion\n"unterminated,hello\nfine,row\n' }]);
  const error = page.getByTestId('dataset-error');
  await expect(error).toContainText('broken.csv: broken CSV quoting');
  await expect(error).toContainText('Still using tinyshakespeare.txt');
  await shootPanel(page, 'dataset', 'dataset-error');
  // An unsupported extension names the supported ones.
  await dropFiles(page, 'dataset-drop', [{ name: 'notes.xyz', text: 'hello' }]);
  await expect(error).toContainText('notes.xyz: unsupported file type ".xyz"');
  await expect(error).toContainText('.parquet');

  // A supervised format: the preview shows the prompt as context and the response as supervised tokens.
  const alpaca = readFileSync('test/fixtures/datasets/alpaca_handmade/alpaca.json', 'utf8');
  await dropFiles(page, 'dataset-drop', [{ name: 'alpaca.json', type: 'application/json', text: alpaca }]);
  await expect(page.getByTestId('dataset-format')).toHaveText('Alpaca instructions');
  await expect(error).toHaveCount(0);
  const sample = page.getByTestId('dataset-sample').first();
  await expect(sample.locator('.seg-ctx').first()).toContainText('### Instruction');
  await expect(sample.locator('.seg-sup').first()).toContainText('Jupiter');
  await shootPanel(page, 'dataset', 'dataset-alpaca');

  expect(pageErrors).toEqual([]);
});

test('a model folder from the directory picker; a file that is not a model is refused with the reason', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  // Not a model: the message lists what a model folder needs and what was found.
  await dropFiles(page, 'model-drop', [{ name: 'notes.txt', text: 'hello' }]);
  await expect(page.getByTestId('model-error')).toContainText('not a model folder');
  await expect(page.getByTestId('model-error')).toContainText('Found: notes.txt');
  // The demo model's folder, picked like a user's own folder (files carry webkitRelativePath "model/...").
  await page.getByTestId('model-folder-input').setInputFiles('public/demo/model');
  const card = page.getByTestId('model-card');
  await expect(card).toContainText('stories260K');
  await expect(card).not.toContainText('embedded demo');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(page.getByTestId('model-error')).toHaveCount(0);
  await expect(card).toContainText('model.safetensors');
});

test('without WebGPU the page explains how to get it', async ({ page }) => {
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
  });
  await page.goto('/');
  const help = page.getByTestId('no-webgpu');
  await expect(help).toBeVisible();
  await expect(help).toContainText('LoRA Studio needs WebGPU');
  await expect(help).toContainText('chrome://flags/#enable-unsafe-webgpu');
  await expect(help).toContainText('Chrome or Edge 113+');
  await page.screenshot({ path: `${ARTIFACTS}/no-webgpu.png`, fullPage: true });
});

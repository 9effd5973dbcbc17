/**
 * The studio's layout at the sizes a newcomer opens it at (1024×768, 1280×800, 1360×900, 1920×1080): every section
 * of the top navigation visible without sideways scrolling, the comparison table without a horizontal scrollbar,
 * the model's stat tiles showing their whole values; the heatmap cells reachable by keyboard and by touch.
 * Finished runs are written into IndexedDB before the page opens (no training: the layout is what is tested),
 * with the widest content a comparison can have: long names, exact match, a failure message.
 * Screenshots go to e2e-artifacts/layout-*.png.
 */
import { mkdirSync } from 'node:fs';
import { expect, test, type Page } from 'playwright/test';
import { demoRuns } from '../src/app/presets';
import { ARTIFACTS } from './helpers';

// Taps need a touch screen; the mouse still works.
test.use({ hasTouch: true });

test.beforeAll(() => mkdirSync(ARTIFACTS, { recursive: true }));

const LAYERS = 5;
const KINDS: [string, string, number, number][] = [
  ['q_proj', 'self_attn', 64, 64],
  ['k_proj', 'self_attn', 64, 32],
  ['v_proj', 'self_attn', 64, 32],
  ['o_proj', 'self_attn', 64, 64],
  ['gate_proj', 'mlp', 64, 172],
  ['up_proj', 'mlp', 64, 172],
  ['down_proj', 'mlp', 172, 64],
];

/** A finished run as the studio stores it, with per-module ranks, a summary and (optionally) a failure. */
function finishedRun(i: number, status: 'done' | 'failed', rankOf: (layer: number, k: number) => number) {
  const config = { ...demoRuns()[i % 4], steps: 80 };
  const modules = Array.from({ length: LAYERS }, (_, layer) =>
    KINDS.map(([kind, block, inDim, outDim], k) => {
      const rank = rankOf(layer, k);
      return {
        path: `model.layers.${layer}.${block}.${kind}`,
        layer,
        kind,
        in: inDim,
        out: outDim,
        rank,
        scale: 16 / Math.sqrt(rank),
        parameters: rank * (inDim + outDim),
        importance: 1e-3 * (layer + 1) * (k + 1),
        share: 1 / 35,
      };
    }),
  ).flat();
  const points = Array.from({ length: 80 }, (_, step) => ({
    step,
    loss: 5 - step / 40,
    lr: 3e-3,
    gradNorm: 1,
    tokensPerSecond: 12345,
    tokens: 512 * (step + 1),
    elapsedMs: 250 * (step + 1),
  }));
  const createdAt = 1_700_000_000_000 + i;
  return {
    config: { ...config, name: i === 0 ? `${config.name} with a long descriptive name` : config.name },
    status,
    stage: null,
    message:
      status === 'failed'
        ? 'Step 41: the loss is NaN; training stopped and the adapter from the last good step is kept.'
        : null,
    createdAt,
    startedAt: createdAt,
    finishedAt: createdAt + 20_000,
    modelKey: 'layout-model',
    modelName: 'stories260K',
    datasetName: 'alpaca_handmade.csv',
    datasetDigest: null,
    datasetFormat: null,
    points,
    evals: [0, 20, 40, 60, 80].map((step) => ({ step, tokens: 512 * step, loss: 5 - step / 50 })),
    progress: null,
    prepare: null,
    analysis: {
      method: config.method,
      structure: config.method === 'gralora' ? 'gralora' : 'dense',
      allocation: config.method === 'gora' ? 'gora' : 'uniform',
      init: 'standard',
      modules,
      trainableParameters: modules.reduce((n, m) => n + m.parameters, 0),
      loraEquivalentParameters: 46240,
      preparationMs: i === 1 ? 12_345 : 0,
      warnings: [],
    },
    summary: {
      steps: status === 'failed' ? 41 : 80,
      stopReason: status === 'failed' ? 'non-finite' : 'done',
      message: null,
      initialValLoss: 5.123,
      finalValLoss: 3.4 + i / 10,
      trainableParams: modules.reduce((n, m) => n + m.parameters, 0),
      elapsedMs: 123_456,
      tokensPerSecond: 12345.6,
      tokens: 40960,
      trainExamples: 900,
      validationExamples: 64,
      peakGpuBytes: 123 << 20,
      exactMatch: { accuracy: 0.421875, total: 64 },
      skippedBatches: 0,
    },
    weights: null,
    adapterFormat: null,
    checkpoint: null,
    data: null,
    warnings: [],
    invalidFields: [],
  };
}

/** Writes the runs into the studio's database from a same-origin page that does not open it. */
async function seedRuns(page: Page) {
  const runs = [
    finishedRun(0, 'done', () => 8),
    finishedRun(1, 'done', (l, k) => 2 + ((l * 7 + k) % 15)),
    finishedRun(2, 'done', () => 8),
    finishedRun(3, 'done', (l) => 4 + 2 * l),
    finishedRun(4, 'failed', () => 8),
  ];
  await page.goto('/demo/model/config.json');
  await page.evaluate(
    (records) =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open('lora-studio', 1);
        open.onupgradeneeded = () => {
          open.result.createObjectStore('runs', { keyPath: 'config.id' });
          open.result.createObjectStore('adapters', { keyPath: 'id' });
        };
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction('runs', 'readwrite');
          for (const r of records) tx.objectStore('runs').put(r);
          tx.oncomplete = () => {
            open.result.close();
            resolve();
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
    runs,
  );
}

/** Horizontal overflow of every element matching `selector`: [scrollWidth, clientWidth] pairs. */
async function widths(page: Page, selector: string): Promise<[number, number][]> {
  return page
    .locator(selector)
    .evaluateAll((els) => els.map((e) => [e.scrollWidth, e.clientWidth] as [number, number]));
}

async function expectNoSidewaysScroll(page: Page, selector: string) {
  const found = await widths(page, selector);
  expect(found.length, `${selector} on the page`).toBeGreaterThan(0);
  for (const [scroll, client] of found)
    expect(scroll, `${selector}: ${scroll} > ${client}`).toBeLessThanOrEqual(client);
}

/** Every nav item is visible inside the viewport (not scrolled or cut off). */
async function expectNavVisible(page: Page) {
  const viewport = page.viewportSize()!;
  const links = page.locator('.topbar .nav a');
  await expect(links).toHaveCount(10);
  for (const link of await links.all()) {
    await expect(link).toBeVisible();
    const box = (await link.boundingBox())!;
    expect(box.x, `${await link.textContent()} starts inside`).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width, `${await link.textContent()} ends inside`).toBeLessThanOrEqual(viewport.width);
  }
}

async function openStudio(page: Page) {
  await seedRuns(page);
  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await page.getByTestId('try-demo').click();
  await expect(page.getByTestId('model-card')).toContainText('stories260K');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(page.getByTestId('comparison-row')).toHaveCount(5);
  await expect(page.getByTestId('rank-card')).toHaveCount(5);
}

/** A panel as an image at the current width, the sticky bar hidden. */
async function shoot(page: Page, id: string, file: string) {
  await page.getByTestId(`panel-${id}`).screenshot({
    path: `${ARTIFACTS}/${file}.png`,
    style: '.topbar, .toasts { visibility: hidden !important; }',
  });
}

for (const [width, height] of [
  [1024, 768],
  [1280, 800],
  [1360, 900],
  [1920, 1080],
] as const) {
  test(`${width}×${height}: every nav item visible, the comparison table and the stat tiles without sideways scrolling`, async ({
    page,
  }) => {
    await page.setViewportSize({ width, height });
    await openStudio(page);

    // Shot first: when an assertion below fails, the images show why.
    await page.screenshot({ path: `${ARTIFACTS}/layout-${width}-top.png` });
    await shoot(page, 'compare', `layout-${width}-compare`);
    await shoot(page, 'model', `layout-${width}-model`);
    await shoot(page, 'allocation', `layout-${width}-ranks`);
    await shoot(page, 'runs', `layout-${width}-runs`);

    await expectNavVisible(page);
    await expectNoSidewaysScroll(page, '.topbar .nav');
    await expectNoSidewaysScroll(page, '[data-testid="comparison-group"] .table-wrap');
    await expectNoSidewaysScroll(page, 'html');
    // The model's stat tiles: each value whole, not cut with an ellipsis.
    await expectNoSidewaysScroll(page, '[data-testid="model-card"] .stat-value');
    await expectNoSidewaysScroll(page, '[data-testid="model-card"] .stat-label');
  });
}

test('heatmap cells: one tab stop per heatmap, the arrow keys move, focus and taps show the details', async ({
  page,
}) => {
  await openStudio(page);
  const card = page.getByTestId('rank-card').nth(1);
  const cells = card.getByTestId('rank-heatmap-cell');
  const readout = card.locator('.heatmap-readout');
  await expect(cells).toHaveCount(LAYERS * KINDS.length);
  await expect(card.locator('[data-testid="rank-heatmap-cell"][tabindex="0"]')).toHaveCount(1);
  await expect(cells.first()).toHaveAttribute('aria-label', /^layer 0 q: rank \d+, scale/);
  await expect(card.getByRole('grid')).toHaveCount(1);

  // The grid's tab stop takes focus and the readout says its module (the mouse rests on the top bar, off the cells).
  await page.mouse.move(0, 0);
  await cells.first().focus();
  await expect(readout).toContainText('model.layers.0.self_attn.q_proj rank');
  await page.keyboard.press('ArrowRight');
  await expect(readout).toContainText('model.layers.0.self_attn.k_proj rank');
  await expect(cells.nth(1)).toBeFocused();
  await page.keyboard.press('ArrowDown');
  await expect(readout).toContainText('model.layers.1.self_attn.k_proj rank');
  await page.keyboard.press('End');
  await expect(readout).toContainText('model.layers.1.mlp.down_proj rank');
  // Still one tab stop: the cell the keyboard left the cursor on.
  await expect(card.locator('[data-testid="rank-heatmap-cell"][tabindex="0"]')).toHaveCount(1);
  await expect(cells.nth(KINDS.length + KINDS.length - 1)).toHaveAttribute('tabindex', '0');
  await page.keyboard.press('Tab');
  await expect(cells.nth(KINDS.length + KINDS.length - 1)).not.toBeFocused();

  // A tap on another heatmap's cell shows its details, and they stay after the finger lifts.
  const other = page.getByTestId('rank-card').nth(3);
  await other
    .getByTestId('rank-heatmap-cell')
    .nth(KINDS.length * 4 + 2)
    .tap();
  await expect(other.locator('.heatmap-readout')).toContainText('model.layers.4.self_attn.v_proj rank 12');
  await page.waitForTimeout(300);
  await expect(other.locator('.heatmap-readout')).toContainText('model.layers.4.self_attn.v_proj rank 12');
  await other.locator('.heatmap-readout').scrollIntoViewIfNeeded();
  await other.screenshot({ path: `${ARTIFACTS}/layout-heatmap-tapped.png` });
});

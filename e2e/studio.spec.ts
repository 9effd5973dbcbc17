/**
 * The studio end to end, in real Chromium with WebGPU (SwiftShader on machines without a GPU): the demo's
 * LoRA, GoRA, GraLoRA and GeLoRA runs (shrunk so they finish in seconds), their preparation phases, loss
 * curves, rank heatmaps, GoRA importance, GeLoRA dimensions, per-block gradient norms and the comparison
 * table; the exported PEFT zips checked against the heatmap (GoRA's rank_pattern, GraLoRA's format and its
 * plain-LoRA equivalent) with the scale-out bundle; persistence across a reload; a run cut off by a reload
 * resuming from its checkpoint; the run queue; form validation; bad files dropped with real drag-and-drop
 * events; the page shown when WebGPU is missing.
 * Screenshots of every panel go to e2e-artifacts/.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { strFromU8 } from 'fflate';
import { expect, test, type BrowserContext, type Locator, type Page } from 'playwright/test';
import { demoRuns } from '../src/app/presets';
import { ARTIFACTS, downloadZip, openDemo, shootPanel } from './helpers';

const PANELS = ['model', 'dataset', 'runs', 'charts', 'allocation', 'compare', 'playground', 'export'] as const;

/** stories260K (public/demo/model/config.json): hidden 64, 8 heads and 4 KV heads of 8, intermediate 172, 5 layers. */
const LAYERS = 5;
const SHAPES: Record<string, { in: number; out: number; block: string }> = {
  q_proj: { in: 64, out: 64, block: 'self_attn' },
  k_proj: { in: 64, out: 32, block: 'self_attn' },
  v_proj: { in: 64, out: 32, block: 'self_attn' },
  o_proj: { in: 64, out: 64, block: 'self_attn' },
  gate_proj: { in: 64, out: 172, block: 'mlp' },
  up_proj: { in: 64, out: 172, block: 'mlp' },
  down_proj: { in: 172, out: 64, block: 'mlp' },
};
const modulePath = (layer: number, kind: string) => `model.layers.${layer}.${SHAPES[kind].block}.${kind}`;
const DEMO = {
  lora: 'LoRA all-linear r=8',
  gora: 'GoRA all-linear r_ref=8',
  gralora: 'GraLoRA all-linear r=8 k=2',
  gelora: 'GeLoRA all-linear r_ref=8',
};

test.beforeAll(() => mkdirSync(ARTIFACTS, { recursive: true }));

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
function safetensorsHeader(
  bytes: Uint8Array,
): Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(strFromU8(bytes.subarray(8, 8 + n)));
  delete header.__metadata__;
  return header;
}

/** The rank heatmap of one run: "layer/kind" -> rank, read from the cells. */
async function heatmapRanks(page: Page, runId: string): Promise<Map<string, number>> {
  const cells = page.locator(`[data-testid="rank-card"][data-run-id="${runId}"] [data-testid="rank-heatmap-cell"]`);
  const entries = await cells.evaluateAll((els) =>
    els.map(
      (e) =>
        [
          `${(e as HTMLElement).dataset.layer}/${(e as HTMLElement).dataset.kind}`,
          Number((e as HTMLElement).dataset.value),
        ] as [string, number],
    ),
  );
  return new Map(entries);
}

/** Shrinks a draft so SwiftShader trains it in seconds. */
async function shrink(card: Locator, extra: Record<string, string> = {}) {
  const fields = {
    Steps: '3',
    Batch: '2',
    'Seq. length': '32',
    'Val. examples': '4',
    'Eval every': '0',
    Warmup: '0',
    ...extra,
  };
  for (const [label, value] of Object.entries(fields)) await card.getByLabel(label, { exact: true }).fill(value);
}

/** Texts the preparation progress bar showed, recorded as they render (the phases are too quick to poll). */
async function recordPrepareTexts(page: Page) {
  await page.evaluate(() => {
    const seen = new Set<string>();
    (window as unknown as { __prepare: Set<string> }).__prepare = seen;
    const record = () =>
      document.querySelectorAll('[data-testid="run-prepare"]').forEach((e) => seen.add(e.textContent ?? ''));
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}

/** The demo's four run cards, in order, and their ids. */
async function demoCards(page: Page) {
  const runs = page.getByTestId('run-card');
  await expect(runs).toHaveCount(4);
  const cards = [0, 1, 2, 3].map((i) => runs.nth(i));
  const ids = await Promise.all(cards.map(async (r) => (await r.getAttribute('data-run-id'))!));
  return { cards, ids };
}

test('demo drafts: model, dataset, four runs at a rank-8 LoRA budget, scale rules, method options; bad options are refused', async ({
  page,
}) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`[browser] ${m.text()}`);
  });

  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await expect(page.getByTestId('no-webgpu')).toHaveCount(0);
  await page.screenshot({ path: `${ARTIFACTS}/00-landing.png` });

  // The demo: model card, dataset preview and four runs at the budget of a rank-8 LoRA on every linear layer.
  await page.getByTestId('try-demo').click();
  const card = page.getByTestId('model-card');
  await expect(card).toContainText('stories260K');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  for (const text of ['Layers', 'Hidden', '8 / 4', '512', '260K']) await expect(card).toContainText(text);
  const preview = page.getByTestId('dataset-preview');
  await expect(preview).toContainText('tinyshakespeare.txt');
  await expect(page.getByTestId('dataset-format')).toHaveText('Plain text');
  await expect(page.getByTestId('dataset-sample').first()).toContainText('First Citizen');
  const {
    cards: [lora, gora, gralora, gelora],
  } = await demoCards(page);
  const names = await Promise.all([lora, gora, gralora, gelora].map((r) => r.getByLabel('Run name').inputValue()));
  expect(names).toEqual([DEMO.lora, DEMO.gora, DEMO.gralora, DEMO.gelora]);

  // Budgets: r(in+out) per target for LoRA and GraLoRA (46,240 = 8 x 1,156 x 5 layers); GoRA and GeLoRA aim at it.
  await expect(lora.getByTestId('run-params')).toHaveText('46.2K trainable parameters (17.8% of the model)');
  await expect(gralora.getByTestId('run-params')).toHaveText('46.2K trainable parameters (17.8% of the model)');
  await expect(gora.getByTestId('run-params')).toContainText(
    '≈ 46.2K trainable parameters (≈ budget, exact after allocation)',
  );
  await expect(gelora.getByTestId('run-params')).toContainText('≈ budget, exact after allocation');
  // Scale rules.
  await expect(lora.getByTestId('scale-hint')).toHaveText('scale α/r = 2');
  await expect(gora.getByTestId('scale-hint')).toHaveText('scale α/√r_l per module = 5.66 at r_ref');
  await expect(gralora.getByTestId('scale-hint')).toHaveText('scale α/r = 2');
  await expect(gelora.getByTestId('scale-hint')).toHaveText('scale α/r_ref (every module) = 2');
  // Only each method's own options: GraLoRA's k shows its default from the rank.
  await expect(gralora.getByLabel('k', { exact: true })).toHaveAttribute('placeholder', '2 (auto)');
  await expect(lora.getByLabel('k', { exact: true })).toHaveCount(0);
  await expect(gora.getByLabel('N batches', { exact: true })).toHaveValue('8');
  await expect(gelora.getByLabel('Samples', { exact: true })).toHaveValue('512');

  // The form refuses bad method options with specific messages (the method, the option, the value), before anything
  // reaches the GPU.
  const refuses = async (run: Locator, label: string, value: string, message: string | RegExp, restore: string) => {
    await run.getByLabel(label, { exact: true }).fill(value);
    await run.getByTestId('run-start').click();
    await expect(run.getByTestId('run-message')).toContainText(message);
    await expect(run).toHaveAttribute('data-status', 'draft');
    await run.getByLabel(label, { exact: true }).fill(restore);
  };
  await refuses(
    gralora,
    'k',
    '3',
    'GraLoRA rank 8 must be divisible by k 3: each of the k x k blocks gets rank r/k.',
    '',
  );
  await refuses(gralora, 'Hybrid r', '-1', 'GraLoRA hybrid r must be a whole number of at least 0 (got -1).', '0');
  await refuses(gora, 'r_min', '20', 'GoRA r_min (20) is larger than r_max (16)', '2');
  await refuses(gora, 'N batches', '0', 'GoRA N batches must be a whole number of at least 1 (got 0).', '8');
  await refuses(gora, 'γ', '-0.5', 'GoRA γ must be a number of at least 0 (got -0.5)', '0.05');
  await refuses(gelora, 'Samples', '5000', 'GeLoRA samples must be a whole number from 3 to 4096 (got 5000).', '512');
  await shootPanel(page, 'runs', 'runs-demo-drafts');
  expect(pageErrors).toEqual([]);
});

/**
 * The demo trained once (shrunk so SwiftShader finishes it in seconds) in a page shared by the tests below; each
 * test checks one feature of the result, so a failure in one leaves the others to report. A test that fails makes
 * Playwright start a new worker, which trains the demo again for the tests after it.
 */
test.describe('the trained demo', () => {
  let context: BrowserContext;
  let page: Page;
  let ids: string[] = [];
  let [loraId, goraId, graloraId, geloraId] = ['', '', '', ''];
  const pageErrors: string[] = [];
  const card = (id: string) => page.locator(`[data-testid="run-card"][data-run-id="${id}"]`);
  const exportCard = (id: string) => page.locator(`[data-testid="export-card"][data-run-id="${id}"]`);

  test.beforeAll(async ({ browser }, testInfo) => {
    const { baseURL, viewport, acceptDownloads } = testInfo.project.use;
    context = await browser.newContext({ baseURL, viewport, acceptDownloads });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') console.log(`[browser] ${m.text()}`);
    });
    await openDemo(page);
    const demo = await demoCards(page);
    ids = demo.ids;
    [loraId, goraId, graloraId, geloraId] = ids;
    const [lora, gora, gralora, gelora] = demo.cards;
    // Shrink every run so SwiftShader finishes it in seconds; GoRA on 2 gradient batches, GeLoRA on 128 samples.
    await shrink(lora);
    await shrink(gora, { 'N batches': '2' });
    await shrink(gralora);
    await shrink(gelora, { Samples: '128' });
    await recordPrepareTexts(page);
    await page.getByTestId('start-all').click();
    for (const run of [lora, gora, gralora, gelora])
      await expect(run).toHaveAttribute('data-status', 'done', { timeout: 4 * 60_000 });
  });

  test.afterAll(async () => {
    await context?.close();
  });

  // Every test leaves the shared page without an uncaught error.
  test.afterEach(() => {
    expect(pageErrors.splice(0)).toEqual([]);
  });

  test('all four finish; preparation phases show their progress; GeLoRA warns; exact parameter counts once allocated', async () => {
    for (const id of [loraId, goraId, graloraId]) await expect(card(id).getByTestId('run-message')).toHaveCount(0);
    // GeLoRA on 128 samples warns that its estimates are noisy (a warning, not a failure).
    await expect(card(geloraId).getByTestId('run-warnings')).toContainText('below 512');

    // The preparation phases had their own progress, with the engine's phase text.
    const prepared = await page.evaluate(() => [...(window as unknown as { __prepare: Set<string> }).__prepare]);
    expect(
      prepared.some((t) => /^GoRA: accumulating gradients [12]\/2$/.test(t)),
      prepared.join(' | '),
    ).toBe(true);
    expect(
      prepared.some((t) => /^GeLoRA: (collecting hidden states|intrinsic dimensions) \d+\/\d+$/.test(t)),
      prepared.join(' | '),
    ).toBe(true);

    // Exact counts once the methods allocated: GoRA's and GeLoRA's near the budget.
    await expect(card(loraId).getByTestId('run-params')).toHaveText(/^46\.2K trainable parameters/);
    for (const id of [goraId, geloraId]) await expect(card(id).getByTestId('run-params')).not.toContainText('≈');
  });

  test('loss curves, gradient norms and per-block gradient norms', async () => {
    // Loss curves: every run has its 3 points.
    const chart = page.getByTestId('loss-chart');
    await expect(chart).toBeVisible();
    for (const id of ids)
      await expect(page.locator(`[data-testid="loss-legend"][data-run-id="${id}"]`)).toHaveAttribute(
        'data-points',
        '3',
      );
    expect(await chart.locator('.recharts-line path.recharts-curve').count()).toBeGreaterThanOrEqual(4);
    await expect(page.getByTestId('grad-chart').locator('.recharts-line path.recharts-curve').first()).toBeVisible();
    // Per-block gradient norms of one run: 5 blocks over 3 steps.
    const layerChart = page.getByTestId('layer-grad-chart');
    await expect(layerChart).toHaveAttribute('data-layers', String(LAYERS));
    await expect(layerChart).toHaveAttribute('data-points', '3');
    await expect(layerChart.locator('.recharts-line path.recharts-curve')).toHaveCount(LAYERS);
    await layerChart.getByLabel('Run for the per-block gradient norms').selectOption(goraId);
    await expect(layerChart).toHaveAttribute('data-run-id', goraId);
  });

  test('rank heatmaps, GoRA importance and GeLoRA dimensions', async () => {
    // Rank heatmaps: 5 layers x 7 modules each; LoRA and GraLoRA uniform, GoRA's ranks differ across layers.
    await expect(page.getByTestId('rank-card')).toHaveCount(4);
    const ranks = Object.fromEntries(
      await Promise.all(ids.map(async (id) => [id, await heatmapRanks(page, id)] as const)),
    );
    for (const id of ids) expect(ranks[id].size).toBe(LAYERS * 7);
    expect(new Set(ranks[loraId].values())).toEqual(new Set([8]));
    expect(new Set(ranks[graloraId].values())).toEqual(new Set([8]));
    const goraRanks = ranks[goraId];
    for (const r of goraRanks.values()) expect(r >= 2 && r <= 16, `GoRA rank ${r} outside r_min..r_max`).toBe(true);
    const differsAcrossLayers = Object.keys(SHAPES).some(
      (kind) => new Set(Array.from({ length: LAYERS }, (_, l) => goraRanks.get(`${l}/${kind}`))).size > 1,
    );
    expect(differsAcrossLayers, JSON.stringify([...goraRanks])).toBe(true);
    // GeLoRA gives every module of a block the block's rank.
    for (let l = 0; l < LAYERS; l++) {
      expect(new Set(Object.keys(SHAPES).map((kind) => ranks[geloraId].get(`${l}/${kind}`))).size).toBe(1);
    }
    // GoRA's importance shares and GeLoRA's intrinsic dimensions (d_0..d_5) and block ranks.
    await expect(page.getByTestId('importance-card')).toHaveCount(1);
    await expect(page.getByTestId('importance-heatmap-cell')).toHaveCount(LAYERS * 7);
    const dims = JSON.parse((await page.getByTestId('gelora-dims').getAttribute('data-dims'))!) as number[];
    expect(dims).toHaveLength(LAYERS + 1);
    for (const d of dims) expect(d).toBeGreaterThan(0);
    const blockRanks = JSON.parse((await page.getByTestId('gelora-ranks').getAttribute('data-ranks'))!) as number[];
    expect(blockRanks).toEqual(Array.from({ length: LAYERS }, (_, l) => ranks[geloraId].get(`${l}/q_proj`)));
    await expect(page.getByTestId('gelora-dims').locator('.recharts-line path.recharts-curve')).toHaveCount(1);
    // Hovering a cell shows the module's details.
    await page
      .locator(`[data-testid="rank-card"][data-run-id="${goraId}"] [data-testid="rank-heatmap-cell"]`)
      .first()
      .hover();
    await expect(page.locator(`[data-testid="rank-card"][data-run-id="${goraId}"] .heatmap-readout`)).toContainText(
      /model\.layers\.0\.self_attn\.q_proj rank \d+ · scale [\d.]+ · [\d,]+ params · importance/,
    );
  });

  test('the comparison table: method, ranks, exact parameters, preparation time, validation loss', async () => {
    const goraRanks = await heatmapRanks(page, goraId);
    expect(goraRanks.size).toBe(LAYERS * 7);
    const rows = page.getByTestId('comparison-row');
    await expect(rows).toHaveCount(4);
    await expect(rows.getByTestId('comparison-method')).toHaveText(['LoRA', 'GoRA', 'GraLoRA', 'GeLoRA']);
    await expect(rows.nth(0).getByTestId('comparison-ranks')).toHaveText('8');
    await expect(rows.nth(2).getByTestId('comparison-ranks')).toHaveText('8 (k=2)');
    const goraRange = [Math.min(...goraRanks.values()), Math.max(...goraRanks.values())];
    await expect(rows.nth(1).getByTestId('comparison-ranks')).toHaveText(`${goraRange[0]}–${goraRange[1]}`);
    await expect(rows.nth(0).getByTestId('comparison-params')).toHaveText('46.2K');
    await expect(rows.nth(1).getByTestId('comparison-prep')).toHaveText(/^\d/);
    await expect(rows.nth(3).getByTestId('comparison-prep')).toHaveText(/^\d/);
    for (let i = 0; i < 4; i++) await expect(rows.nth(i).getByTestId('final-val-loss')).toHaveText(/^\d+\.\d{3}/);
  });

  test('the playground generates with the base model and the four adapters; screenshots of every panel', async () => {
    // GraLoRA's adapter loads from its GRALORA folder.
    await page.getByLabel('Max new tokens').fill('4');
    await page.getByTestId('generate').click();
    await expect(page.getByTestId('generation')).toHaveCount(5);
    await expect(page.getByTestId('generate')).toHaveText('Generate', { timeout: 120_000 });
    for (let i = 1; i < 5; i++) await expect(page.getByTestId('generation').nth(i)).toContainText('4 tokens');

    await shootPanels(page);
    await page.screenshot({
      path: `${ARTIFACTS}/01-after-runs-full.png`,
      fullPage: true,
      style: '.topbar { position: static !important; }',
    });
  });

  test("export GoRA: a PEFT LoRA folder whose rank_pattern and shapes are the heatmap's ranks, with the scale-out bundle", async () => {
    const goraRanks = await heatmapRanks(page, goraId);
    expect(goraRanks.size).toBe(LAYERS * 7);
    await expect(exportCard(goraId).getByTestId('export-lora-button')).toHaveCount(0);
    const goraZip = await downloadZip(page, exportCard(goraId).getByTestId('export-button'));
    expect(goraZip.name).toBe('gora-all-linear-r-ref-8.zip');
    expect(Object.keys(goraZip.files).sort()).toEqual([
      'README.md',
      'accelerate_config.yaml',
      'adapter_config.json',
      'adapter_model.safetensors',
      'train_peft.py',
    ]);
    const goraConfig = JSON.parse(strFromU8(goraZip.files['adapter_config.json']));
    expect(goraConfig.peft_type).toBe('LORA');
    expect(goraConfig.base_model_name_or_path).toBe('stories260K');
    expect(Object.keys(goraConfig.rank_pattern)).toHaveLength(LAYERS * 7);
    const goraTensors = safetensorsHeader(goraZip.files['adapter_model.safetensors']);
    expect(Object.keys(goraTensors)).toHaveLength(2 * LAYERS * 7);
    for (let l = 0; l < LAYERS; l++) {
      for (const [kind, shape] of Object.entries(SHAPES)) {
        const path = modulePath(l, kind);
        const r = goraRanks.get(`${l}/${kind}`)!;
        expect(goraConfig.rank_pattern[path], path).toBe(r);
        expect(goraConfig.target_modules).toContain(path);
        expect(goraTensors[`base_model.model.${path}.lora_A.weight`].shape, path).toEqual([r, shape.in]);
        expect(goraTensors[`base_model.model.${path}.lora_B.weight`].shape, path).toEqual([shape.out, r]);
      }
    }
    const script = strFromU8(goraZip.files['train_peft.py']);
    for (const text of [
      'from peft import LoraConfig',
      'rank_pattern=cfg.get("rank_pattern")',
      'alpha_pattern=cfg.get("alpha_pattern")',
      'use_rslora=cfg.get("use_rslora", False)',
      'GraloraConfig(',
      'Accelerator(',
      'load_dataset(',
    ])
      expect(script).toContain(text);
    expect(strFromU8(goraZip.files['accelerate_config.yaml'])).toContain('distributed_type: MULTI_GPU');
    const goraReadme = strFromU8(goraZip.files['README.md']);
    expect(goraReadme).toContain('PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base)');
    expect(goraReadme).toContain(
      'accelerate launch --config_file accelerate_config.yaml train_peft.py --data your.jsonl',
    );
  });

  test("export GraLoRA: PEFT's GRALORA format, and on request its exactly equivalent plain LoRA of rank k·r", async () => {
    const graloraRanks = await heatmapRanks(page, graloraId);
    expect(graloraRanks.size).toBe(LAYERS * 7);
    // PEFT's GRALORA format: gralora_A [k, in/k, r], gralora_B [k, r, out/k] ...
    const graloraZip = await downloadZip(page, exportCard(graloraId).getByTestId('export-button'));
    expect(graloraZip.name).toBe('gralora-all-linear-r-8-k-2.zip');
    expect(Object.keys(graloraZip.files)).toContain('train_peft.py');
    const graloraConfig = JSON.parse(strFromU8(graloraZip.files['adapter_config.json']));
    expect(graloraConfig).toMatchObject({ peft_type: 'GRALORA', r: 8, gralora_k: 2, hybrid_r: 0, alpha: 16 });
    const graloraTensors = safetensorsHeader(graloraZip.files['adapter_model.safetensors']);
    for (let l = 0; l < LAYERS; l++) {
      for (const [kind, shape] of Object.entries(SHAPES)) {
        const path = modulePath(l, kind);
        const r = graloraRanks.get(`${l}/${kind}`)!;
        expect(graloraTensors[`base_model.model.${path}.gralora_A`].shape, path).toEqual([2, shape.in / 2, r]);
        expect(graloraTensors[`base_model.model.${path}.gralora_B`].shape, path).toEqual([2, r, shape.out / 2]);
      }
    }
    // ... and, on request, its exactly equivalent plain LoRA of rank k·r.
    const asLora = await downloadZip(page, exportCard(graloraId).getByTestId('export-lora-button'));
    expect(asLora.name).toBe('gralora-all-linear-r-8-k-2-as-lora.zip');
    const asLoraConfig = JSON.parse(strFromU8(asLora.files['adapter_config.json']));
    expect(asLoraConfig).toMatchObject({ peft_type: 'LORA', r: 16, lora_alpha: 16 });
    expect(
      safetensorsHeader(asLora.files['adapter_model.safetensors'])[
        'base_model.model.model.layers.4.mlp.down_proj.lora_A.weight'
      ].shape,
    ).toEqual([16, 172]);
  });

  test('a reload brings back runs, curves, heatmaps, analysis charts and the comparison from IndexedDB; export still works', async () => {
    const ranks = Object.fromEntries(
      await Promise.all(ids.map(async (id) => [id, await heatmapRanks(page, id)] as const)),
    );
    for (const id of ids) expect(ranks[id].size).toBe(LAYERS * 7);
    const dims = JSON.parse((await page.getByTestId('gelora-dims').getAttribute('data-dims'))!) as number[];
    expect(dims).toHaveLength(LAYERS + 1);
    // The demo model and dataset come back by themselves (the user's own files would have to be dropped again).
    await page.reload();
    await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
    await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
    await expect(page.getByTestId('dataset-preview')).toContainText('tinyshakespeare.txt');
    await expect(page.getByTestId('run-card')).toHaveCount(4);
    for (const id of ids) await expect(card(id)).toHaveAttribute('data-status', 'done');
    await expect(page.getByTestId('comparison-row')).toHaveCount(4);
    for (const id of ids)
      await expect(page.locator(`[data-testid="loss-legend"][data-run-id="${id}"]`)).toHaveAttribute(
        'data-points',
        '3',
      );
    for (const id of ids) expect(await heatmapRanks(page, id)).toEqual(ranks[id]);
    await expect(page.getByTestId('importance-heatmap-cell')).toHaveCount(LAYERS * 7);
    expect(JSON.parse((await page.getByTestId('gelora-dims').getAttribute('data-dims'))!)).toEqual(dims);
    await expect(page.getByTestId('layer-grad-chart')).toHaveAttribute('data-points', '3');
    const again = await downloadZip(page, exportCard(graloraId).getByTestId('export-lora-button'));
    expect(Object.keys(again.files)).toContain('adapter_model.safetensors');
    await shootPanel(page, 'allocation', 'allocation-after-reload');
  });

  // Last: it adds runs (the tests above count four).
  test('the queue: two new drafts; cancel the second while it waits and the first while it trains', async () => {
    await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
    await card(loraId).getByRole('button', { name: 'Run again' }).click();
    await card(loraId).getByRole('button', { name: 'Run again' }).click();
    const cards = page.getByTestId('run-card');
    await expect(cards).toHaveCount(6);
    const [queuedFirst, queuedSecond] = [cards.nth(4), cards.nth(5)];
    await queuedFirst.getByLabel('Steps', { exact: true }).fill('500');
    await queuedFirst.getByLabel('Val. examples', { exact: true }).fill('0');
    await page.getByTestId('start-all').click();
    await expect(queuedSecond).toHaveAttribute('data-status', 'queued');
    await queuedSecond.getByTestId('run-cancel').click();
    await expect(queuedSecond).toHaveAttribute('data-status', 'cancelled');
    await expect(queuedSecond.getByTestId('run-message')).toHaveText('Cancelled before it started.');
    await expect(queuedFirst.getByTestId('run-step')).toHaveText(/^[1-9]\d*\/500/, { timeout: 120_000 });
    await queuedFirst.getByTestId('run-cancel').click();
    await expect(queuedFirst).toHaveAttribute('data-status', 'cancelled', { timeout: 60_000 });
    await expect(queuedFirst.getByTestId('run-message')).toHaveText(/^Cancelled after \d+ of 500 steps\.$/);
    await expect(page.getByTestId('comparison-row')).toHaveCount(5);
    await shootPanel(page, 'runs', 'runs-queue-cancel');
  });
});

test('datasets dropped with real drag-and-drop events: broken CSV quoting and an unsupported type are refused; Alpaca shows prompt and response', async ({
  page,
}) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await openDemo(page);
  await expect(page.getByTestId('dataset-preview')).toContainText('tinyshakespeare.txt');

  // A CSV with broken quoting: a specific error, no crash.
  await dropFiles(page, 'dataset-drop', [
    { name: 'broken.csv', type: 'text/csv', text: 'prompt,completion\n"unterminated,hello\nfine,row\n' },
  ]);
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

/** Checkpoints in the studio's IndexedDB (one per unfinished run). */
async function storedCheckpoints(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      new Promise<number>((resolve, reject) => {
        const open = indexedDB.open('lora-studio');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const count = db.transaction('checkpoints').objectStore('checkpoints').count();
          count.onsuccess = () => {
            db.close();
            resolve(count.result);
          };
          count.onerror = () => reject(count.error);
        };
      }),
  );
}

/**
 * Swaps a run's stored checkpoint for a damaged copy (no tensors), keeping the original under "<id>:saved";
 * `undo` puts the original back.
 */
async function damageCheckpoint(page: Page, runId: string, undo = false) {
  await page.evaluate(
    ({ id, undo }) =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open('lora-studio');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const tx = db.transaction('checkpoints', 'readwrite');
          const store = tx.objectStore('checkpoints');
          const read = store.get(undo ? `${id}:saved` : id);
          read.onsuccess = () => {
            if (undo) {
              store.put({ ...read.result, id });
              store.delete(`${id}:saved`);
            } else {
              store.put({ ...read.result, id: `${id}:saved` });
              store.put({ ...read.result, state: [] });
            }
          };
          tx.oncomplete = () => {
            db.close();
            resolve();
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
    { id: runId, undo },
  );
}

/** Every status a run card showed, recorded as it renders (queued and preparing pass too quickly to poll). */
async function recordStatuses(page: Page, runId: string) {
  await page.evaluate((id) => {
    const seen: string[] = [];
    (window as unknown as { __statuses: string[] }).__statuses = seen;
    const record = () => {
      const status = document
        .querySelector(`[data-testid="run-card"][data-run-id="${id}"]`)
        ?.getAttribute('data-status');
      if (status && seen.at(-1) !== status) seen.push(status);
    };
    new MutationObserver(record).observe(document.body, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ['data-status'],
    });
  }, runId);
}

test('a run cut off by a reload resumes from its last checkpoint and finishes', async ({ page }) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await page.getByTestId('try-demo').click();
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });

  // One LoRA run of 40 steps: a checkpoint every 5 steps (10% of the run, at least 5), validation every 10.
  const cards = page.getByTestId('run-card');
  await expect(cards).toHaveCount(4);
  for (const name of [DEMO.gora, DEMO.gralora, DEMO.gelora])
    await page.getByRole('button', { name: `Remove ${name}`, exact: true }).click();
  await expect(cards).toHaveCount(1);
  const id = (await cards.first().getAttribute('data-run-id'))!;
  const run = page.locator(`[data-testid="run-card"][data-run-id="${id}"]`);
  const legend = page.locator(`[data-testid="loss-legend"][data-run-id="${id}"]`);
  await shrink(run, { Steps: '40', 'Eval every': '10' });
  await run.getByTestId('run-start').click();
  await expect(run).toHaveAttribute('data-checkpoint-step', /^\d+$/, { timeout: 120_000 });
  expect(await storedCheckpoints(page)).toBe(1);

  // Reload mid-run: the run is interrupted, and offers to resume from the stored checkpoint.
  await page.reload();
  await expect(run).toHaveAttribute('data-status', 'interrupted');
  const step = Number(await run.getAttribute('data-checkpoint-step'));
  expect(step > 0 && step < 40 && step % 5 === 0, `checkpoint at step ${step}`).toBe(true);
  expect(Number(await legend.getAttribute('data-points'))).toBeGreaterThanOrEqual(step);
  await expect(run.getByTestId('run-checkpoint')).toContainText(`Checkpoint: step ${step} of 40`);
  await expect(run.getByRole('button', { name: 'Run again' })).toBeVisible();
  const resume = run.getByTestId('run-resume');
  await expect(resume).toHaveText(`Resume from step ${step}`);
  // The demo model and dataset come back by themselves: the button waits for them.
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(page.getByTestId('dataset-preview')).toContainText('tinyshakespeare.txt');
  await expect(resume).toBeEnabled();
  await expect(run.getByTestId('resume-problem')).toHaveCount(0);
  await shootPanel(page, 'runs', 'runs-resume-interrupted');

  // A session on the user's own files (which do not come back by themselves): the button says what to load.
  await page.evaluate(() => localStorage.setItem('lora-studio:model', 'files'));
  await page.reload();
  await expect(resume).toHaveText(`Resume from step ${step}`);
  await expect(resume).toBeDisabled();
  await expect(resume).toHaveAttribute('title', 'Load stories260K to resume this run.');
  await expect(run.getByTestId('resume-problem')).toHaveText('· Load stories260K to resume this run.');
  await shootPanel(page, 'runs', 'runs-resume-needs-model');
  await page.getByTestId('model-folder-input').setInputFiles('public/demo/model');
  await expect(run.getByTestId('resume-problem')).toHaveText('· Load tinyshakespeare.txt to resume this run.');
  await page.getByTestId('dataset-input').setInputFiles('public/demo/data/tinyshakespeare.txt');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(resume).toBeEnabled();
  await expect(run.getByTestId('resume-problem')).toHaveCount(0);

  // A damaged checkpoint is refused with the reason, and the run stays as it was.
  await damageCheckpoint(page, id);
  await resume.click();
  await expect(run.getByTestId('run-message')).toContainText(`Its checkpoint (step ${step}) is missing or damaged`);
  await expect(run).toHaveAttribute('data-status', 'interrupted');
  await expect(resume).toHaveCount(0);
  await expect(run.getByRole('button', { name: 'Run again' })).toBeVisible();
  // With the good one back, a reload finds it by its step alone (the run's record had given it up); the demo is back too.
  await damageCheckpoint(page, id, true);
  await page.evaluate(() =>
    ['model', 'dataset'].forEach((what) => localStorage.setItem(`lora-studio:${what}`, 'demo')),
  );
  await page.reload();
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(resume).toHaveText(`Resume from step ${step}`);
  await expect(resume).toBeEnabled();

  await recordStatuses(page, id);
  await resume.click();
  await expect(run).toHaveAttribute('data-status', 'done', { timeout: 4 * 60_000 });
  expect(await page.evaluate(() => (window as unknown as { __statuses: string[] }).__statuses)).toContain('training');
  await expect(run.locator('.metric', { hasText: 'Steps' })).toContainText('40/40');
  // Steps 0..N-1 from before the reload and N..39 after it, each once; validation at 0, 10, 20, 30 and 40, none twice.
  await expect(legend).toHaveAttribute('data-points', '40');
  await expect(legend).toHaveAttribute('data-evals', '5');
  await expect(page.getByTestId('layer-grad-chart')).toHaveAttribute('data-points', '40');
  await expect(run.getByTestId('run-resume')).toHaveCount(0);
  await expect(run.getByTestId('run-checkpoint')).toHaveCount(0);
  await expect(run).not.toHaveAttribute('data-checkpoint-step', /./);
  await expect.poll(() => storedCheckpoints(page)).toBe(0);
  // The validation loss measured at step 0, before the reload, still gives the comparison its improvement.
  const row = page.getByTestId('comparison-row');
  await expect(row.getByTestId('final-val-loss')).toHaveText(/^\d+\.\d{3}/);
  await expect(row.locator('td').nth(8)).toHaveText(/^[+-]\d+\.\d{3}$/);
  await shootPanel(page, 'runs', 'runs-resumed');
  await shootPanel(page, 'charts', 'charts-resumed');

  // The finished run is what a reload shows.
  await page.reload();
  await expect(run).toHaveAttribute('data-status', 'done');
  await expect(legend).toHaveAttribute('data-points', '40');
  await expect(legend).toHaveAttribute('data-evals', '5');
  await expect(run.locator('.metric', { hasText: 'Steps' })).toContainText('40/40');
  await expect(run.getByTestId('run-resume')).toHaveCount(0);
  expect(pageErrors).toEqual([]);
});

test('runs saved by the first release survive the database upgrade; an old interrupted run has no checkpoint to resume', async ({
  page,
}) => {
  const [doneConfig, cutConfig] = demoRuns();
  const points = [0, 1, 2].map((step) => ({
    step,
    loss: 5 - step / 10,
    lr: 3e-3,
    gradNorm: 1,
    tokensPerSecond: 100,
    tokens: 64 * (step + 1),
    elapsedMs: 100 * step,
  }));
  // The record format of the first release: no analysis, adapter format, preparation or checkpoint fields.
  const record = (config: typeof doneConfig, status: string, createdAt: number) => ({
    config,
    status,
    stage: null,
    message: null,
    createdAt,
    startedAt: createdAt,
    finishedAt: null,
    modelKey: 'old-model',
    modelName: 'stories260K',
    datasetName: 'tinyshakespeare.txt',
    points,
    evals: [],
    progress: null,
    weights: null,
    summary:
      status !== 'done'
        ? null
        : {
            steps: 3,
            stopReason: 'done',
            message: null,
            initialValLoss: null,
            finalValLoss: 4.5,
            trainableParams: 46240,
            elapsedMs: 300,
            tokensPerSecond: 100,
            tokens: 192,
            trainExamples: 10,
            validationExamples: 0,
            peakGpuBytes: 1 << 20,
          },
  });
  // A same-origin page that does not open the studio's database, to write version 1 as that release did.
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
          const db = open.result;
          const tx = db.transaction('runs', 'readwrite');
          for (const r of records) tx.objectStore('runs').put(r);
          tx.oncomplete = () => {
            db.close();
            resolve();
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
    [record({ ...doneConfig, steps: 3 }, 'done', 1), record(cutConfig, 'training', 2)],
  );

  await page.goto('/');
  const done = page.locator(`[data-testid="run-card"][data-run-id="${doneConfig.id}"]`);
  const cut = page.locator(`[data-testid="run-card"][data-run-id="${cutConfig.id}"]`);
  await expect(done).toHaveAttribute('data-status', 'done');
  await expect(done.locator('.metric', { hasText: 'Steps' })).toContainText('3/3');
  await expect(cut).toHaveAttribute('data-status', 'interrupted');
  await expect(cut.getByRole('button', { name: 'Run again' })).toBeVisible();
  await expect(cut.getByTestId('run-resume')).toHaveCount(0);
  await expect(cut.getByTestId('run-checkpoint')).toHaveCount(0);
  await expect(page.getByTestId('comparison-row')).toHaveCount(1);
  expect(await storedCheckpoints(page)).toBe(0);
});

test('a model folder from the directory picker; a file that is not a model is refused with the reason', async ({
  page,
}) => {
  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  // Not a model: the message lists what a model folder needs and what was found.
  await dropFiles(page, 'model-drop', [{ name: 'notes.txt', text: 'hello' }]);
  await expect(page.getByTestId('model-error')).toContainText('not a model folder');
  await expect(page.getByTestId('model-error')).toContainText('Found: notes.txt');
  // An architecture the engine does not implement: named, with the supported ones.
  await dropFiles(page, 'model-drop', [
    { name: 'config.json', text: JSON.stringify({ model_type: 'bert', hidden_size: 16 }) },
    { name: 'model.safetensors', text: 'not used' },
  ]);
  await expect(page.getByTestId('model-error')).toContainText('model_type "bert" is not supported; supported:');
  // A config without weights: says which files are missing.
  const demoConfig = readFileSync('public/demo/model/config.json', 'utf8');
  await dropFiles(page, 'model-drop', [
    { name: 'config.json', text: demoConfig },
    { name: 'tokenizer.json', text: readFileSync('public/demo/model/tokenizer.json', 'utf8') },
  ]);
  await expect(page.getByTestId('model-error')).toContainText('has no *.safetensors weights');
  // The demo model's folder, picked like a user's own folder (files carry webkitRelativePath "model/...").
  await page.getByTestId('model-folder-input').setInputFiles('public/demo/model');
  const card = page.getByTestId('model-card');
  await expect(card).toContainText('stories260K');
  await expect(card).not.toContainText('embedded demo');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(page.getByTestId('model-error')).toHaveCount(0);
  await expect(card).toContainText('model.safetensors');
  // A failed load says the model on the GPU stays.
  await dropFiles(page, 'model-drop', [{ name: 'notes.txt', text: 'hello' }]);
  await expect(page.getByTestId('model-error')).toContainText('not a model folder');
  await expect(page.getByTestId('model-error-kept')).toContainText('stories260K stays loaded');
  await expect(card).toContainText('stories260K');

  // Keep the weights as bf16: the model is uploaded again, the card says so, and the choice outlives a reload.
  const stored = page.getByTestId('model-weight-storage');
  await expect(stored).toContainText('· f32');
  const f32Text = await stored.textContent();
  const select = page.getByTestId('model-weight-storage-select').locator('select');
  await select.selectOption('bf16');
  await expect(stored).toContainText('· bf16');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  expect(await stored.textContent()).not.toBe(f32Text); // fewer bytes
  await page.reload();
  await page.getByTestId('model-folder-input').setInputFiles('public/demo/model');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(select).toHaveValue('bf16');
  await expect(stored).toContainText('· bf16');
  await select.selectOption('auto');
  await expect(stored).toContainText('· f32');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(page.getByTestId('model-error')).toHaveCount(0);
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

test('a dataset whose fields match no format is mapped by hand; a wrong mapping says why', async ({ page }) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await page.getByTestId('model-folder-input').setInputFiles('public/demo/model');
  await expect(page.getByTestId('model-card')).toContainText('stories260K');

  // Field names no alias knows: detection finds no format, but the records stay loaded for mapping.
  const rows = ['France:Paris', 'Italy:Rome', 'Spain:Madrid', 'Peru:Lima', 'Chile:Santiago'].map((pair) => {
    const [country, capital] = pair.split(':');
    return JSON.stringify({ query: `What is the capital of ${country}?`, reply: `The capital is ${capital}.` });
  });
  await dropFiles(page, 'dataset-drop', [{ name: 'qa.jsonl', text: rows.join('\n') }]);
  await expect(page.getByTestId('dataset-unmatched')).toContainText(
    'no supported dataset format matches the fields found (query, reply)',
  );
  await expect(page.getByTestId('dataset-format')).toHaveText('Unknown format');

  // A required role left unmapped: the specific error, and the dataset stays as it was.
  await page.getByTestId('dataset-format-select').selectOption('prompt_completion');
  await page.getByTestId('dataset-column-prompt').selectOption('query');
  await page.getByTestId('dataset-format-apply').click();
  await expect(page.getByTestId('dataset-error')).toContainText(
    'needs a field for completion; fields found: query, reply',
  );
  await expect(page.getByTestId('dataset-format')).toHaveText('Unknown format');

  await page.getByTestId('dataset-column-completion').selectOption('reply');
  await page.getByTestId('dataset-format-apply').click();
  await expect(page.getByTestId('dataset-format')).toHaveText('Prompt / completion');
  await expect(page.getByTestId('dataset-columns')).toContainText('prompt ← query, completion ← reply');
  await expect(page.getByTestId('dataset-error')).toHaveCount(0);
  await expect(page.getByTestId('dataset-unmatched')).toHaveCount(0);
  const sample = page.getByTestId('dataset-sample').first();
  await expect(sample.locator('.seg-ctx').first()).toContainText('capital of France');
  await expect(sample.locator('.seg-sup').first()).toContainText('Paris');
  await expect(page.getByTestId('dataset-column-completion')).toHaveValue('reply');
  await shootPanel(page, 'dataset', 'dataset-mapped');

  // A run on the mapped data: with reference answers, the comparison reports exact match on the held-out ones.
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await page.getByTestId('add-run').click();
  const run = page.getByTestId('run-card').first();
  await shrink(run, { Steps: '2', 'Val. examples': '2' });
  await run.getByTestId('run-start').click();
  await expect(run).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
  await expect(page.getByTestId('comparison-exact-match').first()).toHaveText(/^\d+% of 2$/);
  expect(pageErrors).toEqual([]);
});

test("the Benchmark panel measures matmul and a LoRA step beside jax-js and TensorFlow.js, every method's step and memory, in the tab", async ({
  page,
  baseURL,
}) => {
  test.setTimeout(240_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // Worker requests included: the peers must come from the app itself, loaded only when the benchmark runs.
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await page.getByTestId('try-demo').click();
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 60_000 });

  await page.locator('.nav a[href="#bench"]').click();
  const panel = page.getByTestId('panel-bench');
  await expect(panel).toContainText('npm run bench');
  const scriptsBefore = new Set(requests.filter((u) => u.endsWith('.js')));
  const started = Date.now();
  await panel.getByTestId('bench-run').click();
  await expect(panel.getByTestId('bench-progress')).toBeVisible();
  // Rows appear as they finish, while the rest is still running.
  await expect(panel.getByTestId('bench-matmul-row').first()).toBeVisible({ timeout: 90_000 });
  await expect(panel.getByTestId('bench-progress')).toBeVisible();
  await expect(panel.getByTestId('bench-results')).toHaveAttribute('data-complete', 'true', { timeout: 180_000 });
  console.log(`benchmark took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await expect(panel.getByTestId('bench-error')).toHaveCount(0);
  await expect(panel.getByTestId('bench-progress')).toHaveCount(0);

  const origin = new URL(baseURL!).origin;
  expect(requests.filter((u) => !u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:'))).toEqual([]);
  const lazyScripts = requests.filter((u) => u.endsWith('.js') && !scriptsBefore.has(u));
  expect(lazyScripts.length, 'the peers are separate chunks, loaded when the benchmark starts').toBeGreaterThanOrEqual(
    3,
  );

  const positive = (x: string | null) => x !== null && Number.isFinite(Number(x)) && Number(x) > 0;
  const finite = (xs: (string | null)[]) => xs.every(positive);
  const rows = panel.getByTestId('bench-matmul-row');
  const gflops = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-gflops')));
  expect(gflops.length).toBeGreaterThanOrEqual(2);
  expect(finite(gflops), gflops.join(', ')).toBe(true);
  await expect(panel.getByTestId('bench-matmul')).not.toContainText('WRONG');
  // The benchmark runs the autotune again (forced here: a software adapter is not tuned at load): every kernel,
  // split and unsplit on the narrow class, timed; one chosen per class; the plan line shows the new choice.
  const tuneRows = panel.getByTestId('bench-tune-row');
  await expect(tuneRows).toHaveCount(20);
  await expect(panel.getByTestId('bench-tune')).not.toContainText('WRONG');
  const chosenWide = await panel
    .locator('[data-testid="bench-tune-row"]:has(td:nth-child(2)[data-chosen])')
    .getAttribute('data-kernel');
  const chosenNarrow = await panel
    .locator('[data-testid="bench-tune-row"]:has(td:nth-child(3)[data-chosen])')
    .getAttribute('data-kernel');
  await expect(panel.getByTestId('bench-matmul-plan')).toContainText(
    `matmul kernels: ${chosenWide} (wide products), ${chosenNarrow} (narrow) · tuned in`,
  );

  // Each peer's column: a GFLOP/s figure (with our ratio to it) on every shape, or the peer's own error.
  for (const peer of ['jax-js', 'tfjs-webgpu']) {
    const unavailable = panel.locator(`[data-testid="bench-peer-unavailable"][data-impl="${peer}"]`);
    if (await unavailable.count()) {
      await expect(unavailable).toContainText(new RegExp(`${peer} unavailable: .{10,}`));
      console.log(`${peer}: ${await unavailable.innerText()}`);
      continue;
    }
    const cells = await panel
      .locator(`[data-testid="bench-matmul-cell"][data-impl="${peer}"]`)
      .evaluateAll((els) =>
        els.map((e) => ({ gflops: e.getAttribute('data-gflops'), error: e.getAttribute('data-error') })),
      );
    expect(cells.length).toBe(gflops.length);
    for (const c of cells) expect(positive(c.gflops) || (c.error ?? '').length > 10, JSON.stringify(c)).toBe(true);
    const ratios = await panel.locator(`[data-testid="bench-matmul-ratio"][data-impl="${peer}"]`).allInnerTexts();
    ratios.forEach((r, i) => expect(r).toMatch(cells[i].gflops ? /^[\d.,]+x$/ : /^-$/));
    console.log(
      `${peer} GFLOP/s: ${cells.map((c) => c.gflops ?? c.error).join(', ')}; ours / ${peer}: ${ratios.join(', ')}`,
    );
  }

  // The same LoRA step, ours and jax-js' autodiff: ms/step and tokens/s, or jax-js' own error; same step-0 loss.
  const steps = panel.getByTestId('bench-lora-row');
  await expect(steps).toHaveCount(2);
  const [mine, jax] = await steps.evaluateAll((els) =>
    els.map((e) => ({
      impl: e.getAttribute('data-impl'),
      ms: e.getAttribute('data-ms-per-step'),
      tps: e.getAttribute('data-tokens-per-second'),
      loss: e.getAttribute('data-first-loss'),
      error: e.getAttribute('data-error'),
    })),
  );
  expect(mine.impl).toBe('ours');
  expect(finite([mine.ms, mine.tps]), JSON.stringify(mine)).toBe(true);
  expect(jax.impl).toBe('jax-js');
  if (jax.error) {
    expect(jax.error.length).toBeGreaterThan(10);
  } else {
    expect(finite([jax.ms, jax.tps]), JSON.stringify(jax)).toBe(true);
    expect(Math.abs(Number(jax.loss) - Number(mine.loss))).toBeLessThan(1e-3 * Number(mine.loss));
  }
  console.log(`LoRA step: ${JSON.stringify(mine)} vs ${JSON.stringify(jax)}`);

  // Every method of the bench's configurations: LoRA, GoRA, GraLoRA, GeLoRA, the four baselines and full fine-tuning.
  const methods = panel.getByTestId('bench-method-row');
  await expect(methods).toHaveCount(9);
  const methodSteps = await methods.evaluateAll((els) =>
    els.map((e) => [e.getAttribute('data-ms-per-step'), e.getAttribute('data-tokens-per-second')]),
  );
  expect(finite(methodSteps.flat()), JSON.stringify(methodSteps)).toBe(true);
  await expect(methods.filter({ hasText: 'failed' })).toHaveCount(0);
  await expect(methods.first()).toContainText('LoRA r8');
  await expect(methods.last()).toContainText('Full fine-tuning');
  await expect(panel.getByTestId('bench-memory-row')).toHaveCount(9);
  await expect(methods.filter({ hasText: 'AdaLoRA r8' })).toHaveCount(1);
  // Per-kernel time when the adapter has timestamp queries, else a note saying why not.
  expect(
    (await panel.getByTestId('bench-kernel-row').count()) > 0 ||
      (await panel.getByTestId('bench-no-kernels').count()) === 1,
  ).toBe(true);
  // Readable: no table wider than its box (no horizontal scrolling).
  const overflowing = await panel
    .locator('.table-wrap')
    .evaluateAll((els) => els.filter((e) => e.scrollWidth > e.clientWidth + 1).length);
  expect(overflowing).toBe(0);
  await shootPanel(page, 'bench');
  expect(pageErrors).toEqual([]);
});

test("Alpaca prompts longer than the model's context: the preview counts what a run keeps, a plain cut is refused with the reason, keeping the answer trains; a field that is not a number holds Start", async ({
  page,
}) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  // hf-golden's Qwen3 (128 positions, a 320-token byte-level BPE: every Alpaca prompt is 120 to 160 tokens), picked
  // file by file with "Choose files…": no folder name, no _name_or_path, so it is named by its model type.
  const dir = 'test/fixtures/hf-golden/models/qwen3';
  await page
    .getByTestId('model-files-input')
    .setInputFiles(
      ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map((f) => `${dir}/${f}`),
    );
  const card = page.getByTestId('model-card');
  await expect(card.locator('.card-title')).toHaveText('qwen3');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await page.getByTestId('dataset-input').setInputFiles('test/fixtures/datasets/alpaca_handmade/alpaca.csv');
  await expect(page.getByTestId('dataset-format')).toHaveText('Alpaca instructions');

  await page.getByTestId('add-run').click();
  const run = page.getByTestId('run-card').first();
  await shrink(run, { Steps: '2', 'Seq. length': '96', 'Val. examples': '0' });
  // At the run's length every example is too long; keeping the answer drops none.
  await expect(page.getByTestId('dataset-truncated')).toContainText('6');
  await expect(page.getByTestId('dataset-truncated')).toContainText('Truncated at 96');
  await expect(page.getByTestId('dataset-dropped')).toContainText('0');
  await expect(page.getByTestId('dataset-preview')).toContainText('field "id" not used by the alpaca format');

  // A plain cut at 96 tokens leaves no answer: the preview says so, and the run is refused before step 0.
  await run.getByRole('combobox', { name: 'Truncation', exact: true }).selectOption('right');
  const problem = page.getByTestId('dataset-fit-problem');
  await expect(problem).toContainText(
    'none of its 6 examples keeps a supervised token at 96 tokens (truncation "right")',
  );
  await expect(problem).toContainText('use Truncation "Keep the answer"');
  await expect(problem).not.toContainText('--');

  // A learning rate that is not a number: Start waits, and says which field.
  await run.getByLabel('Learning rate', { exact: true }).fill('abc');
  await expect(run.getByTestId('run-start')).toBeDisabled();
  await expect(run.getByTestId('run-invalid')).toHaveText(
    '"Learning rate" is not a valid number: correct it to start this run.',
  );
  await run.getByLabel('Learning rate', { exact: true }).fill('0.001');
  await expect(run.getByTestId('run-start')).toBeEnabled();
  await expect(run.getByTestId('run-invalid')).toHaveCount(0);

  await run.getByTestId('run-start').click();
  await expect(run).toHaveAttribute('data-status', 'failed', { timeout: 60_000 });
  await expect(run.getByTestId('run-message')).toContainText('none of its 6 examples keeps a supervised token');
  await expect(run.getByTestId('run-message')).not.toContainText('NaN');

  // Keeping the answer (the default) trains on all six.
  await page.getByTestId('add-run').click();
  const keep = page.getByTestId('run-card').nth(1);
  await shrink(keep, { Steps: '2', 'Seq. length': '96', 'Val. examples': '0' });
  await keep.getByRole('combobox', { name: 'Truncation', exact: true }).selectOption('keep-answer');
  await expect(page.getByTestId('dataset-fit-problem')).toHaveCount(0);
  await keep.getByTestId('run-start').click();
  await expect(keep).toHaveAttribute('data-status', 'done', { timeout: 180_000 });
  await expect(keep.getByTestId('run-data-fit')).toHaveText(
    '6 examples at 96 tokens: 6 truncated (keep the answer), none dropped',
  );
  await expect(keep.getByTestId('run-message')).toHaveCount(0);
  await shootPanel(page, 'runs', 'runs-truncation');
  expect(pageErrors).toEqual([]);
});

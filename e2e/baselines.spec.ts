/**
 * The papers' baselines in the studio, in real Chromium with WebGPU: DoRA, PiSSA, LoRA-GA and AdaLoRA trained on
 * the demo (shrunk so SwiftShader finishes them in seconds), what each changes shown in the Rank allocation panel
 * (AdaLoRA's ranks over time, DoRA's magnitude drift, the singular values PiSSA and LoRA-GA start from), their PEFT
 * exports (DoRA with its magnitude vectors, PiSSA as the rank-2r LoRA on the original base, AdaLoRA as ADALORA with
 * its boolean rank_pattern), and the timeline kept across a reload.
 */
import { mkdirSync } from 'node:fs';
import { strFromU8 } from 'fflate';
import { expect, test, type Locator } from 'playwright/test';
import { ARTIFACTS, downloadZip, openDemo, shootPanel } from './helpers';

/** stories260K: 5 layers x 7 linear modules; hidden 64, KV width 32, intermediate 172. */
const MODULES = 35;
const RANK = 8;

test.beforeAll(() => mkdirSync(ARTIFACTS, { recursive: true }));

/** safetensors: 8-byte little-endian header length, then a JSON header naming every tensor. */
function safetensorsHeader(bytes: Uint8Array): Record<string, { dtype: string; shape: number[] }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(strFromU8(bytes.subarray(8, 8 + n)));
  delete header.__metadata__;
  return header;
}

async function setRun(card: Locator, method: string, name: string) {
  await card.getByRole('combobox', { name: 'Method', exact: true }).selectOption(method);
  await card.getByLabel('Run name').fill(name);
  const fields = {
    Steps: '6',
    Batch: '2',
    'Seq. length': '32',
    'Val. examples': '4',
    'Eval every': '2',
    Warmup: '0',
  };
  for (const [label, value] of Object.entries(fields)) await card.getByLabel(label, { exact: true }).fill(value);
}

/** The values of one heatmap's cells, in the order the card shows them. */
async function cellValues(card: Locator, testId: string): Promise<number[]> {
  return card
    .getByTestId(`${testId}-cell`)
    .evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.value)));
}

test('DoRA, PiSSA, LoRA-GA and AdaLoRA train on the demo; their analysis, exports and timeline after a reload', async ({
  page,
}) => {
  test.setTimeout(8 * 60_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await openDemo(page);
  const runs = page.getByTestId('run-card');
  await expect(runs).toHaveCount(4);
  const [dora, pissa, loraga, adalora] = [0, 1, 2, 3].map((i) => runs.nth(i));
  await setRun(dora, 'dora', 'DoRA r=8');
  await setRun(pissa, 'pissa', 'PiSSA r=8');
  await setRun(loraga, 'loraga', 'LoRA-GA r=8');
  await setRun(adalora, 'adalora', 'AdaLoRA r=8');
  // DoRA adds a magnitude per output row: 46,240 + 5 x (64 + 32 + 32 + 64 + 172 + 172 + 64) = 49,240.
  await expect(dora.getByTestId('run-params')).toContainText('49.2K trainable parameters');
  await expect(pissa.getByTestId('run-params')).toContainText('46.2K trainable parameters');
  await page.getByTestId('start-all').click();
  for (const run of [dora, pissa, loraga, adalora])
    await expect(run).toHaveAttribute('data-status', 'done', { timeout: 5 * 60_000 });

  // The Rank allocation panel: AdaLoRA's ranks at every evaluation, ending at the target budget of r per module
  // on average; DoRA's magnitudes have moved; PiSSA and LoRA-GA show the singular values they start from.
  const panel = page.getByTestId('panel-allocation');
  const ranks = panel.getByTestId('timeline-ranks-card');
  await expect(ranks).toHaveCount(1);
  await expect(ranks.getByTestId('timeline-ranks-step')).toContainText(`step 6 · ${MODULES * RANK} triplets kept`);
  // The rank heatmap shows what AdaLoRA keeps at the end, the same as the timeline's newest snapshot.
  const adaloraId = await adalora.getAttribute('data-run-id');
  const kept = await cellValues(panel.locator(`[data-testid="rank-card"][data-run-id="${adaloraId}"]`), 'rank-heatmap');
  expect(kept.reduce((a, b) => a + b, 0)).toBe(MODULES * RANK);
  const slider = ranks.getByRole('slider');
  expect(Number(await slider.getAttribute('max'))).toBeGreaterThanOrEqual(3);
  await slider.fill('0');
  await expect(ranks.getByTestId('timeline-ranks-step')).toContainText('step 0');
  const initial = await cellValues(ranks, 'timeline-ranks-heatmap');
  expect(initial).toHaveLength(MODULES);
  expect(initial.reduce((a, b) => a + b, 0)).toBeGreaterThan(MODULES * RANK);

  const drift = panel.getByTestId('timeline-magnitudeDrift-card');
  await expect(drift).toHaveCount(1);
  const driftValues = await cellValues(drift, 'timeline-magnitudeDrift-heatmap');
  expect(driftValues).toHaveLength(MODULES);
  expect(driftValues.every((v) => v > 0 && v < 1)).toBe(true);

  const spectra = panel.getByTestId('spectrum-card');
  await expect(spectra).toHaveCount(2);
  for (let i = 0; i < 2; i++) {
    const sums = await cellValues(spectra.nth(i), 'spectrum-heatmap');
    expect(sums).toHaveLength(MODULES);
    expect(sums.every((v) => v > 0)).toBe(true);
  }
  await shootPanel(page, 'allocation', 'allocation-baselines');

  // Exports as PEFT writes them.
  const exportCard = async (run: Locator) =>
    page.locator(`[data-testid="export-card"][data-run-id="${await run.getAttribute('data-run-id')}"]`);
  const doraZip = await downloadZip(page, (await exportCard(dora)).getByTestId('export-button'));
  const doraConfig = JSON.parse(strFromU8(doraZip.files['adapter_config.json']));
  expect(doraConfig).toMatchObject({ peft_type: 'LORA', use_dora: true, r: RANK });
  const doraTensors = safetensorsHeader(doraZip.files['adapter_model.safetensors']);
  expect(doraTensors['base_model.model.model.layers.0.mlp.up_proj.lora_magnitude_vector'].shape).toEqual([172]);

  const pissaZip = await downloadZip(page, (await exportCard(pissa)).getByTestId('export-button'));
  const pissaConfig = JSON.parse(strFromU8(pissaZip.files['adapter_config.json']));
  // The conversion PEFT applies with path_initial_model_for_weight_conversion: rank 2r on the original base.
  expect(pissaConfig).toMatchObject({ peft_type: 'LORA', r: 2 * RANK, init_lora_weights: true });
  expect(
    safetensorsHeader(pissaZip.files['adapter_model.safetensors'])[
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'
    ].shape,
  ).toEqual([2 * RANK, 64]);

  // ... and, on request, PiSSA's default PEFT save: A and B for the residual PEFT rebuilds from the base at load.
  const rawZip = await downloadZip(page, (await exportCard(pissa)).getByTestId('export-raw-button'));
  expect(rawZip.name).toBe('pissa-r-8-raw.zip');
  expect(JSON.parse(strFromU8(rawZip.files['adapter_config.json']))).toMatchObject({
    peft_type: 'LORA',
    r: RANK,
    init_lora_weights: 'pissa',
  });
  expect(strFromU8(rawZip.files['README.md'])).toContain('PEFT rebuilds the residual base');
  await expect((await exportCard(dora)).getByTestId('export-raw-button')).toHaveCount(0);

  const adaloraZip = await downloadZip(page, (await exportCard(adalora)).getByTestId('export-button'));
  const adaloraConfig = JSON.parse(strFromU8(adaloraZip.files['adapter_config.json']));
  expect(adaloraConfig.peft_type).toBe('ADALORA');
  const pattern = adaloraConfig.rank_pattern as Record<string, boolean[]>;
  expect(Object.keys(pattern)).toHaveLength(MODULES);
  expect(Object.values(pattern).reduce((n, mask) => n + mask.filter(Boolean).length, 0)).toBe(MODULES * RANK);
  expect(strFromU8(adaloraZip.files['train_peft.py'])).toContain('update_and_allocate');

  // A reload brings the timeline back from IndexedDB.
  await page.reload();
  await expect(page.getByTestId('run-card')).toHaveCount(4, { timeout: 60_000 });
  await expect(page.getByTestId('timeline-ranks-step')).toContainText(`step 6 · ${MODULES * RANK} triplets kept`);
  await expect(page.getByTestId('timeline-magnitudeDrift-card')).toHaveCount(1);
  expect(pageErrors).toEqual([]);
});

/**
 * QLoRA in the studio, in real Chromium with WebGPU: the demo's weights kept as NF4 (quantized on the GPU at load),
 * a LoRA run over them with gradient accumulation and block recomputation, its export an ordinary PEFT LoRA; then a
 * bitsandbytes 4-bit folder (written by the quantize command) opens with its own codes and the card says so.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strFromU8 } from 'fflate';
import { expect, test } from 'playwright/test';
import { quantizeFolder } from '../src/cli/quantize';
import { ARTIFACTS, downloadZip, onlyDemoRun, openDemo } from './helpers';

test.beforeAll(() => mkdirSync(ARTIFACTS, { recursive: true }));

test('NF4 weights: a LoRA run with gradient accumulation and block recomputation; a bnb-4bit folder keeps its codes', async ({
  page,
}) => {
  test.setTimeout(6 * 60_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await openDemo(page);

  // Keep the weights as NF4: the model is uploaded again and the card counts NF4 bytes.
  const stored = page.getByTestId('model-weight-storage');
  const select = page.getByTestId('model-weight-storage-select').locator('select');
  const f32Text = await stored.textContent();
  await select.selectOption('nf4');
  await expect(stored).toContainText('nf4');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  expect(await stored.textContent()).not.toBe(f32Text);

  const run = await onlyDemoRun(page, {
    method: 'lora',
    name: 'QLoRA r=8',
    fields: { Steps: '6', Batch: '2', 'Gradient accumulation': '2', 'Seq. length': '32', 'Val. examples': '4' },
  });
  await expect(run).toContainText('effective batch = 2 × 2 = 4');
  await run.getByRole('combobox', { name: 'Activations', exact: true }).selectOption('block');
  await page.getByTestId('start-all').click();
  await expect(run).toHaveAttribute('data-status', 'done', { timeout: 4 * 60_000 });

  const exportCard = page.locator(
    `[data-testid="export-card"][data-run-id="${await run.getAttribute('data-run-id')}"]`,
  );
  const zip = await downloadZip(page, exportCard.getByTestId('export-button'));
  const config = JSON.parse(strFromU8(zip.files['adapter_config.json']));
  expect(config).toMatchObject({ peft_type: 'LORA', r: 8 });
  expect(JSON.stringify(config)).not.toMatch(/quant/);

  // A bitsandbytes NF4 folder, as transformers saves *-bnb-4bit checkpoints: the card says what it is and the
  // weights stay in its own codes.
  const out = join(mkdtempSync(join(tmpdir(), 'qlora-e2e-')), 'stories260K-bnb-4bit');
  await quantizeFolder({ model: 'public/demo/model', to: 'nf4', out, blocksize: 64 });
  await select.selectOption('auto');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await page.getByTestId('model-folder-input').setInputFiles(out);
  await expect(page.getByTestId('model-quantized')).toContainText(
    'already 4-bit (bitsandbytes NF4, double quantization)',
    {
      timeout: 60_000,
    },
  );
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(stored).toContainText('nf4');
  await expect(page.getByTestId('model-error')).toHaveCount(0);
  await page.getByTestId('panel-model').screenshot({ path: `${ARTIFACTS}/model-bnb-4bit.png` });
  expect(pageErrors).toEqual([]);
});

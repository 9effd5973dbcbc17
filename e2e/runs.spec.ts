/**
 * Run management end to end, on the demo in one page (the tests run in order and build on each other): "+ Add run"
 * saying what it copies and its presets, Clear drafts, one tiny trained run exported as metrics CSV and as a CLI
 * command, notes and tags, filters and groups (kept across a reload, with the playground's settings), the metrics
 * of the shown runs, archive and restore across a reload (an archived run leaves the charts, the comparison and
 * the playground, and stays exportable), bulk remove, a configuration exported and imported as a new draft (and
 * a bad one refused, naming the field). Screenshots of the panel at 1360x900 and 1024x768 go to e2e-artifacts/.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import Papa from 'papaparse';
import { expect, test, type BrowserContext, type Locator, type Page } from 'playwright/test';
import { ARTIFACTS, openDemo, shootPanel } from './helpers';

const LORA = 'LoRA all-linear r=8';
const GELORA = 'GeLoRA all-linear r_ref=8';

/** Shrinks a draft so SwiftShader trains it in seconds. */
async function shrink(card: Locator) {
  const fields = { Steps: '3', Batch: '2', 'Seq. length': '32', 'Val. examples': '4', 'Eval every': '0', Warmup: '0' };
  for (const [label, value] of Object.entries(fields)) await card.getByLabel(label, { exact: true }).fill(value);
}

/** Opens the card's "More" menu and picks an item. */
async function pick(card: Locator, item: string) {
  await card.getByTestId('run-menu').click();
  await card.getByTestId(item).click();
}

/** Clicks `target` and reads the text file it downloads. */
async function downloadText(page: Page, target: Locator): Promise<{ name: string; text: string }> {
  const [download] = await Promise.all([page.waitForEvent('download'), target.click()]);
  return { name: download.suggestedFilename(), text: readFileSync(await download.path(), 'utf8') };
}

/** The playground settings the reload must keep (greedy is switched off first: the fields are disabled while on). */
const PLAYGROUND_SETTINGS = { Temperature: '1.3', 'Top-k': '20', Seed: '7' };

/** Answers the next confirm() with `accept`, and returns its message once shown. */
function nextDialog(page: Page, accept: boolean): Promise<string> {
  return new Promise((resolve) => {
    page.once('dialog', async (d) => {
      resolve(d.message());
      await (accept ? d.accept() : d.dismiss());
    });
  });
}

test.describe
  .serial('run management', () => {
    let context: BrowserContext;
    let page: Page;
    let trainedId = '';
    const pageErrors: string[] = [];
    const cards = () => page.getByTestId('run-card');
    const cardOf = (id: string) => page.locator(`[data-testid="run-card"][data-run-id="${id}"]`);

    test.beforeAll(async ({ browser }) => {
      mkdirSync(ARTIFACTS, { recursive: true });
      context = await browser.newContext({ permissions: ['clipboard-read', 'clipboard-write'] });
      page = await context.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await openDemo(page);
    });
    test.afterAll(async () => {
      expect(pageErrors).toEqual([]);
      await context.close();
    });

    test('"+ Add run" says which run it copies and offers presets; Clear drafts asks, then clears; the demo comes back', async () => {
      await expect(cards()).toHaveCount(4);
      await expect(page.getByTestId('add-run')).toHaveText(`+ Add run (copy of ${GELORA})`);
      await page.getByTestId('add-run-menu').click();
      await expect(page.getByTestId('add-run-copy')).toHaveText(`Copy of ${GELORA}`);
      await page.getByTestId('add-run-preset-gralora').click();
      await expect(cards()).toHaveCount(5);
      await expect(cards().nth(4).getByLabel('Run name')).toHaveValue('GraLoRA q,v r=8 k=2');
      await expect(cards().nth(4).getByLabel('Learning rate', { exact: true })).toHaveValue('0.001');
      await expect(page.getByTestId('add-run')).toContainText('(copy of GraLoRA q,v r=8 k=2)');

      // Clear drafts: says how many, asks, and a "no" keeps them.
      const clear = page.getByTestId('clear-drafts');
      await expect(clear).toHaveText('Clear drafts (5)');
      let asked = nextDialog(page, false);
      await clear.click();
      expect(await asked).toBe('Remove all 5 drafts? Their settings are lost.');
      await expect(cards()).toHaveCount(5);
      asked = nextDialog(page, true);
      await clear.click();
      await asked;
      await expect(cards()).toHaveCount(0);
      await expect(clear).toHaveCount(0);
      await expect(page.getByTestId('add-run')).toHaveText('+ Add run');

      // Try the demo again: its four drafts are back (and pressing it twice replaces them, not adds).
      await page.getByTestId('try-demo').click();
      await expect(cards()).toHaveCount(4);
      await page.getByTestId('try-demo').click();
      await expect(cards()).toHaveCount(4);
      await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
    });

    test('a tiny trained run: its metrics as CSV, and the CLI command that trains it', async () => {
      // Keep the demo's LoRA only, shrunk.
      for (const name of ['GoRA all-linear r_ref=8', 'GraLoRA all-linear r=8 k=2', GELORA])
        await page.getByRole('button', { name: `Remove ${name}`, exact: true }).click();
      await expect(cards()).toHaveCount(1);
      trainedId = (await cards().first().getAttribute('data-run-id'))!;
      const run = cardOf(trainedId);
      await shrink(run);
      await run.getByTestId('run-start').click();
      await expect(run).toHaveAttribute('data-status', 'done', { timeout: 120_000 });

      // Metrics CSV: a header with every field, three steps, the evaluations at the start and after the last step.
      await run.getByTestId('run-menu').click();
      const csv = await downloadText(page, run.getByTestId('run-export-csv'));
      expect(csv.name).toBe('lora-all-linear-r-8-metrics.csv');
      const { data, meta } = Papa.parse<Record<string, string>>(csv.text, { header: true, skipEmptyLines: true });
      expect(meta.fields!.slice(0, 10)).toEqual([
        'run_id',
        'run',
        'step',
        'tokens',
        'loss',
        'lr',
        'grad_norm',
        'tokens_per_s',
        'elapsed_ms',
        'val_loss',
      ]);
      // stories260K has 5 blocks: a gradient norm column each.
      expect(meta.fields!.slice(10)).toEqual([0, 1, 2, 3, 4].map((i) => `layer_grad_norm_${i}`));
      expect(data.map((r) => r.step)).toEqual(['0', '1', '2', '3']);
      for (const row of data.slice(0, 3)) {
        expect(row.run_id).toBe(trainedId);
        expect(row.run).toBe(LORA);
        for (const key of ['loss', 'lr', 'grad_norm', 'tokens_per_s', 'layer_grad_norm_4'])
          expect(Number.isFinite(Number(row[key])) && row[key] !== '', `${key} of step ${row.step}`).toBe(true);
      }
      expect(Number(data[0].val_loss)).toBeGreaterThan(0);
      expect(data[3]).toMatchObject({ loss: '', lr: '' });
      expect(Number(data[3].val_loss)).toBeGreaterThan(0);

      // The CLI command: the demo's own folders, every setting of the run; copied to the clipboard.
      await pick(run, 'run-copy-cli');
      const command = run.getByTestId('run-cli-command');
      await expect(command).toBeVisible();
      const text = (await command.textContent())!;
      expect(text.startsWith('npm run cli -- train \\\n  --model public/demo/model \\\n')).toBe(true);
      for (const option of [
        '--data public/demo/data/tinyshakespeare.txt',
        '--method lora',
        '--rank 8',
        '--alpha 16',
        '--targets all-linear',
        '--steps 3',
        '--batch 2',
        '--seq-len 32',
        '--lr 0.003',
        '--warmup 0',
        '--min-lr-ratio 0.1',
        '--eval-every 0',
        '--val-batches',
      ])
        expect(text).toContain(`  ${option}`);
      expect(text).toMatch(/--val-fraction 0\.\d+/);
      await expect(run.getByTestId('run-cli-placeholders')).toHaveCount(0);
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(text);
      await shootPanel(page, 'runs', 'runs-cli-command');
      // The card's menu, open: what a run offers.
      await run.getByTestId('run-menu').click();
      await expect(run.getByRole('menuitem')).toHaveText([
        'Notes & tags…',
        'Copy as CLI command',
        'Export config (JSON)',
        'Export metrics (CSV)',
        'Export metrics (JSON)',
        'Archive',
      ]);
      await shootPanel(page, 'runs', 'runs-menu-open');
      await page.keyboard.press('Escape');
      await expect(run.getByRole('menuitem').first()).toBeHidden();
    });

    test('notes and tags on the card; filter by model and tag, group by model; the metrics of the shown runs; filter, grouping and playground settings survive a reload', async () => {
      const run = cardOf(trainedId);
      await pick(run, 'run-notes-menu');
      const editor = run.getByTestId('run-notes-editor');
      await editor.getByLabel('Tags').fill('baseline,  tiny, Baseline');
      await editor.getByLabel('Notes').fill('first try on SwiftShader');
      await editor.getByTestId('run-notes-save').click();
      await expect(run.getByTestId('run-tag')).toHaveText(['baseline', 'tiny']);
      await expect(run.getByTestId('run-notes-text')).toHaveText('first try on SwiftShader');

      // A draft beside it: not started, so it has no model yet.
      await page.getByTestId('add-run').click();
      await expect(cards()).toHaveCount(2);
      const model = page.getByTestId('runs-filter-model');
      await expect(model.locator('option')).toHaveText(['All', 'stories260K (1)', 'Not started yet (1)']);
      await model.selectOption({ label: 'stories260K (1)' });
      await expect(cards()).toHaveCount(1);
      await expect(cards().first()).toHaveAttribute('data-run-id', trainedId);
      await expect(page.getByTestId('runs-filter-hidden')).toContainText('1 run hidden by the filter');
      await model.selectOption({ label: 'Not started yet (1)' });
      await expect(cards()).toHaveCount(1);
      await expect(cards().first()).toHaveAttribute('data-status', 'draft');
      await model.selectOption({ label: 'All' });
      await expect(cards()).toHaveCount(2);

      await page.getByTestId('runs-filter-tag').selectOption({ label: 'tiny (1)' });
      await expect(cards()).toHaveCount(1);
      await expect(cards().first()).toHaveAttribute('data-run-id', trainedId);
      await page.getByTestId('runs-filter-hidden').getByRole('button', { name: 'Show all' }).click();
      await expect(cards()).toHaveCount(2);

      await page.getByTestId('runs-group').selectOption('model');
      await expect(page.getByTestId('run-group').locator('.run-group-head')).toHaveText([
        'stories260K (1)',
        'Not started yet (1)',
      ]);
      await shootPanel(page, 'runs', 'runs-grouped-1360');
      await page.setViewportSize({ width: 1024, height: 768 });
      await shootPanel(page, 'runs', 'runs-grouped-1024');
      await page.setViewportSize({ width: 1360, height: 900 });

      // "Export metrics" exports the runs the list shows, and says how many (the draft has none).
      const exportMenu = page.getByTestId('runs-export-all');
      await exportMenu.click();
      await expect(page.getByTestId('runs-export-csv')).toHaveText(
        'Export metrics of the 1 shown run with metrics (CSV)',
      );
      await page.keyboard.press('Escape');
      await model.selectOption({ label: 'stories260K (1)' });
      await exportMenu.click();
      await expect(page.getByTestId('runs-export-json')).toHaveText('Export metrics of the shown run (JSON)');
      await shootPanel(page, 'runs', 'runs-export-shown');
      const metrics = await downloadText(page, page.getByTestId('runs-export-json'));
      expect(JSON.parse(metrics.text).runs.map((r: { id: string }) => r.id)).toEqual([trainedId]);

      // Playground settings, to find again after the reload.
      const settings = page.getByTestId('playground-settings');
      await settings.scrollIntoViewIfNeeded();
      await settings.locator('label.switch').click();
      await expect(page.getByTestId('greedy')).not.toBeChecked();
      for (const [label, value] of Object.entries(PLAYGROUND_SETTINGS))
        await settings.getByLabel(label, { exact: true }).fill(value);
      await page.getByLabel('Stop strings').fill('The end');
      await page.getByLabel('Max new tokens').fill('64');
      await page.getByTestId('panel-playground').getByRole('radio', { name: 'Chat' }).click();
      await page.getByTestId('chat-system').fill('Answer in rhyme.');

      await page.reload();
      await expect(cards()).toHaveCount(1);
      await expect(model).toHaveValue('stories260K');
      await expect(page.getByTestId('runs-group')).toHaveValue('model');
      await expect(page.getByTestId('runs-filter-hidden')).toContainText('1 run hidden by the filter');
      await expect(cardOf(trainedId).getByTestId('run-tag')).toHaveText(['baseline', 'tiny']);
      await expect(cardOf(trainedId).getByTestId('run-notes-text')).toHaveText('first try on SwiftShader');
      await expect(page.getByTestId('greedy')).not.toBeChecked();
      for (const [label, value] of Object.entries(PLAYGROUND_SETTINGS))
        await expect(settings.getByLabel(label, { exact: true })).toHaveValue(value);
      await expect(page.getByLabel('Stop strings')).toHaveValue('The end');
      await expect(page.getByLabel('Max new tokens')).toHaveValue('64');
      await expect(page.getByTestId('panel-playground').getByRole('radio', { name: 'Chat' })).toBeChecked();
      await expect(page.getByTestId('chat-system')).toHaveValue('Answer in rhyme.');
      await shootPanel(page, 'playground', 'playground-settings-reloaded');

      // Back to the whole list, ungrouped, for the tests that follow.
      await page.getByTestId('runs-filter-hidden').getByRole('button', { name: 'Show all' }).click();
      await page.getByTestId('runs-group').selectOption('none');
      await expect(cards()).toHaveCount(2);
      await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
    });

    test('archive hides a run (kept across a reload) from the list, the charts, the comparison and the playground, not the export; the Archived view restores it; removing several asks first', async () => {
      const legendOf = (id: string) => page.locator(`[data-testid="loss-legend"][data-run-id="${id}"]`);
      const sources = page.getByTestId('panel-playground').locator('.source-picks');
      await expect(legendOf(trainedId)).toHaveCount(1);
      await expect(page.getByTestId('comparison-row')).toHaveCount(1);
      await expect(sources).toContainText(LORA);

      await cardOf(trainedId).getByTestId('run-select').check();
      await expect(page.getByTestId('runs-bulk')).toContainText('1 run selected');
      await page.getByTestId('runs-archive').click();
      await expect(cards()).toHaveCount(1);
      await expect(cardOf(trainedId)).toHaveCount(0);
      await expect(page.getByTestId('runs-view-archived')).toHaveText('Archived (1)');
      await expect(page.getByTestId('runs-view-current')).toHaveText('Runs (1)');

      // It leaves the charts, the comparison and the playground; the export panel keeps it, folded.
      const checkArchivedElsewhere = async () => {
        await expect(legendOf(trainedId)).toHaveCount(0);
        await expect(page.getByTestId('loss-chart-empty')).toContainText('Every run with metrics is archived (1)');
        await expect(page.getByTestId('comparison-row')).toHaveCount(0);
        await expect(page.getByTestId('comparison-empty')).toContainText('Every finished run is archived (1)');
        await expect(sources).not.toContainText(LORA);
        await expect(page.getByTestId('export-archived').locator('summary')).toHaveText('Archived runs (1)');
      };
      await checkArchivedElsewhere();
      const archivedExport = page.locator(`[data-testid="export-card"][data-run-id="${trainedId}"]`);
      await expect(archivedExport).toBeHidden();
      await page.getByTestId('export-archived').locator('summary').click();
      await expect(archivedExport).toBeVisible();
      await shootPanel(page, 'export', 'export-archived-open');
      await shootPanel(page, 'charts', 'charts-all-archived');
      // The current view's metrics: only the draft is shown, it has none.
      await page.getByTestId('runs-export-all').click();
      await expect(page.getByTestId('runs-export-csv')).toHaveText('Export metrics (CSV): no shown run has any yet');
      await expect(page.getByTestId('runs-export-csv')).toBeDisabled();
      await page.keyboard.press('Escape');

      await page.reload();
      await expect(page.getByTestId('runs-view-archived')).toHaveText('Archived (1)');
      await expect(cards()).toHaveCount(1);
      await checkArchivedElsewhere();
      await page.getByTestId('runs-view-archived').click();
      await expect(cards()).toHaveCount(1);
      // The Archived view shows it: its metrics are the shown ones now.
      await page.getByTestId('runs-export-all').click();
      await expect(page.getByTestId('runs-export-csv')).toHaveText('Export metrics of the shown run (CSV)');
      await page.keyboard.press('Escape');
      await expect(cardOf(trainedId)).toHaveAttribute('data-archived', 'true');
      await shootPanel(page, 'runs', 'runs-archived');
      await cardOf(trainedId).getByTestId('run-select').check();
      await page.getByTestId('runs-restore').click();
      await expect(page.getByTestId('runs-empty-view')).toHaveText('No archived runs.');
      await page.getByTestId('runs-view-current').click();
      await expect(cards()).toHaveCount(2);
      await expect(cardOf(trainedId)).not.toHaveAttribute('data-archived', 'true');
      // Restored: back in the charts and the comparison, in its own colour again.
      await expect(legendOf(trainedId)).toHaveCount(1);
      await expect(page.getByTestId('comparison-row')).toHaveCount(1);
      await expect(page.getByTestId('export-archived')).toHaveCount(0);

      // Removing the selected runs asks first; "no" keeps them.
      const draftId = (await cards().nth(1).getAttribute('data-run-id'))!;
      await cardOf(draftId).getByTestId('run-select').check();
      let asked = nextDialog(page, false);
      await page.getByTestId('runs-remove').click();
      expect(await asked).toBe('Remove 1 run? This cannot be undone.');
      await expect(cards()).toHaveCount(2);
      asked = nextDialog(page, true);
      await page.getByTestId('runs-remove').click();
      await asked;
      await expect(cards()).toHaveCount(1);
      await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
    });

    test("a run's configuration exported and imported as a new draft; a bad file is refused, naming the field", async () => {
      const run = cardOf(trainedId);
      await run.getByTestId('run-menu').click();
      const exported = await downloadText(page, run.getByTestId('run-export-config'));
      expect(exported.name).toBe('lora-all-linear-r-8-config.json');
      const doc = JSON.parse(exported.text);
      expect(doc).toMatchObject({
        format: 'lora-studio-run',
        version: 1,
        settings: { name: LORA, method: 'lora', rank: 8, steps: 3, batch: 2, seq: 32, valExamples: 4, lr: 0.003 },
      });

      doc.settings.name = 'Imported run';
      doc.settings.seed = 42;
      const input = page.getByTestId('run-config-input');
      await input.setInputFiles({
        name: 'run.json',
        mimeType: 'application/json',
        buffer: Buffer.from(JSON.stringify(doc)),
      });
      await expect(cards()).toHaveCount(2);
      const imported = cards().nth(1);
      await expect(imported).toHaveAttribute('data-status', 'draft');
      await expect(imported.getByLabel('Run name')).toHaveValue('Imported run');
      await expect(imported.getByLabel('Seed', { exact: true })).toHaveValue('42');
      await expect(imported.getByLabel('Steps', { exact: true })).toHaveValue('3');
      await expect(imported.getByLabel('Seq. length', { exact: true })).toHaveValue('32');
      await expect(page.getByTestId('run-import-error')).toHaveCount(0);

      const bad = { ...doc, settings: { ...doc.settings, lr: -1, stepz: 5, extras: { graloraK: 2 } } };
      await input.setInputFiles({
        name: 'bad.json',
        mimeType: 'application/json',
        buffer: Buffer.from(JSON.stringify(bad)),
      });
      const error = page.getByTestId('run-import-error');
      await expect(error).toContainText('"stepz" is not a run setting.');
      await expect(error).toContainText('"lr" (Learning rate) must be a positive number (got -1).');
      await expect(error).toContainText(
        '"extras.graloraK" (k) is not an option of LoRA: it belongs to GoRA, GraLoRA, GeLoRA.',
      );
      await expect(cards()).toHaveCount(2);
      await shootPanel(page, 'runs', 'runs-import-error');

      // A dataset of the user's own: the command says which path the browser cannot know.
      await page.getByTestId('dataset-input').setInputFiles('test/fixtures/datasets/alpaca_handmade/alpaca.csv');
      await expect(page.getByTestId('dataset-format')).toHaveText('Alpaca instructions');
      await pick(imported, 'run-copy-cli');
      await expect(imported.getByTestId('run-cli-command')).toContainText("--data '<dataset-file>'");
      await expect(imported.getByTestId('run-cli-placeholders')).toHaveText(
        'The browser does not know where your files are: replace <dataset-file> with the path of alpaca.csv.',
      );
      await page.setViewportSize({ width: 1024, height: 768 });
      await shootPanel(page, 'runs', 'runs-manage-1024');
      await page.setViewportSize({ width: 1360, height: 900 });
      await shootPanel(page, 'runs', 'runs-manage-1360');
    });
  });

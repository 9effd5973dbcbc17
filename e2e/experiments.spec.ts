/**
 * Experiments end to end on the embedded demo (SwiftShader where there is no GPU): a shrunk experiment (LoRA and
 * a budget-matched GraLoRA x 2 rates x 2 seeds, a few steps each) through the budget table, the live run list and
 * the summary table to the report zip and an adapter's export; a definition file with problems refused with each
 * field named; persistence across a reload; and an experiment cut off by a reload resuming with its finished
 * runs kept (only the others are trained).
 */
import { mkdirSync } from 'node:fs';
import { strFromU8 } from 'fflate';
import { expect, test, type Locator, type Page } from 'playwright/test';
import { ARTIFACTS, downloadZip, openDemo, shootPanel } from './helpers';

test.beforeAll(() => mkdirSync(ARTIFACTS, { recursive: true }));

/** The newest experiment's card (the panel lists the newest first). */
function newestCard(page: Page): Locator {
  return page.getByTestId('experiment-card').first();
}

/** A new draft on the demo, shrunk so SwiftShader trains each run in seconds: LoRA and GraLoRA, the given grid. */
async function shrunkDraft(page: Page, name: string, grid: { rates: string; seeds: string; steps: string }) {
  await page.getByTestId('experiment-new').click();
  const card = newestCard(page);
  await expect(card).toHaveAttribute('data-status', 'draft');
  await card.getByLabel('Experiment name').fill(name);
  for (const config of ['gora', 'gelora'])
    await card.getByRole('button', { name: `Remove configuration ${config}`, exact: true }).click();
  await expect(card.getByTestId('experiment-method')).toHaveCount(2);
  const fields: Record<string, string> = {
    'Val. fraction': '0.03',
    'Test fraction': '0.03',
    Steps: grid.steps,
    Batch: '2',
    'Seq. length': '32',
    Warmup: '0',
    'Eval every': '0',
    Seeds: grid.seeds,
  };
  for (const [label, value] of Object.entries(fields)) await card.getByLabel(label, { exact: true }).fill(value);
  await card.getByRole('radio', { name: 'Shared' }).click();
  await card.getByLabel('Shared learning rates', { exact: true }).fill(grid.rates);
  return card;
}

test('an experiment on the demo: budget, runs, summary with intervals, the report zip and an adapter; bad files refused', async ({
  page,
}) => {
  const started = Date.now();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`[browser] ${m.text()}`);
  });
  await openDemo(page);
  await expect(page.getByTestId('dataset-preview')).toContainText('tinyshakespeare.txt');

  // A definition file with problems: every one named by its field, nothing added.
  await page.getByTestId('experiment-import').setInputFiles({
    name: 'bad.json',
    mimeType: 'application/json',
    buffer: Buffer.from(
      JSON.stringify({
        model: 'm',
        data: 'd',
        split: { validation: 2 },
        methods: [{ name: 'g', method: 'gralora', rank: 8, gralora_k: 3 }],
      }),
    ),
  });
  const importError = page.getByTestId('experiment-import-error');
  await expect(importError).toContainText('split.validation must be a fraction in (0, 1)');
  await expect(importError).toContainText('GraLoRA');
  await expect(importError).not.toContainText('--');
  await expect(page.getByTestId('experiment-card')).toHaveCount(0);

  // The draft: LoRA (rank 8, the baseline) and GraLoRA with its rank matched, 2 rates x 2 seeds.
  const card = await shrunkDraft(page, 'e2e-tiny', { rates: '0.001, 0.003', seeds: '0, 1', steps: '3' });
  await expect(card.getByTestId('experiment-run-count')).toHaveText('8 runs');
  const budgetRows = card.getByTestId('budget-row');
  await expect(budgetRows).toHaveCount(2);
  await expect(budgetRows.nth(0).getByTestId('budget-ratio')).toHaveText('100%');
  await expect(card.getByRole('group', { name: 'Configuration lora' }).getByTestId('matched-rank')).toHaveCount(0);
  await expect(card.getByRole('group', { name: 'Configuration gralora' }).getByTestId('matched-rank')).toContainText(
    '(matched)',
  );
  await expect(card.getByTestId('experiment-problems')).toHaveCount(0);
  // A field that does not parse holds Start, naming the field.
  await card.getByLabel('Seeds', { exact: true }).fill('0, x');
  await expect(card.getByTestId('experiment-invalid')).toContainText('"Seeds" is not a valid number');
  await expect(card.getByTestId('experiment-start')).toBeDisabled();
  await card.getByLabel('Seeds', { exact: true }).fill('0, 1');
  await shootPanel(page, 'experiments', 'experiments-draft');

  await card.getByTestId('experiment-start').click();
  await expect(card).toHaveAttribute('data-status', 'running', { timeout: 60_000 });
  await expect(card.getByTestId('experiment-current')).toContainText(/Run \d of 8/, { timeout: 60_000 });
  await expect(card).toHaveAttribute('data-status', 'done', { timeout: 4 * 60_000 });
  console.log(`experiment of 8 runs done after ${((Date.now() - started) / 1000).toFixed(0)} s`);

  // Every run finished, none failed; the summary: both configurations, test loss with its interval over 2 seeds.
  await expect(card.getByTestId('experiment-runs-done')).toHaveText('8/8 runs');
  await expect(card.locator('[data-testid="experiment-run"][data-status="done"]')).toHaveCount(8);
  await expect(card.getByTestId('experiment-run-error')).toHaveCount(0);
  const rows = card.getByTestId('experiment-summary-row');
  await expect(rows).toHaveCount(2);
  expect(await rows.evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.name))).toEqual(['lora', 'gralora']);
  for (const row of [rows.nth(0), rows.nth(1)])
    await expect(row.getByTestId('summary-test-loss')).toHaveText(/^\d+\.\d{4} ± \d+\.\d{4}$/);
  await expect(rows.nth(0)).toContainText('baseline');
  await expect(rows.nth(1)).toContainText(/Δ|\[|no difference|lower|higher/);
  await expect(card.getByText('NaN')).toHaveCount(0);
  await expect(card.getByTestId('experiment-lr-chart')).toHaveAttribute('data-series', '2');
  await expect(card.getByTestId('experiment-loss-chart')).toBeVisible();
  await expect(card.getByTestId('experiment-rank-heatmap').first()).toBeVisible();
  await shootPanel(page, 'experiments', 'experiments-results');

  // The report: both reports, the runs table, the experiment and results files, the command.
  const report = await downloadZip(page, card.getByTestId('experiment-report'));
  expect(report.name).toBe('e2e-tiny-report.zip');
  expect(Object.keys(report.files).sort()).toEqual([
    'command.txt',
    'experiment.json',
    'report.html',
    'report.md',
    'results.json',
    'runs.csv',
  ]);
  const definition = JSON.parse(strFromU8(report.files['experiment.json']));
  expect(definition.methods.map((m: { name: string }) => m.name)).toEqual(['lora', 'gralora']);
  expect(definition.train).toMatchObject({ steps: 3, batch: 2, seq_len: 32 });
  const results = JSON.parse(strFromU8(report.files['results.json']));
  expect(results.runs).toHaveLength(8);
  expect(strFromU8(report.files['command.txt'])).toContain('experiment --config e2e-tiny.json');
  expect(strFromU8(report.files['report.html'])).toContain('gralora');

  // A run's adapter exports as a run's does (a PEFT folder).
  const adapter = await downloadZip(page, card.getByRole('button', { name: /^Export the adapter of lora/ }).first());
  expect(Object.keys(adapter.files).some((f) => f.endsWith('adapter_config.json'))).toBe(true);

  // A reload keeps the experiment, its runs and its summary.
  await page.reload();
  const again = newestCard(page);
  await expect(again).toHaveAttribute('data-status', 'done');
  await expect(again.getByTestId('experiment-summary-row')).toHaveCount(2);
  await expect(again.locator('[data-testid="experiment-run"][data-status="done"]')).toHaveCount(8);
  expect(pageErrors).toEqual([]);
  console.log(`test done after ${((Date.now() - started) / 1000).toFixed(0)} s (screenshots in ${ARTIFACTS}/)`);
});

test('an experiment cut off by a reload resumes with its finished runs kept', async ({ page }) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await openDemo(page);
  await expect(page.getByTestId('dataset-preview')).toContainText('tinyshakespeare.txt');
  // 2 configurations x 1 rate x 2 seeds, long enough runs that the reload lands mid-experiment.
  const card = await shrunkDraft(page, 'e2e-resume', { rates: '0.003', seeds: '0, 1', steps: '24' });
  await expect(card.getByTestId('experiment-run-count')).toHaveText('4 runs');
  const id = (await card.getAttribute('data-experiment-id'))!;
  const byId = page.locator(`[data-testid="experiment-card"][data-experiment-id="${id}"]`);
  const done = byId.locator('[data-testid="experiment-run"][data-status="done"]');
  await card.getByTestId('experiment-start').click();
  await expect.poll(() => done.count(), { timeout: 4 * 60_000 }).toBeGreaterThanOrEqual(1);
  // Reload once IndexedDB holds a finished run (a reload inside the write would lose that one run, not the rest).
  await expect
    .poll(
      () =>
        page.evaluate(
          (experimentId) =>
            new Promise<number>((resolve) => {
              const open = indexedDB.open('lora-studio');
              open.onsuccess = () => {
                const get = open.result.transaction('experiments').objectStore('experiments').get(experimentId);
                get.onsuccess = () => {
                  const record = get.result as { results?: { status: string }[] } | undefined;
                  resolve(record?.results?.filter((r) => r.status === 'done').length ?? 0);
                  open.result.close();
                };
              };
            }),
          id,
        ),
      { timeout: 60_000 },
    )
    .toBeGreaterThanOrEqual(1);
  await page.reload();

  await expect(byId).toHaveAttribute('data-status', 'interrupted');
  const kept = await done.count();
  expect(kept >= 1 && kept < 4, `${kept} runs kept`).toBe(true);
  await expect(byId.getByTestId('experiment-message')).toContainText('finished run');
  // The demo comes back by itself; Resume waits for it.
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(page.getByTestId('dataset-preview')).toContainText('tinyshakespeare.txt');
  const resume = byId.getByTestId('experiment-resume');
  await expect(resume).toBeEnabled();
  await shootPanel(page, 'experiments', 'experiments-interrupted');

  // Which runs the resumed experiment trains: only those after the kept ones.
  await page.evaluate(() => {
    const seen = new Set<string>();
    (window as unknown as { __runs: Set<string> }).__runs = seen;
    const record = () =>
      document.querySelectorAll('[data-testid="experiment-current"]').forEach((e) => {
        const m = /Run (\d+) of (\d+)/.exec(e.textContent ?? '');
        if (m) seen.add(m[1]);
      });
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await resume.click();
  await expect(byId).toHaveAttribute('data-status', 'done', { timeout: 4 * 60_000 });
  const trained = await page.evaluate(() => [...(window as unknown as { __runs: Set<string> }).__runs].map(Number));
  expect(trained.length).toBeGreaterThan(0);
  expect(Math.min(...trained)).toBeGreaterThan(kept);
  await expect(done).toHaveCount(4);
  await expect(byId.getByTestId('experiment-summary-row')).toHaveCount(2);
  expect(pageErrors).toEqual([]);
});

test('"Compare fairly" loads the demo and starts LoRA, GoRA, GraLoRA and GeLoRA at one budget x 3 rates x 3 seeds; Stop keeps what finished', async ({
  page,
}) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await page.getByTestId('hero-compare-fairly').click();
  const card = newestCard(page);
  await expect(card).toHaveAttribute('data-status', /queued|running/, { timeout: 120_000 });
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(card.getByTestId('experiment-runs-done')).toContainText('/36 runs', { timeout: 120_000 });
  await expect(card.getByTestId('experiment-current')).toContainText(/Run \d+ of 36/, { timeout: 120_000 });
  // The budget as planned: GoRA, GraLoRA and GeLoRA matched to the rank-8 LoRA, none flagged.
  const budget = card.getByTestId('budget-row');
  await expect(budget).toHaveCount(4);
  await expect(card.locator('[data-testid="budget-row"][data-flagged]')).toHaveCount(0);
  await expect(card.getByTestId('experiment-settings')).toContainText('lora (lora r8), gora (gora r8 matched)');

  await card.getByTestId('experiment-stop').click();
  await expect(card).toHaveAttribute('data-status', 'stopped', { timeout: 120_000 });
  await expect(card.getByTestId('experiment-message')).toContainText('finished runs are kept');
  await expect(card.getByTestId('experiment-resume')).toBeEnabled();
  await expect(card.getByTestId('experiment-run-error')).toHaveCount(0);
  expect(pageErrors).toEqual([]);
});

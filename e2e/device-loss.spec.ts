/**
 * GPU device loss in the studio, simulated through the test hook (`?test-hooks`: window.loraStudioTest.loseDevice()
 * destroys the worker's GPUDevice; its lost event arrives with reason "destroyed"). A run cut off after its checkpoint
 * resumes from it on a new device by itself and finishes, its metrics continuous (every step once), the model back
 * on the GPU and the export working; a run cut off before its first checkpoint restarts from step 0 and says so; a
 * loss while idle leaves a playground that generates. The figures (steps trained again, time to recover) go to the
 * test's annotations and the console.
 */
import { expect, test, type Locator, type Page } from 'playwright/test';
import { downloadZip } from './helpers';

/** Opens the studio with the test hooks, loads the demo and keeps one LoRA draft, shrunk for SwiftShader. */
async function openWithHooks(page: Page, steps: number): Promise<{ run: Locator; id: string; name: string }> {
  await page.goto('/?test-hooks');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await page.getByTestId('try-demo').click();
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  const cards = page.getByTestId('run-card');
  await expect(cards).toHaveCount(4);
  for (let i = 3; i >= 1; i--)
    await cards
      .nth(i)
      .getByRole('button', { name: /remove/i })
      .click();
  await expect(cards).toHaveCount(1);
  const id = (await cards.first().getAttribute('data-run-id'))!;
  const run = page.locator(`[data-testid="run-card"][data-run-id="${id}"]`);
  await run.getByRole('combobox', { name: 'Method', exact: true }).selectOption('lora');
  // A checkpoint every 5 steps (10% of the run, at least 5), validation every 10.
  const fields = {
    Steps: String(steps),
    Batch: '2',
    'Seq. length': '32',
    'Val. examples': '4',
    'Eval every': '10',
    Warmup: '0',
  };
  for (const [label, value] of Object.entries(fields)) await run.getByLabel(label, { exact: true }).fill(value);
  const name = await run.getByLabel('Run name').inputValue();
  return { run, id, name };
}

/**
 * Loses the device once the run's card shows `step` steps done, or (step null) once it is preparing; watched in the
 * page, since SwiftShader trains a step of the demo in tens of milliseconds. The card lags the worker by a few
 * steps under load: the loss lands a few steps later than `step`.
 */
async function loseDeviceWhen(page: Page, runId: string, step: number | null) {
  await page.evaluate(
    ({ runId, step }) => {
      const w = window as unknown as { __lostAt?: number; loraStudioTest: { loseDevice(): void } };
      const observer = new MutationObserver(() => {
        const card = document.querySelector(`[data-testid="run-card"][data-run-id="${runId}"]`);
        const done = Number(card?.querySelector('[data-testid="run-step"]')?.textContent?.split('/')[0]);
        const due = step === null ? card?.getAttribute('data-status') === 'preparing' : done >= step;
        if (w.__lostAt === undefined && due) {
          w.__lostAt = performance.now();
          observer.disconnect();
          w.loraStudioTest.loseDevice();
        }
      });
      observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    },
    { runId, step },
  );
}

/** Records every toast as it appears (they dismiss themselves), with when (performance.now()). */
async function recordToasts(page: Page) {
  await page.evaluate(() => {
    const seen: { text: string; kind: string; at: number }[] = [];
    (window as unknown as { __toasts: typeof seen }).__toasts = seen;
    const known = new WeakSet<Element>();
    new MutationObserver(() => {
      for (const t of document.querySelectorAll('.toast')) {
        if (known.has(t)) continue;
        known.add(t);
        seen.push({ text: t.querySelector('span')?.textContent ?? '', kind: t.className, at: performance.now() });
      }
    }).observe(document.body, { subtree: true, childList: true });
  });
}

/** Records the run card's statuses as they change, with when (performance.now()). */
async function recordStatuses(page: Page, runId: string) {
  await page.evaluate((id) => {
    const seen: { status: string; at: number }[] = [];
    (window as unknown as { __statuses: typeof seen }).__statuses = seen;
    new MutationObserver(() => {
      const status = document
        .querySelector(`[data-testid="run-card"][data-run-id="${id}"]`)
        ?.getAttribute('data-status');
      if (status && seen.at(-1)?.status !== status) seen.push({ status, at: performance.now() });
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
  }, runId);
}

const statuses = (page: Page) =>
  page.evaluate(() => (window as unknown as { __statuses: { status: string; at: number }[] }).__statuses);

const toasts = (page: Page) =>
  page.evaluate(() => (window as unknown as { __toasts: { text: string; kind: string; at: number }[] }).__toasts);
const lostAt = (page: Page) => page.evaluate(() => (window as unknown as { __lostAt?: number }).__lostAt ?? null);

/** The steps of a run's record as IndexedDB holds it (what a reload shows). */
async function storedSteps(page: Page, runId: string): Promise<number[]> {
  return page.evaluate(
    (id) =>
      new Promise<number[]>((resolve, reject) => {
        const open = indexedDB.open('lora-studio');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const read = db.transaction('runs').objectStore('runs').get(id);
          read.onsuccess = () => {
            db.close();
            resolve((read.result?.points ?? []).map((p: { step: number }) => p.step));
          };
          read.onerror = () => reject(read.error);
        };
      }),
    runId,
  );
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('a GPU lost mid-run: the run resumes from its checkpoint on a new device, finishes with every step once, and exports', async ({
  page,
}) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const { run, id, name } = await openWithHooks(page, 40);
  const legend = page.locator(`[data-testid="loss-legend"][data-run-id="${id}"]`);
  await recordToasts(page);
  // From step 7 on: after the checkpoint at step 5, well before the run's end.
  await loseDeviceWhen(page, id, 7);
  await recordStatuses(page, id);
  await run.getByTestId('run-start').click();

  const notice = page.locator('.toast span', { hasText: 'The GPU was lost' });
  await expect(notice).toBeVisible({ timeout: 120_000 });
  const text = (await notice.textContent())!;
  const match = text.match(
    /^The GPU was lost \(destroyed\): recovered in (\d+\.\d) s, resuming "(.+)" from step (\d+)\.$/,
  );
  expect(match, text).not.toBeNull();
  expect(match![2]).toBe(name);
  const from = Number(match![3]);
  expect(from > 0 && from < 40 && from % 5 === 0, `resumed from step ${from}`).toBe(true);
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU');
  const warning = run.getByTestId('run-warning').filter({ hasText: 'The GPU was lost' });
  await expect(warning).toContainText(`it resumed on a new device from its checkpoint at step ${from}`);
  const reached = Number((await warning.textContent())!.match(/after (\d+) steps/)![1]);

  await expect(run).toHaveAttribute('data-status', 'done', { timeout: 4 * 60_000 });
  const doneAt = await page.evaluate(() => performance.now());
  await expect(run.locator('.metric', { hasText: 'Steps' })).toContainText('40/40');
  // Steps 0..39, each once: those before the checkpoint from the first device, the rest from the new one; validation
  // at 0, 10, 20, 30 and 40, none twice.
  await expect(legend).toHaveAttribute('data-points', '40');
  await expect(legend).toHaveAttribute('data-evals', '5');
  await expect(page.getByTestId('layer-grad-chart')).toHaveAttribute('data-points', '40');
  await expect.poll(() => storedSteps(page, id)).toEqual(range(40));
  await expect(run.getByTestId('run-message')).toHaveCount(0);
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU');

  // The adapter trained across two devices exports.
  const card = page.locator(`[data-testid="export-card"][data-run-id="${id}"]`);
  const zip = await downloadZip(page, card.getByTestId('export-button'));
  expect(Object.keys(zip.files)).toEqual(expect.arrayContaining(['adapter_model.safetensors', 'adapter_config.json']));
  expect(zip.files['adapter_model.safetensors'].byteLength).toBeGreaterThan(1000);

  const shown = await toasts(page);
  expect(shown.filter((t) => t.kind.includes('toast-error'))).toEqual([]);
  const loss = (await lostAt(page))!;
  const recoveredAt = shown.find((t) => t.text.startsWith('The GPU was lost'))!.at;
  // Training, queued again at the loss (never failed), then training on the new device (after new pipelines) and done.
  const history = await statuses(page);
  const seen = history.map((h) => h.status);
  expect(seen).not.toContain('failed');
  expect(seen.filter((s) => s === 'training' || s === 'done')).toEqual(['training', 'training', 'done']);
  expect(seen.slice(seen.indexOf('training') + 1, seen.lastIndexOf('training'))).toContain('queued');
  const trainingAgain = history.filter((h) => h.status === 'training')[1].at;
  const figures =
    `lost after ${reached} steps, resumed from step ${from} (${reached - from} steps trained again); ` +
    `model back on the GPU in ${match![1]} s (notice ${((recoveredAt - loss) / 1000).toFixed(1)} s after the hook), ` +
    `training again ${((trainingAgain - loss) / 1000).toFixed(1)} s after the hook, ` +
    `run done ${((doneAt - loss) / 1000).toFixed(1)} s after it`;
  test.info().annotations.push({ type: 'device loss mid-run', description: figures });
  console.log(`device loss mid-run: ${figures}`);
  expect(pageErrors).toEqual([]);
});

test('a GPU lost before the first checkpoint restarts the run from step 0 and says so; lost while idle, the playground still generates', async ({
  page,
}) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const { run, id, name } = await openWithHooks(page, 20);
  const legend = page.locator(`[data-testid="loss-legend"][data-run-id="${id}"]`);
  await recordToasts(page);
  // While it prepares (compiling its kernels takes seconds on SwiftShader): no checkpoint yet.
  await loseDeviceWhen(page, id, null);
  await run.getByTestId('run-start').click();

  const notice = page.locator('.toast span', { hasText: 'The GPU was lost' });
  await expect(notice).toHaveText(
    new RegExp(
      `recovered in \\d+\\.\\d s, restarting "${escaped(name)}" from step 0 \\(it had no checkpoint yet\\)\\.$`,
    ),
    { timeout: 120_000 },
  );
  const warning = run.getByTestId('run-warning').filter({ hasText: 'The GPU was lost' });
  await expect(warning).toContainText(/: it restarted from step 0 on a new device\.$/);
  const reached = Number((await warning.textContent())!.match(/after (\d+) steps?/)?.[1] ?? 0);
  await expect(run).toHaveAttribute('data-status', 'done', { timeout: 4 * 60_000 });
  await expect(legend).toHaveAttribute('data-points', '20');
  await expect(legend).toHaveAttribute('data-evals', '3');
  await expect.poll(() => storedSteps(page, id)).toEqual(range(20));

  // Idle: nothing runs; the model goes back on a new device at once.
  const idleLoss = await page.evaluate(() => {
    (window as unknown as { loraStudioTest: { loseDevice(): void } }).loraStudioTest.loseDevice();
    return performance.now();
  });
  const idle = page.locator('.toast span', { hasText: 'stories260K is on the GPU again' });
  await expect(idle).toHaveText(
    /^The GPU was lost \(destroyed\): recovered in \d+\.\d s; stories260K is on the GPU again\./,
  );
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU');
  const idleText = (await idle.textContent())!;

  await page.getByTestId('generate').click();
  await expect(page.getByTestId('generate')).toHaveText('Generate', { timeout: 120_000 });
  const generations = page.getByTestId('generation');
  await expect(generations).toHaveCount(2);
  for (const g of await generations.all()) {
    await expect(g.getByTestId('generation-text')).toBeVisible();
    expect(((await g.getByTestId('generation-text').textContent()) ?? '').trim().length).toBeGreaterThan(0);
    await expect(g).not.toContainText('lost');
  }
  const shown = await toasts(page);
  expect(shown.filter((t) => t.kind.includes('toast-error'))).toEqual([]);
  const idleRecovered = shown.find((t) => t.text === idleText)!.at;
  const figures =
    `restart: lost ${reached ? `after ${reached} steps` : 'while preparing'}, restarted from step 0 (${reached} steps trained again); ` +
    `idle loss: notice ${((idleRecovered - idleLoss) / 1000).toFixed(1)} s after the hook (${idleText.match(/in (\d+\.\d) s/)![1]} s measured by the worker)`;
  test.info().annotations.push({ type: 'device loss before a checkpoint and while idle', description: figures });
  console.log(`device loss: ${figures}`);
  expect(pageErrors).toEqual([]);
});

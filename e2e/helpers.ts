/** Helpers the end-to-end specs share: the demo opened on a fresh page, panel screenshots, zip downloads. */
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { expect, type Locator, type Page } from 'playwright/test';

export const ARTIFACTS = 'e2e-artifacts';

/** A panel as an image: a tall viewport so the whole panel fits, and the sticky top bar hidden. */
export async function shootPanel(page: Page, id: string, file = id) {
  const viewport = page.viewportSize()!;
  await page.setViewportSize({ width: viewport.width, height: 2400 });
  const panel = page.getByTestId(`panel-${id}`);
  await panel.scrollIntoViewIfNeeded();
  await panel.screenshot({
    path: `${ARTIFACTS}/${file}.png`,
    style: '.topbar, .toasts { visibility: hidden !important; }',
  });
  await page.setViewportSize(viewport);
}

/** Clicks `button` and reads the zip it downloads: its suggested name and its files. */
export async function downloadZip(
  page: Page,
  button: Locator,
): Promise<{ name: string; files: Record<string, Uint8Array> }> {
  const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
  return { name: download.suggestedFilename(), files: unzipSync(new Uint8Array(readFileSync(await download.path()))) };
}

/** Opens the studio on a fresh page, waits for the GPU, loads the demo and waits for its model on the GPU. */
export async function openDemo(page: Page) {
  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await expect(page.getByTestId('no-webgpu')).toHaveCount(0);
  await page.getByTestId('try-demo').click();
  await expect(page.getByTestId('model-card')).toContainText('stories260K');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
}

/**
 * Keeps only the demo's first draft, as `method` named `name` with `fields` (label → value) filled in, and returns
 * its card: the other three drafts are removed.
 */
export async function onlyDemoRun(
  page: Page,
  run: { method: string; name: string; fields: Record<string, string> },
): Promise<Locator> {
  const runs = page.getByTestId('run-card');
  await expect(runs).toHaveCount(4);
  const card = runs.first();
  await card.getByRole('combobox', { name: 'Method', exact: true }).selectOption(run.method);
  await card.getByLabel('Run name').fill(run.name);
  for (const [label, value] of Object.entries(run.fields)) await card.getByLabel(label, { exact: true }).fill(value);
  for (let i = 3; i >= 1; i--)
    await runs
      .nth(i)
      .getByRole('button', { name: /remove/i })
      .click();
  await expect(runs).toHaveCount(1);
  return card;
}

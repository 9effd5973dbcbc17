/**
 * A large dataset file streamed in the studio: its progress while it is read and tokenized, the first rows'
 * preview (format detected, rows tokenized) while the rest is read, the demo's dataset still the one in use with
 * Start held back until the new file is done, then the whole file's preview.
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'playwright/test';
import { openDemo, shootPanel } from './helpers';

const ROWS = 20_000;
const FILE = 'alpaca-20k.jsonl';

const TOPICS = ['rivers', 'castles', 'bread', 'comets', 'violins', 'glaciers', 'markets', 'owls', 'lanterns', 'tides'];
const WORDS = ['the', 'quiet', 'old', 'bright', 'storm', 'garden', 'walked', 'slowly', 'across', 'golden', 'hill'];

/** About 3.5 MB of Alpaca rows with varied text (a fixed pseudo-random sequence): a few seconds of tokenizing. */
function alpacaJsonl(): string {
  let seed = 12345;
  const next = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const words = (n: number) => Array.from({ length: n }, () => WORDS[next(WORDS.length)]).join(' ');
  const lines: string[] = [];
  for (let i = 0; i < ROWS; i++) {
    const topic = TOPICS[next(TOPICS.length)];
    lines.push(
      JSON.stringify({
        instruction: `Write a short note about ${topic}, number ${i}.`,
        input: i % 3 === 0 ? '' : `Mention ${words(3 + next(4))}.`,
        output: `${words(12 + next(16))}, like ${topic}.`,
      }),
    );
  }
  return `${lines.join('\n')}\n`;
}

test('a large dataset: progress, the first rows while the rest is read, Start held back, then the whole file', async ({
  page,
}) => {
  test.setTimeout(180_000);
  const path = join(mkdtempSync(join(tmpdir(), 'lora-studio-e2e-')), FILE);
  writeFileSync(path, alpacaJsonl());

  await openDemo(page);
  const current = page.getByTestId('dataset-preview');
  await expect(current).toContainText('tinyshakespeare.txt');
  await expect(page.getByTestId('dataset-loading')).toHaveCount(0, { timeout: 60_000 });
  const start = page.getByTestId('run-card').first().getByTestId('run-start');
  await expect(start).toBeEnabled();

  await page.getByTestId('dataset-input').setInputFiles(path);

  // Progress with the stage, the file and how far it is.
  const progress = page.getByTestId('dataset-progress');
  await expect(progress).toBeVisible();
  await expect(progress).toHaveAttribute('aria-label', new RegExp(`^(Reading|Tokenizing) ${FILE}$`));
  await expect(page.getByTestId('dataset-progress-text')).toHaveText(
    new RegExp(`^(Reading|Tokenizing) ${FILE} — \\d+% \\([\\d.]+ (B|KiB|MiB) of [\\d.]+ MiB\\)$`),
  );

  // The first rows, while the rest is still read or tokenized: format detected, rows tokenized with the demo model.
  const early = page.getByTestId('dataset-early-preview');
  await expect(early).toBeVisible();
  await expect(early).toContainText(/Preview of the first rows while the rest is read: [\d,]+ rows so far/);
  await expect(early.getByTestId('dataset-format')).toHaveText('Alpaca instructions');
  await expect(early.getByTestId('dataset-columns')).toContainText('instruction');
  await expect(early.getByTestId('dataset-sample').first()).toContainText('Write a short note about');
  await expect(early.getByTestId('dataset-mapper')).toHaveCount(0);
  await expect(progress).toBeVisible();

  // The demo's dataset is still the one in use: no run or experiment starts on it meanwhile.
  await expect(current).toContainText('tinyshakespeare.txt');
  await expect(page.getByTestId('dataset-loading-note')).toContainText(
    `Runs and experiments can start once ${FILE} is loaded`,
  );
  await expect(start).toBeDisabled();
  await expect(start).toHaveAttribute('title', new RegExp(`^Wait for ${FILE} to finish loading`));
  await expect(page.getByTestId('start-all')).toBeDisabled();
  await expect(page.getByTestId('run-card').first()).toHaveAttribute('data-status', 'draft');
  await expect(progress).toBeVisible();

  await shootPanel(page, 'dataset', 'dataset-large-loading');

  // Done: the whole file is the dataset, and Start is back.
  await expect(current).toContainText(FILE, { timeout: 120_000 });
  await expect(page.getByTestId('dataset-loading')).toHaveCount(0);
  await expect(page.getByTestId('dataset-early-preview')).toHaveCount(0);
  await expect(current.getByTestId('dataset-format')).toHaveText('Alpaca instructions');
  await expect(current.locator('.stat').filter({ hasText: /^Rows/ })).toContainText('20,000');
  await expect(start).toBeEnabled();
});

/** Total resident memory of the browser's processes (the worker that tokenizes lives in a renderer). */
function chromiumRssBytes(): number {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('chrom')) continue;
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (rss) total += Number(rss[1]) * 1024;
    } catch {
      // The process ended meanwhile.
    }
  }
  return total;
}

const LARGE_MB = Number(process.env.LARGE_DATASET_MB ?? 0);

test('a LARGE_DATASET_MB file streamed through the studio, with its times and memory', async ({ page }) => {
  test.skip(
    !LARGE_MB,
    'a long check: LARGE_DATASET_MB=200 streams a 200 MB file (docs/BENCHMARKS.md, "Large datasets")',
  );
  test.setTimeout(90 * 60_000);
  const path = join(mkdtempSync(join(tmpdir(), 'lora-studio-large-')), `alpaca-${LARGE_MB}mb.jsonl`);
  const block = alpacaJsonl();
  const copies = Math.ceil((LARGE_MB * 2 ** 20) / block.length);
  writeFileSync(path, '');
  for (let i = 0; i < copies; i++) appendFileSync(path, block);
  const size = statSync(path).size;

  await openDemo(page);
  await expect(page.getByTestId('dataset-loading')).toHaveCount(0, { timeout: 60_000 });
  const baseline = chromiumRssBytes();
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, chromiumRssBytes());
  }, 500);
  const t0 = Date.now();
  await page.getByTestId('dataset-input').setInputFiles(path);
  await expect(page.getByTestId('dataset-early-preview')).toBeVisible({ timeout: 120_000 });
  const firstRows = Date.now() - t0;
  await expect(page.getByTestId('dataset-progress')).toHaveAttribute('aria-label', /^Tokenizing /, {
    timeout: 600_000,
  });
  const read = Date.now() - t0;
  await expect(page.getByTestId('dataset-preview')).toContainText(`alpaca-${LARGE_MB}mb.jsonl`, {
    timeout: 85 * 60_000,
  });
  const done = Date.now() - t0;
  clearInterval(sampler);
  const figures = {
    bytes: size,
    rows: copies * ROWS,
    firstRowsPreviewSeconds: firstRows / 1000,
    readSeconds: read / 1000,
    tokenizedSeconds: done / 1000,
    tokenizeMBps: size / 2 ** 20 / ((done - read) / 1000),
    browserRssBaselineMB: Math.round(baseline / 2 ** 20),
    browserRssPeakMB: Math.round(peak / 2 ** 20),
    browserRssAfterMB: Math.round(chromiumRssBytes() / 2 ** 20),
    tokens: await page
      .getByTestId('dataset-preview')
      .locator('.stat')
      .filter({ hasText: /^Tokens/ })
      .innerText(),
  };
  console.log(`large dataset: ${JSON.stringify(figures)}`);
  await expect(page.getByTestId('dataset-preview').locator('.stat').filter({ hasText: /^Rows/ })).toContainText(
    (copies * ROWS).toLocaleString('en'),
  );
});

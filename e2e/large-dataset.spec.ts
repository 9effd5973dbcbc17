/**
 * A large dataset file streamed in the studio: its progress while it is read and tokenized, the first rows'
 * preview (format detected, rows tokenized) while the rest is read, the demo's dataset still the one in use with
 * Start held back until the new file is done, then the whole file's preview.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
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

/**
 * The playground end to end: after a short LoRA run on the demo, completions greedy and sampled (a seed repeats a
 * run exactly, another seed gives another, greedy is unchanged by sampling), stop strings, and chat in the fallback
 * layout the demo's tokenizer gets (it has no chat template); then a model whose tokenizer has a chat template
 * (tiny-random Llama, Llama 2's template), a short run on chat data, and a two-turn conversation with a system
 * prompt, each source in its own column, where a seed repeats an answer. Screenshots go to e2e-artifacts/.
 */
import { mkdirSync } from 'node:fs';
import { expect, test, type Locator, type Page } from 'playwright/test';
import { ARTIFACTS, openDemo, shootPanel } from './helpers';

test.beforeAll(() => mkdirSync(ARTIFACTS, { recursive: true }));

/** Shrinks a draft so SwiftShader trains it in seconds. */
async function shrink(card: Locator, extra: Record<string, string> = {}) {
  const fields = { Steps: '3', Batch: '2', 'Seq. length': '32', 'Val. examples': '4', 'Eval every': '0', Warmup: '0' };
  for (const [label, value] of Object.entries({ ...fields, ...extra }))
    await card.getByLabel(label, { exact: true }).fill(value);
}

/** Trains the one run card left and waits for it to finish. */
async function trainOnly(page: Page, extra: Record<string, string> = {}) {
  const run = page.getByTestId('run-card').first();
  await shrink(run, extra);
  await run.getByTestId('run-start').click();
  await expect(run).toHaveAttribute('data-status', 'done', { timeout: 4 * 60_000 });
}

/** Clicks Generate, waits for every source, returns their texts by source. */
async function complete(page: Page): Promise<Record<string, string>> {
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('generate')).toHaveText('Generate', { timeout: 120_000 });
  const out: Record<string, string> = {};
  for (const g of await page.getByTestId('generation').all()) {
    await expect(g.getByTestId('generation-text')).toBeVisible();
    const whole = (await g.getByTestId('generation-text').textContent()) ?? '';
    out[(await g.getAttribute('data-source'))!] = whole.slice(
      ((await g.locator('.prompt-echo').textContent()) ?? '').length,
    );
  }
  return out;
}

/** Sends a chat message, waits for every column's answer, returns the last answer of each source. */
async function say(page: Page, message: string): Promise<Record<string, string>> {
  await page.getByTestId('chat-input').fill(message);
  await page.getByTestId('chat-input').press('Enter');
  await expect(page.getByTestId('stop-generation')).toHaveCount(0, { timeout: 120_000 });
  const out: Record<string, string> = {};
  for (const column of await page.getByTestId('chat-column').all()) {
    const answer = column.getByTestId('chat-assistant').last().locator('.chat-text');
    out[(await column.getAttribute('data-source'))!] = (await answer.textContent()) ?? '';
  }
  return out;
}

async function setSampling(page: Page, values: Record<string, string>) {
  const settings = page.getByTestId('playground-settings');
  for (const [label, value] of Object.entries(values)) await settings.getByLabel(label, { exact: true }).fill(value);
}

const greedySwitch = (page: Page) => page.getByTestId('greedy');
async function setGreedy(page: Page, on: boolean) {
  if ((await greedySwitch(page).isChecked()) !== on) await page.locator('label.switch').click();
  await expect(greedySwitch(page)).toBeChecked({ checked: on });
}

test('demo: sampled completions repeat with their seed, greedy is unchanged, stop strings cut, chat says it has no template', async ({
  page,
}) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await openDemo(page);
  const cards = page.getByTestId('run-card');
  await expect(cards).toHaveCount(4);
  for (const name of ['GoRA all-linear r_ref=8', 'GraLoRA all-linear r=8 k=2', 'GeLoRA all-linear r_ref=8'])
    await page.getByRole('button', { name: `Remove ${name}`, exact: true }).click();
  await expect(cards).toHaveCount(1);
  await trainOnly(page);

  await page.getByTestId('panel-playground').scrollIntoViewIfNeeded();
  await page.getByLabel('Max new tokens').fill('24');
  await expect(greedySwitch(page)).toBeChecked();
  const greedy = await complete(page);
  expect(Object.keys(greedy)).toHaveLength(2);

  // Sampling: the same seed repeats every source's text exactly; another seed changes at least one.
  await setGreedy(page, false);
  await setSampling(page, { Temperature: '1.3', 'Top-k': '0', 'Top-p': '0.98', Seed: '1234' });
  const first = await complete(page);
  expect(await complete(page)).toEqual(first);
  expect(first).not.toEqual(greedy);
  await shootPanel(page, 'playground', 'playground-sampled');
  await setSampling(page, { Seed: '99' });
  expect(await complete(page)).not.toEqual(first);
  // A setting out of range holds Generate and says why.
  await setSampling(page, { 'Top-p': '0' });
  await expect(page.getByTestId('sampling-problems')).toContainText('Top-p must be in (0, 1]');
  await expect(page.getByTestId('generate')).toBeDisabled();
  await setSampling(page, { 'Top-p': '0.98', Seed: '1234' });

  // Stop strings: the seed's text again, ending before the first stop string.
  const base = first.base;
  const word = base.trim().split(/\s+/)[3];
  await page.getByLabel('Stop strings').fill(`${word},\\n\\nnever`);
  const stopped = await complete(page);
  expect(stopped.base).toBe(base.slice(0, base.indexOf(word)));
  await expect(page.locator('[data-testid="generation"][data-source="base"]')).toContainText('stop string');
  await page.getByLabel('Stop strings').fill('');

  // Stop: the running generation ends after its current token; a source not started yet is skipped.
  await page.getByLabel('Max new tokens').fill('256');
  await page.getByTestId('generate').click();
  const baseText = page.locator('[data-testid="generation"][data-source="base"] [data-testid="generation-text"]');
  await expect
    .poll(async () => ((await baseText.textContent()) ?? '').length)
    .toBeGreaterThan('Once upon a time'.length);
  await page.getByTestId('stop-generation').click();
  await expect(page.getByTestId('generate')).toHaveText('Generate', { timeout: 60_000 });
  for (const g of await page.getByTestId('generation').all()) await expect(g).toContainText('stopped');
  await page.getByLabel('Max new tokens').fill('24');

  // Greedy again: the very same texts as before any sampling.
  await setGreedy(page, true);
  expect(await complete(page)).toEqual(greedy);

  // Chat on a tokenizer without a template: the panel says which layout it uses instead.
  await page.getByRole('radio', { name: 'Chat' }).click();
  await expect(page.getByTestId('chat-fallback')).toContainText('has no chat template');
  await expect(page.getByTestId('chat-fallback')).toContainText('<|user|>');
  const answers = await say(page, 'Once upon a time there was a cat.');
  expect(Object.keys(answers)).toHaveLength(2);
  await expect(page.getByTestId('chat-column').first().getByTestId('chat-user')).toHaveText(/Once upon a time/);
  await shootPanel(page, 'playground', 'playground-chat-fallback');
  expect(pageErrors).toEqual([]);
});

test('a chat template: two turns with a system prompt, each source in its own column; a seed repeats an answer', async ({
  page,
}) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  // trl's tiny random Llama: 2 layers of 16, Llama 2's tokenizer (32000 tokens) and chat template.
  await page.getByTestId('model-folder-input').setInputFiles('test/fixtures/models/tiny-random-LlamaForCausalLM_hf');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await page.getByTestId('dataset-input').setInputFiles('test/fixtures/datasets/chat_messages/v1_sft_demo.jsonl');
  await expect(page.getByTestId('dataset-preview')).toContainText('v1_sft_demo.jsonl');
  await page.getByTestId('add-run').click();
  await trainOnly(page, { 'Seq. length': '64' });

  await page.getByTestId('panel-playground').scrollIntoViewIfNeeded();
  await page.getByRole('radio', { name: 'Chat' }).click();
  await expect(page.getByTestId('chat-layout')).toContainText('chat template (tokenizer_config.json)');
  await expect(page.getByTestId('chat-fallback')).toHaveCount(0);
  await page.getByLabel('Max new tokens').fill('12');
  await setGreedy(page, false);
  await setSampling(page, { Temperature: '1', Seed: '7' });
  await page.getByTestId('chat-system').fill('You are terse.');

  const hi = await say(page, 'hi');
  expect(Object.keys(hi)).toHaveLength(2);
  const second = await say(page, 'Who are you?');
  for (const column of await page.getByTestId('chat-column').all()) {
    await expect(column.getByTestId('chat-system')).toHaveText(/You are terse\./);
    await expect(column.getByTestId('chat-user')).toHaveText([/hi/, /Who are you\?/]);
    await expect(column.getByTestId('chat-assistant')).toHaveCount(2);
  }
  expect(Object.keys(second)).toEqual(Object.keys(hi));
  await shootPanel(page, 'playground', 'playground-chat-template');

  // The same seed and conversation give the same answers; another seed gives others.
  await page.getByTestId('chat-clear').click();
  await expect(page.getByTestId('chat-column')).toHaveCount(0);
  expect(await say(page, 'hi')).toEqual(hi);
  await page.getByTestId('chat-clear').click();
  await setSampling(page, { Seed: '8' });
  expect(await say(page, 'hi')).not.toEqual(hi);
  expect(pageErrors).toEqual([]);
});

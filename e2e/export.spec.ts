/**
 * Whole-model exports from the studio, checked outside it: a LoRA run trained on the demo, downloaded as its PEFT
 * folder and as a merged f32 model, evaluates the same under the CLI (base + adapter vs the merged folder); its GGUF
 * export parses with @huggingface/gguf and describes the demo model.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { strFromU8 } from 'fflate';
import { expect, test } from 'playwright/test';
import { ARTIFACTS, downloadZip, onlyDemoRun, openDemo } from './helpers';

const DEMO_MODEL = 'public/demo/model';

test.beforeAll(() => {
  mkdirSync(ARTIFACTS, { recursive: true });
  execFileSync('node', ['scripts/build-cli.mjs'], { stdio: 'inherit' });
});

/** Writes a downloaded zip's files into a new folder. */
function unzipTo(files: Record<string, Uint8Array>, name: string): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'export-e2e-')), name);
  mkdirSync(dir, { recursive: true });
  for (const [file, bytes] of Object.entries(files)) writeFileSync(join(dir, file), bytes);
  return dir;
}

/** The CLI's eval loss: its last stdout line is {"loss": L, "tokens": T}. */
function cliLoss(args: string[]): { loss: number; tokens: number } {
  const stdout = execFileSync('node', ['dist-cli/cli.mjs', 'eval', ...args], { encoding: 'utf8' });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

test('a LoRA run exports as a merged model the CLI evaluates like base + adapter, and as a GGUF file', async ({
  page,
}) => {
  test.setTimeout(6 * 60_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await openDemo(page);

  const run = await onlyDemoRun(page, {
    method: 'lora',
    name: 'LoRA to merge',
    fields: { Steps: '6', Batch: '2', 'Seq. length': '32', 'Val. examples': '4' },
  });
  await page.getByTestId('start-all').click();
  await expect(run).toHaveAttribute('data-status', 'done', { timeout: 4 * 60_000 });

  const card = page.locator(`[data-testid="export-card"][data-run-id="${await run.getAttribute('data-run-id')}"]`);
  await card.scrollIntoViewIfNeeded();
  await card.screenshot({ path: `${ARTIFACTS}/export-card.png` });
  const adapter = unzipTo((await downloadZip(page, card.getByTestId('export-button'))).files, 'adapter');

  await card.getByTestId('export-merged-dtype').selectOption('f32');
  const mergedZip = await downloadZip(page, card.getByTestId('export-merged-button'));
  expect(mergedZip.name).toBe('lora-to-merge.zip');
  expect(Object.keys(mergedZip.files)).toEqual(
    expect.arrayContaining(['model.safetensors', 'config.json', 'tokenizer.json', 'README.md']),
  );
  expect(JSON.parse(strFromU8(mergedZip.files['config.json'])).torch_dtype).toBe('float32');
  const merged = unzipTo(mergedZip.files, 'merged');

  // A slice of the demo text, evaluated by the CLI both ways.
  const data = join(mkdtempSync(join(tmpdir(), 'export-e2e-data-')), 'slice.txt');
  writeFileSync(data, readFileSync('public/demo/data/tinyshakespeare.txt', 'utf8').slice(0, 4000));
  const common = ['--data', data, '--seq-len', '32', '--batch', '8'];
  const base = cliLoss(['--model', DEMO_MODEL, ...common]);
  const withAdapter = cliLoss(['--model', DEMO_MODEL, '--adapter', adapter, ...common]);
  const fromMerged = cliLoss(['--model', merged, ...common]);
  expect(withAdapter.tokens).toBe(fromMerged.tokens);
  expect(Math.abs(withAdapter.loss - base.loss)).toBeGreaterThan(1e-4);
  expect(Math.abs(fromMerged.loss - withAdapter.loss)).toBeLessThan(1e-5 * withAdapter.loss);

  await card.getByTestId('export-gguf-dtype').selectOption('q8_0');
  const ggufZip = await downloadZip(page, card.getByTestId('export-gguf-button'));
  expect(ggufZip.name).toBe('lora-to-merge-gguf.zip');
  const ggufDir = unzipTo(ggufZip.files, 'gguf');
  const modelfile = strFromU8(ggufZip.files.Modelfile);
  expect(modelfile).toContain('FROM ./lora-to-merge-q8_0.gguf');
  const parsed = await gguf(join(ggufDir, 'lora-to-merge-q8_0.gguf'), { allowLocalFile: true });
  const config = JSON.parse(readFileSync(join(DEMO_MODEL, 'config.json'), 'utf8'));
  const metadata = parsed.metadata as unknown as Record<string, unknown>;
  expect(metadata['general.architecture']).toBe('llama');
  expect(metadata['llama.block_count']).toBe(config.num_hidden_layers);
  expect(metadata['llama.embedding_length']).toBe(config.hidden_size);
  expect((metadata['tokenizer.ggml.tokens'] as string[]).length).toBe(config.vocab_size);
  const names = parsed.tensorInfos.map((t) => t.name);
  expect(names).toEqual(expect.arrayContaining(['token_embd.weight', 'blk.0.attn_q.weight', 'output_norm.weight']));
  expect(pageErrors).toEqual([]);
});

/**
 * Reopening the user's model folder and dataset file after a reload, end to end in Chromium: the pickers
 * (showDirectoryPicker / showOpenFilePicker) are replaced by functions that return real handles of the origin
 * private file system (navigator.storage.getDirectory()), into which the test writes the demo's files. Those
 * handles take the same path as picked ones: read into files, stored in IndexedDB, read back after the reload,
 * permission asked on the click (OPFS handles are always granted: the browser's permission prompt itself cannot be
 * automated here), and read again. Also: a file deleted since is reported and forgotten; an interrupted run
 * offers to reopen what it trained on and resumes; a browser without the API says the files must be chosen again.
 * Screenshots go to e2e-artifacts/reopen-*.png.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { expect, test, type Locator, type Page } from 'playwright/test';
import { ARTIFACTS } from './helpers';

const MODEL_FILES = readdirSync('public/demo/model').filter((f) => f !== 'README.md');
const DATASET = 'tinyshakespeare.txt';

test.beforeAll(() => mkdirSync(ARTIFACTS, { recursive: true }));

/** The pickers answer with OPFS handles: the folder "picked-model" and the dataset file at the OPFS root. */
async function pickersFromOpfs(page: Page) {
  await page.addInitScript(() => {
    const root = () => navigator.storage.getDirectory();
    Object.assign(window, {
      showDirectoryPicker: async () => (await root()).getDirectoryHandle('picked-model'),
      showOpenFilePicker: async () => [await (await root()).getFileHandle('tinyshakespeare.txt')],
    });
  });
}

/** Copies the demo model (into "picked-model/") and dataset into the origin private file system. */
async function writeOpfs(page: Page) {
  await page.evaluate(
    async ({ modelFiles, dataset }) => {
      const root = await navigator.storage.getDirectory();
      const folder = await root.getDirectoryHandle('picked-model', { create: true });
      const copy = async (dir: FileSystemDirectoryHandle, name: string, url: string) => {
        const bytes = await (await fetch(url)).arrayBuffer();
        const writable = await (await dir.getFileHandle(name, { create: true })).createWritable();
        await writable.write(bytes);
        await writable.close();
      };
      for (const name of modelFiles) await copy(folder, name, `/demo/model/${name}`);
      await copy(root, dataset, `/demo/data/${dataset}`);
    },
    { modelFiles: MODEL_FILES, dataset: DATASET },
  );
}

/** What the studio keeps in its handles database: slot -> [picked name, name once loaded]. */
async function storedHandles(page: Page): Promise<Record<string, [string, string | null]>> {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('lora-studio-handles');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains('handles')) return resolve({});
          const all = db.transaction('handles').objectStore('handles').getAll();
          all.onsuccess = () => {
            db.close();
            resolve(Object.fromEntries(all.result.map((r) => [r.slot, [r.name, r.loadedAs]])));
          };
          all.onerror = () => reject(all.error);
        };
      }),
  );
}

async function openStudio(page: Page) {
  await page.goto('/');
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await expect(page.getByTestId('no-webgpu')).toHaveCount(0);
}

/** Picks the model folder and the dataset file through the studio's "Choose…" buttons. */
async function chooseBoth(page: Page) {
  await page.getByTestId('model-choose-folder').click();
  await expect(page.getByTestId('model-card')).toContainText('stories260K');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await page.getByTestId('dataset-choose-file').click();
  await expect(page.getByTestId('dataset-preview')).toContainText(DATASET);
  // Named as the studio names them once loaded: the folder is "picked-model", the model "stories260K".
  await expect
    .poll(() => storedHandles(page))
    .toEqual({ model: ['picked-model', 'stories260K'], dataset: [DATASET, DATASET] });
}

async function shrink(card: Locator, steps: number) {
  const fields = {
    Steps: String(steps),
    Batch: '2',
    'Seq. length': '32',
    'Val. examples': '4',
    'Eval every': '0',
    Warmup: '0',
  };
  for (const [label, value] of Object.entries(fields)) await card.getByLabel(label, { exact: true }).fill(value);
}

test('a folder and a file chosen with the pickers come back after a reload with one click each', async ({ page }) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await pickersFromOpfs(page);
  await openStudio(page);
  await writeOpfs(page);
  // Nothing stored yet: no offer.
  await expect(page.getByTestId('reopen-model-offer')).toHaveCount(0);
  await chooseBoth(page);
  await expect(page.getByTestId('model-card').locator('.chip-file')).toHaveCount(MODEL_FILES.length);

  await page.reload();
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  // The user's files do not come back by themselves: the panels offer them.
  await expect(page.getByTestId('model-card')).toHaveCount(0);
  const reopenModel = page.getByTestId('reopen-model');
  const reopenDataset = page.getByTestId('reopen-dataset');
  await expect(reopenModel).toHaveText('Reopen stories260K');
  await expect(reopenDataset).toHaveText(`Reopen ${DATASET}`);
  await expect(page.getByTestId('reopen-model-offer')).toContainText('Last session used stories260K.');
  await page.getByTestId('panel-model').screenshot({ path: `${ARTIFACTS}/reopen-offer-model.png` });
  await page.getByTestId('panel-dataset').screenshot({ path: `${ARTIFACTS}/reopen-offer-dataset.png` });

  await reopenModel.click();
  await expect(page.getByTestId('model-card')).toContainText('stories260K');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(page.getByTestId('model-card').locator('.chip-file')).toHaveCount(MODEL_FILES.length);
  await reopenDataset.click();
  await expect(page.getByTestId('dataset-preview')).toContainText(DATASET);
  await expect(page.getByTestId('dataset-sample').first()).toContainText('First Citizen');
  await expect(page.getByTestId('reopen-model-offer')).toHaveCount(0);
  await expect(page.getByTestId('reopen-dataset-offer')).toHaveCount(0);

  // Forget: the next session offers nothing.
  await page.reload();
  await page.getByTestId('reopen-dataset-forget').click();
  await expect(page.getByTestId('reopen-dataset-offer')).toHaveCount(0);
  await expect.poll(async () => Object.keys(await storedHandles(page))).toEqual(['model']);
  expect(pageErrors).toEqual([]);
});

test('a file deleted since it was chosen: the reason, and the offer forgotten', async ({ page }) => {
  await pickersFromOpfs(page);
  await openStudio(page);
  await writeOpfs(page);
  await page.getByTestId('dataset-choose-file').click();
  await expect(page.getByTestId('dataset-preview')).toContainText(DATASET);
  await expect.poll(async () => (await storedHandles(page)).dataset).toEqual([DATASET, DATASET]);

  await page.evaluate(async (name) => (await navigator.storage.getDirectory()).removeEntry(name), DATASET);
  await page.reload();
  await page.getByTestId('reopen-dataset').click();
  await expect(page.getByTestId('reopen-dataset-problem')).toContainText(
    `${DATASET} is no longer where it was (moved, renamed or deleted): choose the dataset file again.`,
  );
  await expect(page.getByTestId('reopen-dataset-offer')).toHaveCount(0);
  await expect.poll(async () => Object.keys(await storedHandles(page))).toEqual([]);
  await page.getByTestId('panel-dataset').screenshot({ path: `${ARTIFACTS}/reopen-deleted.png` });
  await page.reload();
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await expect(page.getByTestId('reopen-dataset-offer')).toHaveCount(0);
});

test('an interrupted run offers to reopen the model and dataset it trained on, then resumes', async ({ page }) => {
  await pickersFromOpfs(page);
  await openStudio(page);
  await writeOpfs(page);
  await chooseBoth(page);
  await page.getByTestId('add-run').click();
  const run = page.getByTestId('run-card').first();
  await shrink(run, 40);
  await run.getByTestId('run-start').click();
  await expect(run).toHaveAttribute('data-checkpoint-step', /^\d+$/, { timeout: 120_000 });

  await page.reload();
  await expect(run).toHaveAttribute('data-status', 'interrupted');
  const step = Number(await run.getAttribute('data-checkpoint-step'));
  const resume = run.getByTestId('run-resume');
  await expect(resume).toBeDisabled();
  await expect(run.getByTestId('resume-problem')).toHaveText('· Load stories260K to resume this run.');
  const reopenModel = run.getByTestId('run-reopen-model');
  const reopenDataset = run.getByTestId('run-reopen-dataset');
  await expect(reopenModel).toHaveText('Reopen stories260K');
  await expect(reopenDataset).toHaveText(`Reopen ${DATASET}`);
  await run.screenshot({ path: `${ARTIFACTS}/reopen-run-interrupted.png` });

  await reopenModel.click();
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(reopenModel).toHaveCount(0);
  await expect(run.getByTestId('resume-problem')).toHaveText(`· Load ${DATASET} to resume this run.`);
  await reopenDataset.click();
  await expect(run.getByTestId('run-reopen')).toHaveCount(0);
  await expect(resume).toBeEnabled();
  await expect(resume).toHaveText(`Resume from step ${step}`);
  await resume.click();
  await expect(run).toHaveAttribute('data-status', 'done', { timeout: 4 * 60_000 });
  await expect(run.locator('.metric', { hasText: 'Steps' })).toContainText('40/40');
});

test('without the File System Access API: the buttons open the file dialogs, and the studio says to choose again', async ({
  page,
}) => {
  // Firefox and Safari: no pickers, no handles.
  await page.addInitScript(() => {
    for (const name of ['showDirectoryPicker', 'showOpenFilePicker', 'showSaveFilePicker']) {
      delete (Window.prototype as unknown as Record<string, unknown>)[name];
      delete (window as unknown as Record<string, unknown>)[name];
    }
  });
  await openStudio(page);
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    page.getByTestId('model-choose-folder').click(),
  ]);
  await chooser.setFiles('public/demo/model');
  await expect(page.getByTestId('model-status')).toHaveText('On the GPU', { timeout: 120_000 });
  await expect(page.getByTestId('reopen-model-note')).toHaveText(
    'This browser cannot reopen files after a reload (it has no File System Access API): choose the model folder again then.',
  );
  await page.getByTestId('dataset-input').setInputFiles(`public/demo/data/${DATASET}`);
  await expect(page.getByTestId('dataset-preview')).toContainText(DATASET);

  await page.reload();
  await expect(page.getByTestId('gpu-badge')).not.toContainText('Opening the GPU', { timeout: 60_000 });
  await expect(page.getByTestId('reopen-model-unsupported')).toContainText(
    "This browser cannot reopen the last session's model folder after a reload",
  );
  await expect(page.getByTestId('reopen-dataset-unsupported')).toBeVisible();
  await expect(page.getByTestId('reopen-model')).toHaveCount(0);
  await page.getByTestId('panel-model').screenshot({ path: `${ARTIFACTS}/reopen-unsupported.png` });
});

test('a file dropped without a handle (a synthetic drop) still loads, and the studio says it will not come back', async ({
  page,
}) => {
  await openStudio(page);
  // Real drops in Chromium carry handles (getAsFileSystemHandle); a DataTransfer built by a script carries none.
  const dataTransfer = await page.evaluateHandle(async (name) => {
    const dt = new DataTransfer();
    dt.items.add(new File([await (await fetch(`/demo/data/${name}`)).text()], name, { type: 'text/plain' }));
    return dt;
  }, DATASET);
  const zone = page.getByTestId('dataset-drop');
  for (const type of ['dragenter', 'dragover', 'drop']) await zone.dispatchEvent(type, { dataTransfer });
  await expect(page.getByTestId('dataset-preview')).toContainText(DATASET);
  await expect(page.getByTestId('reopen-dataset-note')).toContainText(
    'Chosen without a handle the browser can keep: after a reload, choose the dataset file again',
  );
  expect(await storedHandles(page)).toEqual({});
});

/**
 * The studio's model: loading a folder (or the demo) into its card, uploading its weights to the GPU as a job,
 * and the storage the base matrices are kept in.
 */
import { loadModelDir, type LoadedModel } from '../engine/load-model';
import { filesDir } from '../model/formats/blob-source';
import type { DirSource } from '../model/formats/source';
import { ModelWeights, WEIGHT_STORAGES, type WeightStorage } from '../model/weights';
import { fetchDemoModel } from './demo';
import { modelCard } from './model-card';
import type { ModelSource } from './protocol';
import type { ScopedGpu } from './scoped-gpu';
import { messageOf, type ModelState, type StudioState } from './studio-context';
import type { StudioDataset } from './studio-dataset';
import type { StudioDevice } from './studio-device';
import type { StudioRuns } from './studio-runs';

export class StudioModel {
  private modelEpoch = 0;
  /** How base matrices are kept on the GPU (model/weights.ts); the studio's choice, auto by default. */
  private weightStorage: WeightStorage = 'auto';

  constructor(
    private readonly studio: StudioState,
    private readonly device: StudioDevice,
    private readonly runs: StudioRuns,
    private readonly dataset: StudioDataset,
  ) {}

  async loadModel(source: ModelSource): Promise<void> {
    const epoch = ++this.modelEpoch;
    const demo = source.kind === 'demo';
    let loaded: LoadedModel;
    let dir: DirSource;
    try {
      this.studio.post({
        type: 'modelProgress',
        stage: demo ? 'Downloading the demo model' : 'Reading config.json and tokenizer.json',
        done: 0,
        total: 0,
      });
      dir = demo
        ? await fetchDemoModel((done, total) =>
            this.studio.post({ type: 'modelProgress', stage: 'Downloading the demo model', done, total }),
          )
        : filesDir(source.files, source.name);
      if (!demo && source.files.length === 0) throw new Error('The folder is empty: no files were dropped.');
      loaded = await loadModelDir(dir);
    } catch (err) {
      if (epoch === this.modelEpoch) this.studio.post({ type: 'error', scope: 'model', message: messageOf(err) });
      return;
    }
    if (epoch !== this.modelEpoch) return; // a newer load started meanwhile

    // Runs were configured for the previous model: stop them before its weights go away.
    this.runs.cancelAllRuns('Cancelled: another model was loaded.');
    const card = modelCard(loaded, dir.list(), demo, this.weightStorage);
    const state: ModelState = { epoch, loaded, card, dir, weights: null, scope: null, uploadError: null };
    const previous = this.studio.model;
    this.studio.model = state;
    this.studio.post({ type: 'model', card, ready: false, gpuBytes: this.device.gpu?.liveBytes ?? 0 });
    if (this.studio.dataset) void this.dataset.refreshDatasetPreview();

    this.queueUpload(state, previous);
  }

  /**
   * Keeps the base matrices as `storage` from now on; a loaded model is uploaded again under it (runs in the
   * queue are cancelled: they were sized for the old weights; trained adapters and full fine-tunes stay).
   */
  setWeightStorage(storage: WeightStorage): void {
    if (!WEIGHT_STORAGES.includes(storage))
      throw new Error(`Unknown weight storage "${storage}" (expected ${WEIGHT_STORAGES.join(', ')})`);
    if (storage === this.weightStorage) return;
    this.weightStorage = storage;
    const model = this.studio.model;
    if (!model) return;
    this.runs.cancelAllRuns(`Cancelled: the base weights were reloaded (${storage}).`);
    const state: ModelState = {
      ...model,
      card: modelCard(model.loaded, model.dir.list(), model.card.demo, storage),
      weights: null,
      scope: null,
      uploadError: null,
    };
    this.studio.model = state;
    this.studio.post({ type: 'model', card: state.card, ready: false, gpuBytes: this.device.gpu?.liveBytes ?? 0 });
    this.queueUpload(state, model, { keepFullRuns: true });
  }

  /** Uploads a model's weights as a GPU job (after the previous model's buffers are freed). */
  queueUpload(state: ModelState, previous: ModelState | null, opts: { keepFullRuns?: boolean } = {}): void {
    const { card, loaded } = state;
    this.studio.queue.push({
      urgent: true,
      execute: async () => {
        if (this.studio.model !== state) return;
        let gpu: ScopedGpu | null = null;
        try {
          gpu = await this.device.requireGpu();
          if (previous?.scope) await gpu.release(previous.scope);
          if (!opts.keepFullRuns) await this.freeFullRuns();
          const scope = gpu.open(`model ${card.name}`);
          try {
            state.weights = await ModelWeights.upload(gpu, loaded.spec, loaded.source, {
              storage: state.card.weightStorage ?? 'auto',
              onProgress: (done, total) =>
                this.studio.post({ type: 'modelProgress', stage: 'Uploading weights to the GPU', done, total }),
            });
            gpu.checkErrors(`Uploading ${card.name}`);
          } catch (err) {
            state.weights = null;
            await gpu.release(scope);
            throw err;
          }
          gpu.close(scope);
          state.scope = scope;
          state.uploadError = null;
          if (this.studio.model === state)
            this.studio.post({ type: 'model', card, ready: true, gpuBytes: gpu.liveBytes });
        } catch (err) {
          state.uploadError = this.device.failure(err, gpu);
          if (this.studio.model === state)
            this.studio.post({ type: 'error', scope: 'model', message: state.uploadError });
        }
      },
    });
  }

  private async freeFullRuns(): Promise<void> {
    for (const run of this.studio.trained.values()) {
      if (run.full?.scope && this.device.gpu) {
        await this.device.gpu.release(run.full.scope);
        run.full = null;
      }
    }
  }
}

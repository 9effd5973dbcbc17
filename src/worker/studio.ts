/**
 * The worker's router: `handle` passes each command to the module of its job and owns the state they share
 * (studio-context.ts). The jobs: the GPU device (studio-device.ts), the model (studio-model.ts), the dataset
 * (studio-dataset.ts), the run queue (studio-runs.ts), experiments (studio-experiments.ts), generation
 * (studio-playground.ts), the benchmark (studio-bench.ts) and export (studio-export.ts). Every handler reports failure as an event with a specific
 * message; nothing here may throw past `handle`, so the worker never dies.
 */
import { GpuQueue } from './gpu-queue';
import type { Command } from './protocol';
import { messageOf, type Post, type StudioState } from './studio-context';
import { StudioBench } from './studio-bench';
import { StudioDataset } from './studio-dataset';
import { StudioDevice } from './studio-device';
import { StudioExperiments } from './studio-experiments';
import { StudioExport } from './studio-export';
import { StudioModel } from './studio-model';
import { StudioPlayground } from './studio-playground';
import { StudioRuns } from './studio-runs';

export { messageOf, type Post } from './studio-context';

export class Studio {
  private readonly studio: StudioState;
  private readonly device: StudioDevice;
  private readonly model: StudioModel;
  private readonly dataset: StudioDataset;
  private readonly runs: StudioRuns;
  private readonly experiments: StudioExperiments;
  private readonly playground: StudioPlayground;
  private readonly bench: StudioBench;
  private readonly export: StudioExport;

  constructor(post: Post) {
    this.studio = { post, queue: new GpuQueue(), model: null, dataset: null, trained: new Map() };
    // A lost device uploads the loaded model again on the new one, and queues the run it cut off again.
    this.device = new StudioDevice(
      this.studio,
      (model) => this.model.queueUpload(model, null),
      (config, resume) => this.runs.startRun(config, resume, { ahead: true }),
    );
    this.dataset = new StudioDataset(this.studio);
    this.runs = new StudioRuns(this.studio, this.device, this.dataset);
    this.experiments = new StudioExperiments(this.studio, this.device, this.dataset);
    this.model = new StudioModel(this.studio, this.device, this.runs, this.dataset);
    this.playground = new StudioPlayground(this.studio, this.device);
    this.bench = new StudioBench(this.studio, this.device);
    this.export = new StudioExport(this.studio, this.device);
  }

  async handle(cmd: Command): Promise<void> {
    try {
      switch (cmd.type) {
        case 'init':
          return await this.device.init(cmd.testHooks);
        case 'debugLoseDevice':
          return this.device.loseDeviceForTest();
        case 'loadModel':
          return await this.model.loadModel(cmd.source);
        case 'setWeightStorage':
          return this.model.setWeightStorage(cmd.storage);
        case 'loadDataset':
          return await this.dataset.loadDataset(cmd.source);
        case 'setDatasetFormat':
          return await this.dataset.setDatasetFormat({
            format: cmd.format,
            columns: cmd.columns,
            ...(cmd.promptJoin ? { promptJoin: cmd.promptJoin } : {}),
          });
        case 'setPreviewFit':
          return await this.dataset.setPreviewFit(cmd.seq, cmd.truncation);
        case 'startRun':
          return this.runs.startRun(cmd.config, cmd.resume);
        case 'cancelRun':
          return this.runs.cancelRun(cmd.id);
        case 'deleteRun':
          return await this.runs.deleteRun(cmd.id);
        case 'restoreAdapters':
          return this.runs.restoreAdapters(cmd.adapters);
        case 'generate':
          return this.playground.generate(cmd);
        case 'stopGeneration':
          return this.playground.stop(cmd.requestId);
        case 'exportRun':
          return await this.export.exportRun(cmd.id, cmd.name, cmd.variant, cmd.target);
        case 'runBench':
          return this.bench.runBench();
        case 'startExperiment':
          return this.experiments.startExperiment(cmd.id, cmd.experiment, cmd.done);
        case 'cancelExperiment':
          return this.experiments.cancelExperiment(cmd.id);
      }
    } catch (err) {
      this.studio.post({ type: 'error', scope: 'internal', message: messageOf(err) });
    }
  }
}

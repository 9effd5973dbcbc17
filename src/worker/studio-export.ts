/**
 * The studio's export: a trained run as a downloadable zip — its PEFT adapter folder, or the whole model (the base
 * with the run folded in, or a full fine-tune) as a safetensors folder or one GGUF file, read back from the GPU as
 * an urgent job.
 */
import { writeGguf, ollamaModelfile } from '../export/gguf/index';
import { mergeModel } from '../export/merge';
import { mergedFolderFiles } from '../export/merged-folder';
import { modelFolderTexts } from '../export/model-files';
import { openSafetensors } from '../model/formats/safetensors';
import { bytesSource } from '../model/formats/source';
import { adapterZip, ggufZip, mergedZip } from './export-files';
import type { ExportTarget, ExportVariant } from './protocol';
import { messageOf, type StudioState, type TrainedRun } from './studio-context';
import type { StudioDevice } from './studio-device';

/** A full fine-tune downloads as a merged f32 folder unless the user picks another precision or GGUF. */
const FULL_DEFAULT: ExportTarget = { format: 'merged', dtype: 'f32' };

export class StudioExport {
  constructor(
    private readonly studio: StudioState,
    private readonly device: StudioDevice,
  ) {}

  async exportRun(id: string, name: string, variant?: ExportVariant, target?: ExportTarget): Promise<void> {
    const fail = (message: string) => this.studio.post({ type: 'error', scope: 'export', id, message });
    const run = this.studio.trained.get(id);
    if (!run) return fail(`"${name}" has no trained weights to export.`);
    if (run.adapter && !target) {
      try {
        const { fileName, bytes } = adapterZip(name, run.adapter, variant);
        this.studio.post({ type: 'export', id, fileName, bytes }, [bytes.buffer]);
      } catch (err) {
        fail(messageOf(err));
      }
      return;
    }
    const problem = this.wholeModelProblem(run);
    if (problem) return fail(problem);
    const model = this.studio.model!;
    const whole = target ?? FULL_DEFAULT;
    this.studio.queue.push({
      urgent: true,
      execute: async () => {
        try {
          const gpu = await this.device.requireGpu();
          const weights = run.full ? run.full.weights : model.weights;
          if (!weights) throw new Error(model.uploadError ?? 'The model weights are not on the GPU yet.');
          const { configJson, files } = await modelFolderTexts(model.dir);
          const adapter = run.adapter && {
            config: run.adapter.config,
            store: await openSafetensors(bytesSource('adapter_model.safetensors', run.adapter.safetensors)),
            where: `"${name}"`,
          };
          // GGUF merges in f32 and converts once; a folder is rounded once, to its own precision.
          const dtype = whole.format === 'merged' ? whole.dtype : 'f32';
          const merged = await mergeModel(gpu, weights, { configJson, files, adapter: adapter || undefined, dtype });
          const what = run.full ? 'A fully fine-tuned model' : `${model.card.name} with "${name}" merged into it`;
          const { fileName, bytes } =
            whole.format === 'merged'
              ? mergedZip(name, mergedFolderFiles(merged, whole.dtype), `${what}, in ${whole.dtype}.`)
              : ggufZip(name, whole.dtype, `${what}, as GGUF ${whole.dtype}.`, {
                  gguf: await writeGguf(merged, { dtype: whole.dtype, name }),
                  modelfile: (ggufName) => ollamaModelfile(merged, ggufName),
                });
          this.studio.post({ type: 'export', id, fileName, bytes }, [bytes.buffer]);
        } catch (err) {
          fail(messageOf(err));
        }
      },
    });
  }

  /** Why a run cannot be exported as a whole model now (its base weights are not the loaded ones), or null. */
  private wholeModelProblem(run: TrainedRun): string | null {
    const model = this.studio.model;
    if (run.full) {
      return !model || run.full.modelEpoch !== model.epoch
        ? 'Full fine-tunes stay on the GPU only while their base model is loaded; this one is gone. Train it again to export it.'
        : null;
    }
    if (!run.adapter) return 'This run has no adapter weights.';
    if (!model) return `Load ${run.adapter.baseModel} to export this run merged into it.`;
    if (run.adapter.modelKey !== model.card.key)
      return `This adapter was trained on ${run.adapter.baseModel}; load that model to export it merged.`;
    return null;
  }
}

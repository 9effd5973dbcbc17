/**
 * The studio's export: a trained run as a downloadable zip (a PEFT adapter folder, or a full fine-tune's merged
 * model, read back from the GPU as an urgent job).
 */
import { mergedConfigJson, mergedModelFiles } from '../engine/export';
import { adapterZip, mergedZip } from './export-files';
import type { ExportVariant } from './protocol';
import { messageOf, type StudioState } from './studio-context';
import type { StudioDevice } from './studio-device';

/** Copied from the loaded model's folder into a merged model's, where present. */
const CONFIG_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
];

export class StudioExport {
  constructor(
    private readonly studio: StudioState,
    private readonly device: StudioDevice,
  ) {}

  async exportRun(id: string, name: string, variant?: ExportVariant): Promise<void> {
    const fail = (message: string) => this.studio.post({ type: 'error', scope: 'export', id, message });
    const run = this.studio.trained.get(id);
    if (!run) return fail(`"${name}" has no trained weights to export.`);
    if (run.adapter) {
      try {
        const { fileName, bytes } = adapterZip(name, run.adapter, variant);
        this.studio.post({ type: 'export', id, fileName, bytes }, [bytes.buffer]);
      } catch (err) {
        fail(messageOf(err));
      }
      return;
    }
    const full = run.full;
    const model = this.studio.model;
    if (!full || !model || full.modelEpoch !== model.epoch) {
      return fail(
        'Full fine-tunes stay on the GPU only while their base model is loaded; this one is gone. Train it again to export it.',
      );
    }
    this.studio.queue.push({
      urgent: true,
      execute: async () => {
        try {
          const gpu = await this.device.requireGpu();
          const files = await mergedModelFiles(gpu, full.weights);
          for (const f of CONFIG_FILES) {
            if (!model.dir.list().includes(f)) continue;
            const text = await model.dir.text(f);
            files[f] = f === 'config.json' ? mergedConfigJson(text) : text;
          }
          const { fileName, bytes } = mergedZip(name, files);
          this.studio.post({ type: 'export', id, fileName, bytes }, [bytes.buffer]);
        } catch (err) {
          fail(messageOf(err));
        }
      },
    });
  }
}

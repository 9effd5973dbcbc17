/**
 * What a train run is, for resuming it: the flags that decide what it trains, the model's files and the data file,
 * each by content. A checkpoint stores its run's identity; a resumed run must have the same one, and a difference
 * is named by its flag (--lr, --model, --data, ...).
 */
import { resolve } from 'node:path';
import { sourceDigest } from '../data/digest';
import type { StreamedFile } from '../data/dataset-file';
import { openModelPath } from './node-files';
import { TRAIN_OPTS } from './train-options';

/** Flags a resumed run may change: where it writes, how it checkpoints and reports (none changes a trained number). */
export const RESUME_FREE_FLAGS: readonly string[] = [
  'out',
  'checkpoint-every',
  'checkpoint-dir',
  'eval-every',
  'val-batches',
  'export-lora',
  'export-raw',
];
/** Not settings: the checkpoint itself, and the model and data, which are compared by content, not by path. */
const NOT_SETTINGS: readonly string[] = ['resume', 'model', 'data'];

export interface RunIdentity {
  /** Every other train flag by name, as resolved (--seq-len's default filled in); null when not given. */
  settings: Record<string, unknown>;
  /** The model as given, and a digest of each file that decides its weights (config.json, *.safetensors, *.bin). */
  model: { path: string; files: Record<string, string> };
  /** The data file as given, and its size and SHA-256 (src/data/digest.ts). */
  data: { path: string; digest: string };
}

/** The run's identity from its parsed flags, the resolved sequence length and the data file. */
export async function runIdentity(o: Record<string, unknown>, seq: number, data: StreamedFile): Promise<RunIdentity> {
  const settings: Record<string, unknown> = {};
  for (const flag of Object.keys(TRAIN_OPTS)) {
    if (!RESUME_FREE_FLAGS.includes(flag) && !NOT_SETTINGS.includes(flag))
      settings[flag] = flag === 'seq-len' ? seq : (o[flag] ?? null);
  }
  const dir = await openModelPath(o.model as string);
  const files: Record<string, string> = {};
  for (const name of dir.list().filter((f) => f === 'config.json' || /\.(safetensors|bin)$/.test(f))) {
    files[name] = await sourceDigest(dir.file(name)!);
  }
  return {
    settings,
    model: { path: resolve(o.model as string), files },
    data: { path: resolve(o.data as string), digest: await sourceDigest(data) },
  };
}

/**
 * Why a run cannot continue a checkpoint's run, naming each flag that differs, or null when they are the same run.
 * `where` names the checkpoint in the message (e.g. "--resume runs/a/checkpoint").
 */
export function identityProblem(saved: RunIdentity, now: RunIdentity, where: string): string | null {
  const flags = [...new Set([...Object.keys(now.settings), ...Object.keys(saved.settings)])];
  const differing = flags
    .filter((f) => JSON.stringify(saved.settings[f] ?? null) !== JSON.stringify(now.settings[f] ?? null))
    .map((f) => `--${f} ${shown(saved.settings[f])} there, ${shown(now.settings[f])} here`);
  if (differing.length) {
    return (
      `${where}: the checkpoint's run has other settings: ${differing.join('; ')}. Resume with its settings ` +
      `(only ${RESUME_FREE_FLAGS.map((f) => `--${f}`).join(', ')} may change).`
    );
  }
  const modelFile = [...new Set([...Object.keys(saved.model.files), ...Object.keys(now.model.files)])].find(
    (f) => saved.model.files[f] !== now.model.files[f],
  );
  if (modelFile !== undefined) {
    const what =
      saved.model.files[modelFile] === undefined
        ? "is not in the checkpoint's model"
        : now.model.files[modelFile] === undefined
          ? 'is missing'
          : 'differs';
    return `--model ${now.model.path}: not the model the checkpoint's run trained (${saved.model.path}): its ${modelFile} ${what}.`;
  }
  if (saved.data.digest !== now.data.digest) {
    return (
      `--data ${now.data.path}: not the file the checkpoint's run trained on (${saved.data.path}): its size or ` +
      `contents differ. Resume with the original file.`
    );
  }
  return null;
}

function shown(value: unknown): string {
  if (value === undefined || value === null) return '(not given)';
  if (value === true) return '(set)';
  if (Array.isArray(value)) return value.length ? value.join(',') : '(none)';
  return String(value);
}

/**
 * A training checkpoint on disk (train --checkpoint-every, --resume), in one folder:
 *   checkpoint.json             what the run is (flags, model and data identity), the steps done, the batch hash,
 *                               the method's modules and ranks, and the name of the state file
 *   state-<step>-<id>.safetensors  every trainable's parameters and AdamW moments (param/, adam_m/, adam_v/ + name)
 *                               and the method's step state (param/method:<name>, e.g. AdaLoRA's EMAs and mask)
 * A process killed at any instant leaves the previous checkpoint or the new one, never a mix: the state file is
 * written under a new name (temporary file, fsync, rename), then checkpoint.json is replaced the same way (that one
 * rename switches to the new state), and only then are older state files and leftover temporary files removed.
 */
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { nodeFile } from '../model/formats/node-source';
import { loadTensor, readSafetensors, safetensorsChunks, type NamedTensor } from '../model/formats/safetensors';
import { METHOD_STATE_PREFIX, type TrainableState } from '../train/trainer';
import type { RunIdentity } from './run-identity';

export const CHECKPOINT_MANIFEST = 'checkpoint.json';
export const CHECKPOINT_FORMAT = 'lora-studio-train-checkpoint';
export const CHECKPOINT_VERSION = 1;

const STATE_FILE = /^state-\d{8}-[0-9a-z]+\.safetensors$/;
/** Temporary files of writeAtomic (a kill between write and rename leaves one). */
const TEMP_FILE = /^\.(checkpoint\.json|state-\d{8}-[0-9a-z]+\.safetensors)\.\d+\.tmp$/;

export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** Steps completed: a resumed run continues at this step. */
  step: number;
  /** The run's optimizer steps (--steps), for messages. */
  steps: number;
  /** FNV-1a of the batches trained before `step` (RunCheckpoint.batchHash). */
  batchHash: string;
  /** The state file beside the manifest, and its size. */
  state: { file: string; bytes: number };
  run: RunIdentity;
  /** What the run's summary line counts across an interruption. */
  progress: { skippedBatches: number; initialValLoss: number | null };
  /** The adapted modules and their ranks as the method built them: a resumed run must rebuild the same. */
  modules: { path: string; rank: number }[];
  writtenAt: string;
}

/** Writes a checkpoint into `dir` (created if needed), replacing the one there. */
export async function writeCheckpointFolder(
  dir: string,
  manifest: Omit<CheckpointManifest, 'format' | 'version' | 'state' | 'writtenAt'>,
  state: TrainableState[],
): Promise<void> {
  await mkdir(dir, { recursive: true });
  // A name no earlier checkpoint used: the file the current manifest names is never overwritten.
  const file = `state-${String(manifest.step).padStart(8, '0')}-${Date.now().toString(36)}.safetensors`;
  const chunks = safetensorsChunks(stateTensors(state), { format: CHECKPOINT_FORMAT });
  await writeAtomic(join(dir, file), chunks);
  const full: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    ...manifest,
    state: { file, bytes: chunks.reduce((n, c) => n + c.byteLength, 0) },
    writtenAt: new Date().toISOString(),
  };
  await writeAtomic(join(dir, CHECKPOINT_MANIFEST), [new TextEncoder().encode(JSON.stringify(full, null, 2) + '\n')]);
  await syncFolder(dir);
  for (const name of await readdir(dir)) {
    if ((STATE_FILE.test(name) && name !== file) || TEMP_FILE.test(name)) await unlink(join(dir, name));
  }
}

/** Reads and checks a checkpoint folder; errors name --resume and say what is wrong with it. */
export async function readCheckpointFolder(
  dir: string,
): Promise<{ manifest: CheckpointManifest; state: TrainableState[] }> {
  const where = `--resume ${dir}`;
  const info = await stat(dir).catch(() => null);
  if (!info) throw new Error(`${where}: no such folder`);
  if (!info.isDirectory())
    throw new Error(`${where}: not a folder (give the checkpoint folder, e.g. <--out>/checkpoint)`);
  const text = await readFile(join(dir, CHECKPOINT_MANIFEST), 'utf8').catch(() => null);
  if (text === null) {
    throw new Error(
      `${where}: not a training checkpoint (it has no ${CHECKPOINT_MANIFEST}; train --checkpoint-every N writes ` +
        `checkpoints to <--out>/checkpoint or --checkpoint-dir)`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: ${CHECKPOINT_MANIFEST} is not valid JSON (${(e as Error).message})`);
  }
  const manifest = checkedManifest(json, where);
  const statePath = join(dir, manifest.state.file);
  const size = (await stat(statePath).catch(() => null))?.size;
  if (size !== manifest.state.bytes) {
    throw new Error(
      `${where}: the checkpoint is damaged: ${manifest.state.file} ` +
        (size === undefined ? 'is missing' : `has ${size} bytes, ${CHECKPOINT_MANIFEST} says ${manifest.state.bytes}`),
    );
  }
  return { manifest, state: await readState(statePath) };
}

/** The state as safetensors entries: a method's step state has no moments, so only its values are written. */
function stateTensors(state: TrainableState[]): NamedTensor[] {
  return state.flatMap((s) => {
    const entries = [{ name: `param/${s.name}`, shape: [s.param.length], data: s.param }];
    if (s.name.startsWith(METHOD_STATE_PREFIX)) return entries;
    return [
      ...entries,
      { name: `adam_m/${s.name}`, shape: [s.m.length], data: s.m },
      { name: `adam_v/${s.name}`, shape: [s.v.length], data: s.v },
    ];
  });
}

async function readState(path: string): Promise<TrainableState[]> {
  const { tensors } = await readSafetensors(await nodeFile(path));
  const load = (name: string) => {
    const info = tensors.get(name);
    if (!info) throw new Error(`${path}: the checkpoint is damaged: it has no tensor "${name}"`);
    return loadTensor(info);
  };
  const names = [...tensors.keys()].filter((n) => n.startsWith('param/')).map((n) => n.slice('param/'.length));
  const empty = new Float32Array(0);
  // One tensor at a time: a full fine-tune's state has thousands, and each read opens the file.
  const state: TrainableState[] = [];
  for (const name of names) {
    const method = name.startsWith(METHOD_STATE_PREFIX);
    state.push({
      name,
      param: await load(`param/${name}`),
      m: method ? empty : await load(`adam_m/${name}`),
      v: method ? empty : await load(`adam_v/${name}`),
    });
  }
  return state;
}

function checkedManifest(json: unknown, where: string): CheckpointManifest {
  const m = json as Partial<CheckpointManifest> | null;
  if (typeof m !== 'object' || m === null || m.format !== CHECKPOINT_FORMAT) {
    throw new Error(`${where}: not a training checkpoint (${CHECKPOINT_MANIFEST} is not one train wrote)`);
  }
  if (m.version !== CHECKPOINT_VERSION) {
    throw new Error(
      `${where}: checkpoint format version ${m.version}; this CLI reads version ${CHECKPOINT_VERSION}. Resume it ` +
        `with the version of LoRA Studio that wrote it.`,
    );
  }
  const count = (x: unknown) => Number.isInteger(x) && (x as number) >= 0;
  const intact =
    count(m.step) &&
    count(m.steps) &&
    typeof m.batchHash === 'string' &&
    typeof m.state?.file === 'string' &&
    STATE_FILE.test(m.state.file) &&
    count(m.state.bytes) &&
    typeof m.run?.settings === 'object' &&
    typeof m.run?.model?.files === 'object' &&
    typeof m.run?.data?.digest === 'string' &&
    count(m.progress?.skippedBatches) &&
    Array.isArray(m.modules);
  if (!intact) throw new Error(`${where}: the checkpoint is damaged: ${CHECKPOINT_MANIFEST} lacks fields it needs`);
  return m as CheckpointManifest;
}

/** Writes the file under a temporary name, flushes it to disk, then renames it into place (atomic on POSIX). */
async function writeAtomic(path: string, chunks: Uint8Array[]): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const handle = await open(temp, 'w');
  try {
    for (const chunk of chunks) {
      let done = 0;
      while (done < chunk.byteLength) done += (await handle.write(chunk, done, chunk.byteLength - done)).bytesWritten;
    }
    await handle.sync();
  } catch (e) {
    await handle.close();
    await unlink(temp).catch(() => {});
    throw e;
  }
  await handle.close();
  await rename(temp, path);
}

/** Flushes the folder's entries (the renames) too, so an OS crash cannot lose them; not possible on every OS. */
async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => null);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Windows cannot fsync a folder; the renames are atomic there all the same.
  } finally {
    await handle.close();
  }
}

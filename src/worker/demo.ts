/** The embedded demo (public/demo): stories260K and a Shakespeare excerpt, fetched from the app's own origin. */
import { memoryDir, type DirSource } from '../model/formats/source';

export const DEMO_MODEL_NAME = 'stories260K';
export const DEMO_MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
];
export const DEMO_DATASET_FILE = 'tinyshakespeare.txt';

function demoUrl(path: string): string {
  return new URL(`${import.meta.env.BASE_URL}demo/${path}`, self.location.origin).href;
}

async function fetchBytes(path: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(demoUrl(path));
  } catch (err) {
    throw new Error(`Could not download the demo file demo/${path}: ${(err as Error).message}`);
  }
  if (!res.ok)
    throw new Error(`Could not download the demo file demo/${path}: HTTP ${res.status} ${res.statusText}`.trim());
  return new Uint8Array(await res.arrayBuffer());
}

export async function fetchDemoModel(onFile: (done: number, total: number) => void): Promise<DirSource> {
  const files: Record<string, Uint8Array> = {};
  let done = 0;
  await Promise.all(
    DEMO_MODEL_FILES.map(async (name) => {
      files[name] = await fetchBytes(`model/${name}`);
      onFile(++done, DEMO_MODEL_FILES.length);
    }),
  );
  return memoryDir(DEMO_MODEL_NAME, files);
}

export async function fetchDemoDataset(): Promise<{ name: string; bytes: Uint8Array }> {
  return { name: DEMO_DATASET_FILE, bytes: await fetchBytes(`data/${DEMO_DATASET_FILE}`) };
}

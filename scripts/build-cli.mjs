// Bundles the Node CLI (src/cli/main.ts) into dist-cli/cli.mjs with esbuild; WGSL is inlined as text.
// Build messages go to stderr so the CLI's stdout stays machine-readable.
//
// `npm run cli` calls this before every command, and several commands may run at once in one checkout, so:
// - the build is skipped while the bundle is newer than everything it is built from (src/, shaders/, the entry,
//   this script, package-lock.json) and was built with the same entry and flags (--force builds anyway);
// - the bundle and its .map are written to temporary files in the same folder and renamed into place, so a
//   command starting meanwhile reads the previous bundle or the new one, never a half-written file. Concurrent
//   builds of the same sources write the same bytes; the last rename wins.
import { build } from 'esbuild';
import { mkdir, open, readFile, readdir, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const rawText = {
  name: 'raw-text',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({
      path: new URL(args.path.replace(/\?raw$/, ''), `file://${args.resolveDir}/`).pathname,
      namespace: 'raw-text',
    }));
    b.onLoad({ filter: /.*/, namespace: 'raw-text' }, async (args) => ({
      contents: await readFile(args.path, 'utf8'),
      loader: 'text',
    }));
  },
};

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const entry = positional[0] ?? 'src/cli/main.ts';
const outfile = positional[1] ?? 'dist-cli/cli.mjs';
// --self-contained: the peers are bundled too, so only Dawn's native module must sit beside the file
// (scripts/gpu-bundle.sh, for machines without node_modules).
const selfContained = process.argv.includes('--self-contained');
const force = process.argv.includes('--force');

const root = fileURLToPath(new URL('..', import.meta.url));
const inputs = [
  join(root, 'src'),
  join(root, 'shaders'),
  resolve(entry),
  fileURLToPath(import.meta.url),
  join(root, 'package-lock.json'),
];
// The first line of the bundle: which entry and flags built it (a bundle built otherwise is never "up to date").
const stamp = `// lora-studio build-cli: ${JSON.stringify({ entry: resolve(entry), selfContained })}`;

/** The newest modification time under `paths` (files, or folders walked recursively); missing paths count as 0. */
async function newestMtime(paths) {
  let newest = 0;
  for (const p of paths) {
    const st = await stat(p).catch(() => null);
    if (!st) continue;
    if (st.isDirectory()) {
      const entries = await readdir(p);
      newest = Math.max(newest, st.mtimeMs, await newestMtime(entries.map((e) => join(p, e))));
    } else {
      newest = Math.max(newest, st.mtimeMs);
    }
  }
  return newest;
}

async function upToDate() {
  const [out, map] = await Promise.all([stat(outfile).catch(() => null), stat(`${outfile}.map`).catch(() => null)]);
  if (!out || !map) return false;
  const expected = Buffer.from(`${stamp}\n`);
  const head = Buffer.alloc(expected.length);
  const fh = await open(outfile, 'r');
  try {
    await fh.read(head, 0, head.length, 0);
  } finally {
    await fh.close();
  }
  if (!head.equals(expected)) return false;
  return out.mtimeMs > (await newestMtime(inputs));
}

if (!force && (await upToDate())) process.exit(0);
// The bundle's time is the build's start: a source saved while esbuild runs is newer, so the next call rebuilds.
const started = new Date();
const versionOf = async (pkg) => JSON.parse(await readFile(`node_modules/${pkg}/package.json`, 'utf8')).version;
const bundledVersions = {};
if (selfContained) {
  for (const pkg of ['webgpu', '@jax-js/jax', '@tensorflow/tfjs-backend-webgpu'])
    bundledVersions[pkg] = await versionOf(pkg);
}
const result = await build({
  entryPoints: [entry],
  outfile,
  write: false,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  // Native and Node-only packages stay external; they resolve from node_modules at run time.
  external: selfContained ? ['webgpu'] : ['webgpu', '@jax-js/jax', '@tensorflow/*'],
  banner: {
    js: `${stamp}\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);`,
  },
  plugins: [rawText],
  define: selfContained ? { __BUNDLED_VERSIONS__: JSON.stringify(bundledVersions) } : {},
});

// The .map first, then the bundle that links to it: each appears whole, by rename, under its final name.
await mkdir(dirname(resolve(outfile)), { recursive: true });
const outputs = [...result.outputFiles].sort(
  (a, b) => Number(b.path.endsWith('.map')) - Number(a.path.endsWith('.map')),
);
for (const file of outputs) {
  const tmp = join(
    dirname(file.path),
    `.${basename(file.path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`,
  );
  try {
    await writeFile(tmp, file.contents);
    await utimes(tmp, started, started);
    await rename(tmp, file.path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

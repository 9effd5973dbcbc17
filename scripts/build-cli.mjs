// Bundles the Node CLI (src/cli/main.ts) into dist-cli/cli.mjs with esbuild; WGSL is inlined as text.
// Build messages go to stderr so the CLI's stdout stays machine-readable.
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';

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

const entry = process.argv[2] ?? 'src/cli/main.ts';
const outfile = process.argv[3] ?? 'dist-cli/cli.mjs';
// --self-contained: the peers are bundled too, so only Dawn's native module must sit beside the file
// (scripts/gpu-bundle.sh, for machines without node_modules).
const selfContained = process.argv.includes('--self-contained');
const versionOf = async (pkg) => JSON.parse(await readFile(`node_modules/${pkg}/package.json`, 'utf8')).version;
const bundledVersions = {};
if (selfContained) {
  for (const pkg of ['webgpu', '@jax-js/jax', '@tensorflow/tfjs-backend-webgpu']) bundledVersions[pkg] = await versionOf(pkg);
}
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  // Native and Node-only packages stay external; they resolve from node_modules at run time.
  external: selfContained ? ['webgpu'] : ['webgpu', '@jax-js/jax', '@tensorflow/*'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  plugins: [rawText],
  define: selfContained ? { __BUNDLED_VERSIONS__: JSON.stringify(bundledVersions) } : {},
});

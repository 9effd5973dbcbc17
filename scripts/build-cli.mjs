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
  external: ['webgpu', '@jax-js/jax', '@tensorflow/*'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  plugins: [rawText],
});

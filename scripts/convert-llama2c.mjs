// Runner for scripts/convert-llama2c.ts: bundles it with esbuild (scripts/build-cli.mjs) into
// dist-cli/, then runs it with the same arguments. Run from the repository root.
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = join(root, 'dist-cli', 'convert-llama2c.mjs');
execFileSync(
  process.execPath,
  [join(root, 'scripts/build-cli.mjs'), join(root, 'scripts/convert-llama2c.ts'), bundle],
  {
    stdio: 'inherit',
  },
);
await import(pathToFileURL(bundle).href);

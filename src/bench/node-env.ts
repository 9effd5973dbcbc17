/** What the CLI bench needs from Node only: a navigator.gpu for the peers, and installed package versions. */

/** Both peers find WebGPU through navigator.gpu, which Node lacks: give them our Dawn instance. */
export function exposeNavigatorGpu(gpu: GPU): void {
  Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true });
}

/** Set by scripts/build-cli.mjs --self-contained: that bundle runs where no node_modules can be read. */
declare const __BUNDLED_VERSIONS__: Record<string, string> | undefined;

/** The installed (or bundled) version of a package (for the report), or '?' when it cannot be read. */
export async function packageVersion(name: string): Promise<string> {
  if (typeof __BUNDLED_VERSIONS__ !== 'undefined' && __BUNDLED_VERSIONS__[name]) return __BUNDLED_VERSIONS__[name];
  try {
    const { createRequire } = await import('node:module');
    const { readFile } = await import('node:fs/promises');
    const { dirname, join } = await import('node:path');
    const require = createRequire(join(process.cwd(), 'package.json'));
    // Resolve the entry point (package.json itself is often not exported), then walk up to the package root.
    let dir = dirname(require.resolve(name));
    for (let i = 0; i < 5; i++) {
      const text = await readFile(join(dir, 'package.json'), 'utf8').catch(() => null);
      if (text) {
        const pkg = JSON.parse(text) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? '?';
      }
      dir = dirname(dir);
    }
  } catch {
    // fall through
  }
  return '?';
}

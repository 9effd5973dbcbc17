/** The CLI command that reruns an experiment, as the studio's "copy as CLI command" shows it. */

/** A POSIX shell word: left bare when it holds only safe characters, single-quoted otherwise. */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_./:@%+=,-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function experimentCliCommand(configFile: string, outDir: string): string {
  return `npm run cli -- experiment --config ${shellQuote(configFile)} --out ${shellQuote(outDir)}`;
}

/** Minimal strict option parsing: --name value and --flag; unknown options are errors, not silently ignored. */
export type OptionKind = 'string' | 'int' | 'number' | 'flag' | 'list';

export interface OptionSpec {
  kind: OptionKind;
  help: string;
  default?: string | number | boolean | string[];
  required?: boolean;
}

export type ParsedOptions = Record<string, string | number | boolean | string[] | undefined>;

export function parseOptions(command: string, argv: string[], specs: Record<string, OptionSpec>): ParsedOptions {
  const out: ParsedOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--'))
      throw new Error(`${command}: unexpected argument "${arg}" (options start with --; see --help)`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const spec = specs[name];
    if (!spec)
      throw new Error(
        `${command}: unknown option --${name}. Options: ${Object.keys(specs)
          .map((k) => `--${k}`)
          .join(', ')}`,
      );
    if (spec.kind === 'flag') {
      out[name] = true;
      continue;
    }
    const raw = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new Error(`${command}: --${name} needs a value`);
    out[name] = convert(command, name, spec.kind, raw);
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (out[name] === undefined && spec.default !== undefined) out[name] = spec.default;
    if (out[name] === undefined && spec.required) throw new Error(`${command}: --${name} is required (${spec.help})`);
  }
  return out;
}

function convert(command: string, name: string, kind: OptionKind, raw: string): string | number | string[] {
  if (kind === 'string') return raw;
  if (kind === 'list')
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v))
    throw new Error(`${command}: --${name} must be a number (got "${raw}")`);
  if (kind === 'int' && !Number.isInteger(v))
    throw new Error(`${command}: --${name} must be an integer (got "${raw}")`);
  return v;
}

export function helpText(command: string, summary: string, specs: Record<string, OptionSpec>): string {
  const lines = [`npm run cli -- ${command} [options]`, '', summary, ''];
  for (const [name, s] of Object.entries(specs)) {
    const def =
      s.default !== undefined
        ? ` (default ${Array.isArray(s.default) ? s.default.join(',') : s.default})`
        : s.required
          ? ' (required)'
          : '';
    lines.push(`  --${name}${s.kind === 'flag' ? '' : ' ' + s.kind.toUpperCase()}  ${s.help}${def}`);
  }
  return lines.join('\n');
}

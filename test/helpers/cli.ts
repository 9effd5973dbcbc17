/** Runs the bundled CLI (dist-cli/cli.mjs) as other tools do, keeping stdout, stderr and the exit code. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const run = promisify(execFile);

export async function cli(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run('node', ['dist-cli/cli.mjs', ...args], { maxBuffer: 1 << 24 });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}

/** The JSON object on stdout's last line. */
export const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!);

/** Every JSON line on stdout. */
export const jsonLines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));

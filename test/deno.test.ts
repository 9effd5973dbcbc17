/**
 * The engine under Deno, whose built-in WebGPU is wgpu (the implementation Firefox uses), beside Node's Dawn: the
 * kernel reference checks (test/wgpu-kernels.test.ts) pass there, and a CLI train + eval gives Dawn's losses. Both
 * runtimes get the SwiftShader Vulkan driver where it is installed, so they differ only in their WebGPU. Deno comes
 * from the `deno` devDependency (its binary ships inside the npm package: no download at run time).
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { swiftshaderIcd } from '../src/gpu/node-device';
import { cliWithTokenRows, jsonLines, lastJson } from './helpers/cli';

const DENO = 'node_modules/.bin/deno';
const MODEL = 'test/fixtures/models/tiny-random-LlamaForCausalLM_hf';

/** `deno --version`'s first line, or why Deno cannot run here. */
function denoVersion(): { version: string } | { missing: string } {
  try {
    return { version: execFileSync(DENO, ['--version'], { encoding: 'utf8' }).split('\n')[0] };
  } catch (e) {
    return { missing: `${DENO} does not run (${(e as Error).message.split('\n')[0]}): run npm install` };
  }
}

interface Run {
  stdout: string;
  stderr: string;
  code: number;
}

/** The child's environment: this one without the outer vitest's markers, on SwiftShader where it is installed. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'TEST'));
  const icd = swiftshaderIcd();
  return { ...env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', ...(icd ? { VK_ICD_FILENAMES: icd } : {}), ...extra };
}

function spawn(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { env, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      resolve({ stdout, stderr, code: error ? ((error as { code?: number }).code ?? 1) : 0 });
    });
  });
}

/** Deno with its own WebGPU (wgpu); LORA_STUDIO_WEBGPU=builtin fails the run rather than fall back to Dawn. */
const underDeno = (args: string[]) =>
  spawn(DENO, ['run', '-A', '--cached-only', ...args], childEnv({ LORA_STUDIO_WEBGPU: 'builtin' }));
const underNode = (args: string[]) => spawn(process.execPath, args, childEnv({ LORA_STUDIO_WEBGPU: 'dawn' }));

/** |a - b| within rel of |b|, plus 1e-6 for the CLI's six printed decimals. */
function expectNear(a: number, b: number, what: string, rel = 2e-5): void {
  expect(Math.abs(a - b), `${what}: wgpu ${a}, Dawn ${b}`).toBeLessThanOrEqual(rel * Math.abs(b) + 1e-6);
}

const deno = denoVersion();
const title = 'version' in deno ? deno.version : `skipped: ${deno.missing}`;
if ('missing' in deno) console.warn(`test/deno.test.ts: ${deno.missing}`);

describe.skipIf('missing' in deno)(`under Deno (${title}): WebGPU on wgpu`, () => {
  it('passes the kernel reference checks', async () => {
    const report = join(await mkdtemp(join(tmpdir(), 'lora-deno-')), 'report.json');
    const r = await underDeno([
      'node_modules/vitest/vitest.mjs',
      'run',
      'test/wgpu-kernels.test.ts',
      '--maxWorkers=1',
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
    ]);
    const output = `${r.stdout}\n${r.stderr}`;
    expect(r.code, output).toBe(0);
    // The checks ran on Deno's WebGPU, not on Dawn.
    expect(output).toMatch(/kernel checks on WebGPU: wgpu \(Deno /);
    const { numTotalTests, numPassedTests, numFailedTests } = JSON.parse(await readFile(report, 'utf8'));
    expect(numFailedTests, output).toBe(0);
    expect(numPassedTests).toBe(numTotalTests);
    expect(numTotalTests).toBeGreaterThanOrEqual(15);
  });

  it('trains and evaluates through the CLI to the losses Dawn gives under Node', async () => {
    const { dir, data } = await cliWithTokenRows('lora-deno-cli-');
    const train = (out: string) =>
      `dist-cli/cli.mjs train --model ${MODEL} --data ${data} --method lora --rank 2 --alpha 4 --steps 3 --batch 2 --seq-len 8 --lr 0.05 --seed 3 --val-fraction 0 --out ${out}`.split(
        ' ',
      );
    const [wgpu, dawn] = await Promise.all([underDeno(train(join(dir, 'wgpu'))), underNode(train(join(dir, 'dawn')))]);
    expect(wgpu.code, wgpu.stderr).toBe(0);
    expect(dawn.code, dawn.stderr).toBe(0);
    expect(wgpu.stderr).toMatch(/WebGPU: wgpu \(Deno /);
    expect(dawn.stderr).toMatch(/WebGPU: dawn/);
    expect(wgpu.stderr).not.toMatch(/WebGPU error/);
    const steps = (r: Run) => jsonLines(r.stdout).filter((l) => 'step' in l && 'loss' in l);
    const [w, d] = [steps(wgpu), steps(dawn)];
    expect(w.map((s) => s.step)).toEqual([0, 1, 2]);
    expect(d.map((s) => s.step)).toEqual([0, 1, 2]);
    w.forEach((s, i) => {
      // A dispatch that wgpu rejects leaves its output at zero: the loss would read 0 (gfx-rs/wgpu#7359).
      expect(s.loss).toBeGreaterThan(1);
      expectNear(s.loss, d[i].loss, `step ${i} loss`);
      expectNear(s.grad_norm, d[i].grad_norm, `step ${i} grad_norm`);
    });

    const evaluate = (adapter: string) =>
      `dist-cli/cli.mjs eval --model ${MODEL} --adapter ${adapter} --data ${data} --seq-len 8`.split(' ');
    const [we, de] = await Promise.all([
      underDeno(evaluate(join(dir, 'wgpu'))),
      underNode(evaluate(join(dir, 'dawn'))),
    ]);
    expect(we.code, we.stderr).toBe(0);
    expect(de.code, de.stderr).toBe(0);
    const [wl, dl] = [lastJson(we.stdout), lastJson(de.stdout)];
    expect(wl.tokens).toBe(dl.tokens);
    expectNear(wl.loss, dl.loss, 'eval loss');
    console.log(
      `losses, wgpu (Deno) vs Dawn (Node): train ${w.map((s, i) => `${s.loss}/${d[i].loss}`).join(', ')}; eval ${wl.loss}/${dl.loss}`,
    );
  });
});

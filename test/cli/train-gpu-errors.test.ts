/**
 * A WebGPU validation error during train or eval makes the CLI fail (exit 1, the step or batch and the GPU's message
 * on stderr, no "done" line) instead of printing a stale loss and success. The error is provoked from outside the
 * CLI: a module preloaded with `node --import` makes the command encoder with a given label invalid (an 8-byte copy
 * into a 4-byte buffer), on the same Dawn classes the bundle uses.
 */
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliWithTokenRows, jsonLines, lastJson, run } from '../helpers/cli';

const MODEL = 'test/fixtures/models/tiny-gpt2-vocab100_hf';

const FAULT_MODULE = (webgpu: string) => `
import { globals } from ${JSON.stringify(webgpu)};
const create = globals.GPUDevice.prototype.createCommandEncoder;
let seen = 0;
globals.GPUDevice.prototype.createCommandEncoder = function (descriptor) {
  const encoder = create.call(this, descriptor);
  if (descriptor?.label === process.env.FAULT_ENCODER && ++seen === Number(process.env.FAULT_NTH ?? 1)) {
    const src = this.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_SRC, label: 'fault.src' });
    const dst = this.createBuffer({ size: 4, usage: GPUBufferUsage.COPY_DST, label: 'fault.dst' });
    encoder.copyBufferToBuffer(src, 0, dst, 0, 8);
  }
  return encoder;
};
`;

describe('cli: GPU errors fail the command', () => {
  let dir: string;
  let data: string;
  let fault: string;
  beforeAll(async () => {
    ({ dir, data } = await cliWithTokenRows('lora-cli-gpu-errors-'));
    fault = join(dir, 'fault.mjs');
    await writeFile(fault, FAULT_MODULE(pathToFileURL(resolve('node_modules/webgpu/index.js')).href));
  });

  /** The CLI with the fault preloaded: the `nth` encoder labelled `encoder` is invalid. */
  async function faulty(encoder: string, nth: number, args: string[]) {
    try {
      const r = await run('node', ['--import', fault, 'dist-cli/cli.mjs', ...args], {
        env: { ...process.env, FAULT_ENCODER: encoder, FAULT_NTH: String(nth) },
      });
      return { ...r, code: 0 };
    } catch (e) {
      return e as { stdout: string; stderr: string; code: number };
    }
  }

  it('train: an invalid step fails naming the step and the WebGPU message, without "done"; its checkpoint resumes', async () => {
    const args = [
      'train',
      '--model',
      MODEL,
      '--data',
      data,
      '--rank',
      '2',
      '--steps',
      '6',
      '--seq-len',
      '8',
      '--val-fraction',
      '0',
      '--out',
      join(dir, 'adapter'),
      '--checkpoint-every',
      '1',
    ];
    const r = await faulty('step 2', 1, args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /error: Training step 2: the GPU reported 2 errors; first: Copy range \(offset: 0, size: 8\) does not fit in \[Buffer "fault\.dst"\] size \(4\)/,
    );
    const checkpointDir = join(dir, 'adapter', 'checkpoint');
    expect(r.stderr).toContain(
      `The checkpoint after step 2 is in ${checkpointDir}: run the same command with --resume ${checkpointDir}`,
    );
    const lines = jsonLines(r.stdout);
    expect(lines.filter((l) => 'loss' in l).map((l) => l.step)).toEqual([0, 1]);
    expect(lines.some((l) => l.done)).toBe(false);
    // Where the GPU failed, the run continues from its last checkpoint.
    const resumed = await cli([...args, '--resume', checkpointDir]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(
      jsonLines(resumed.stdout)
        .filter((l) => 'loss' in l)
        .map((l) => l.step),
    ).toEqual([2, 3, 4, 5]);
    expect(lastJson(resumed.stdout)).toMatchObject({ done: true, steps: 6, resumed_from_step: 2 });
  });

  it('eval: an invalid pass fails naming the batch', async () => {
    const r = await faulty('forward', 2, ['eval', '--model', MODEL, '--data', data, '--seq-len', '10', '--batch', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: Evaluation batch 2: the GPU reported 2 errors; first: Copy range/);
    expect(jsonLines(r.stdout)).toEqual([]);
  });
});

/** The CLI contract other tools depend on: eval's last stdout line, train's per-step JSON lines and adapter folder, generate. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliWithTokenRows, lastJson } from '../helpers/cli';

const MODEL = 'test/fixtures/models/tiny-gpt2-vocab100_hf';

describe('cli', () => {
  let dir: string;
  let data: string;
  beforeAll(async () => {
    ({ dir, data } = await cliWithTokenRows('lora-cli-'));
  });

  it('eval prints {"loss", "tokens"} as its last line, counting supervised next-token positions (truncating at --seq-len)', async () => {
    const r = await cli(['eval', '--model', MODEL, '--data', data, '--seq-len', '10']);
    expect(r.code, r.stderr).toBe(0);
    const res = lastJson(r.stdout);
    // Supervised targets: row 1: 7 (8 tokens); row 2: 3 (labels at 3..5); row 3 truncated to 10 tokens: 9; row 4: 3.
    expect(res.tokens).toBe(7 + 3 + 9 + 3);
    expect(res.loss).toBeGreaterThan(0);
    expect(Math.abs(res.loss - Math.log(100))).toBeLessThan(1.5);
    // --exact-match: the one row with a prompt (labels start at position 3) is greedy-answered; loss and tokens stay.
    const em = lastJson(
      (await cli(['eval', '--model', MODEL, '--data', data, '--seq-len', '10', '--exact-match', '4'])).stdout,
    );
    expect(em).toMatchObject({ loss: res.loss, tokens: res.tokens, exact_match_examples: 1 });
    expect([0, 1]).toContain(em.exact_match);
    // --weights bf16 keeps the frozen matrices 16-bit on the GPU: nearly the same loss, said on stderr.
    const bf16 = await cli(['eval', '--model', MODEL, '--data', data, '--seq-len', '10', '--weights', 'bf16']);
    expect(bf16.code, bf16.stderr).toBe(0);
    expect(bf16.stderr).toMatch(/weights bf16 \(/);
    expect(Math.abs(lastJson(bf16.stdout).loss - res.loss) / res.loss).toBeLessThan(0.02);
  });

  it('train prints a JSON line per step and writes a PEFT adapter that eval and generate load', async () => {
    const out = join(dir, 'adapter');
    const r = await cli([
      'train',
      '--model',
      MODEL,
      '--data',
      data,
      '--method',
      'lora',
      '--rank',
      '2',
      '--alpha',
      '4',
      '--steps',
      '3',
      '--batch',
      '2',
      '--seq-len',
      '8',
      '--lr',
      '0.05',
      '--seed',
      '3',
      '--val-fraction',
      '0',
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const steps = lines.filter((l) => 'loss' in l && 'step' in l);
    expect(steps.map((s) => s.step)).toEqual([0, 1, 2]);
    for (const s of steps) for (const k of ['loss', 'lr', 'tokens_per_s']) expect(typeof s[k]).toBe('number');
    expect(lines.at(-1).buffers_created_after_step0).toBe(0);
    const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({
      peft_type: 'LORA',
      r: 2,
      lora_alpha: 4,
      fan_in_fan_out: true,
      target_modules: ['transformer.h.0.attn.c_attn'],
    });
    const st = await readFile(join(out, 'adapter_model.safetensors'));
    const headerLen = Number(st.readBigUInt64LE(0));
    expect(headerLen % 8).toBe(0);
    const header = JSON.parse(st.subarray(8, 8 + headerLen).toString('utf8'));
    expect(header['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight'].shape).toEqual([2, 16]);
    expect(header['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight'].shape).toEqual([48, 2]);

    const base = lastJson((await cli(['eval', '--model', MODEL, '--data', data])).stdout);
    const adapted = await cli(['eval', '--model', MODEL, '--data', data, '--adapter', out]);
    expect(adapted.code, adapted.stderr).toBe(0);
    expect(lastJson(adapted.stdout).loss).toBeLessThan(base.loss);

    const gen = await cli(['generate', '--model', MODEL, '--adapter', out, '--prompt', 'ab', '--max-new-tokens', '5']);
    expect(gen.code, gen.stderr).toBe(0);
    expect(gen.stdout.length).toBeGreaterThan(0);
  });

  it('train --method gora | gralora | gelora writes allocation.json and an adapter that eval loads', async () => {
    const common = [
      '--model',
      MODEL,
      '--data',
      data,
      '--rank',
      '4',
      '--alpha',
      '8',
      '--targets',
      'all-linear',
      '--steps',
      '3',
      '--batch',
      '2',
      '--seq-len',
      '8',
      '--lr',
      '0.05',
      '--seed',
      '3',
      '--val-fraction',
      '0',
    ];
    const cases: [string, string[], (config: Record<string, unknown>, allocation: Record<string, unknown>) => void][] =
      [
        [
          'gora',
          ['--gora-steps', '2', '--rank-min', '2', '--rank-max', '8'],
          (config, allocation) => {
            expect(config.peft_type).toBe('LORA');
            expect(allocation.allocation).toBe('gora');
            expect((allocation.gora as { steps: number }).steps).toBe(2);
            const modules = allocation.modules as { path: string; rank: number; importance: number }[];
            expect(modules.map((m) => m.path).sort()).toEqual((config.target_modules as string[]).slice().sort());
            for (const m of modules) expect(m.importance).toBeGreaterThan(0);
          },
        ],
        [
          'gralora',
          ['--gralora-k', '2', '--hybrid-r', '2'],
          (config, allocation) => {
            expect(config).toMatchObject({
              peft_type: 'GRALORA',
              r: 4,
              gralora_k: 2,
              hybrid_r: 2,
              alpha: 8,
              fan_in_fan_out: true,
            });
            expect((allocation.modules as { k: number }[]).every((m) => m.k === 2)).toBe(true);
          },
        ],
        [
          'gelora',
          ['--gelora-samples', '16'],
          (config, allocation) => {
            expect(config.peft_type).toBe('LORA');
            const gelora = allocation.gelora as { dims: number[]; rawRanks: number[] };
            expect(gelora.dims).toHaveLength(2); // one block: d_0 and d_1
            expect(gelora.rawRanks).toHaveLength(1);
          },
        ],
      ];
    for (const [method, extra, check] of cases) {
      const out = join(dir, `adapter-${method}`);
      const r = await cli(['train', ...common, '--method', method, ...extra, '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson(r.stdout).buffers_created_after_step0).toBe(0);
      const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
      const allocation = JSON.parse(await readFile(join(out, 'allocation.json'), 'utf8'));
      expect(allocation.method).toBe(method);
      expect(allocation.trainableParameters).toBe(lastJson(r.stdout).trainable_parameters);
      check(config, allocation);
      const ev = await cli(['eval', '--model', MODEL, '--data', data, '--adapter', out]);
      expect(ev.code, ev.stderr).toBe(0);
      expect(ev.stderr).toContain(method === 'gralora' ? 'GraLoRA modules' : 'LoRA modules');
    }
  });

  it("train --method dora | pissa | loraga | adalora writes each one's PEFT folder and analysis, which eval loads", async () => {
    const common = ['--model', MODEL, '--data', data, '--rank', '2', '--alpha', '4', '--targets', 'all-linear'];
    const loop = [
      '--steps',
      '4',
      '--batch',
      '2',
      '--seq-len',
      '8',
      '--lr',
      '0.05',
      '--seed',
      '3',
      '--val-fraction',
      '0',
    ];
    type Check = (config: Record<string, unknown>, allocation: Record<string, unknown>, summary: string) => void;
    const modules = (a: Record<string, unknown>) => a.modules as { rank: number; singularValues?: number[] }[];
    const cases: [string, string[], Check][] = [
      [
        'dora',
        [],
        (config, allocation, summary) => {
          expect(config).toMatchObject({ peft_type: 'LORA', use_dora: true, r: 2 });
          const timeline = allocation.timeline as { step: number; magnitudeDrift: number[] }[];
          expect(timeline.map((t) => t.step)).toEqual([0, 4]);
          expect(Math.max(...timeline[0].magnitudeDrift)).toBeLessThan(1e-6);
          expect(timeline[1].magnitudeDrift.some((d) => d > 0)).toBe(true);
          expect(summary).toContain('DoRA modules');
        },
      ],
      [
        'pissa',
        ['--pissa-niter', '2'],
        (config, allocation, summary) => {
          // PEFT's conversion for the original base: rank 2r, alpha 2α.
          expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, init_lora_weights: true });
          expect(allocation.svd).toBe('niter_2');
          expect(modules(allocation).every((m) => m.singularValues!.length === 2)).toBe(true);
          expect(summary).toContain('LoRA modules');
        },
      ],
      [
        'pissa',
        ['--export-raw'],
        (config, allocation, summary) => {
          expect(config).toMatchObject({ peft_type: 'LORA', r: 2, lora_alpha: 4, init_lora_weights: 'pissa' });
          expect(allocation.svd).toBe('exact');
          expect(summary).toContain('PiSSA modules');
        },
      ],
      [
        'loraga',
        ['--loraga-batches', '2', '--direction', 'ArBr', '--scale', 'unit'],
        (config, allocation) => {
          expect(config).toMatchObject({ peft_type: 'LORA', r: 4, init_lora_weights: true });
          expect(allocation.init).toBe('loraga');
        },
      ],
      [
        'adalora',
        ['--init-r', '3', '--tfinal', '1'],
        (config, allocation, summary) => {
          expect(config).toMatchObject({ peft_type: 'ADALORA', init_r: 3, target_r: 2, total_step: 4 });
          const timeline = allocation.timeline as { step: number; ranks: number[] }[];
          expect(timeline.map((t) => t.step)).toEqual([0, 4]);
          const kept = timeline[1].ranks;
          expect(kept.reduce((a, b) => a + b, 0)).toBe(2 * kept.length);
          expect(modules(allocation).map((m) => m.rank)).toEqual(kept);
          expect(summary).toContain('AdaLoRA modules');
        },
      ],
    ];
    for (const [i, [method, extra, check]] of cases.entries()) {
      const out = join(dir, `baseline-${i}-${method}`);
      const r = await cli(['train', ...common, ...loop, '--method', method, ...extra, '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson(r.stdout).buffers_created_after_step0).toBe(0);
      const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
      const allocation = JSON.parse(await readFile(join(out, 'allocation.json'), 'utf8'));
      expect(allocation.method).toBe(method);
      const ev = await cli(['eval', '--model', MODEL, '--data', data, '--adapter', out]);
      expect(ev.code, ev.stderr).toBe(0);
      check(config, allocation, ev.stderr);
    }
  });

  it('bad input gets a specific error and exit code 1, never a crash', async () => {
    const missing = await cli(['eval', '--model', 'no/such/dir', '--data', data]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no/such/dir');
    const badOpt = await cli(['train', '--model', MODEL, '--data', data, '--rank', '0', '--out', join(dir, 'x')]);
    expect(badOpt.code).toBe(1);
    expect(badOpt.stderr).toContain('--rank must be an integer >= 1');
    const badTarget = await cli([
      'train',
      '--model',
      MODEL,
      '--data',
      data,
      '--targets',
      'q_proj',
      '--out',
      join(dir, 'y'),
    ]);
    expect(badTarget.stderr).toContain('Target module "q_proj" does not exist');
    const bounds = await cli([
      'train',
      '--model',
      MODEL,
      '--data',
      data,
      '--method',
      'gora',
      '--rank-min',
      '9',
      '--rank-max',
      '3',
      '--out',
      join(dir, 'z'),
    ]);
    expect(bounds.code).toBe(1);
    expect(bounds.stderr).toContain('--rank-min (9) is larger than --rank-max (3)');
    const k = await cli([
      'train',
      '--model',
      MODEL,
      '--data',
      data,
      '--method',
      'gralora',
      '--rank',
      '6',
      '--gralora-k',
      '4',
      '--out',
      join(dir, 'w'),
    ]);
    expect(k.stderr).toContain('--rank 6 must be divisible by --gralora-k 4');
    const unknown = await cli(['eval', '--model', MODEL, '--data', data, '--sequence', '3']);
    expect(unknown.stderr).toContain('unknown option --sequence');
    const storage = await cli(['eval', '--model', MODEL, '--data', data, '--weights', 'f8']);
    expect(storage.stderr).toContain('--weights must be one of auto, f32, bf16, f16, nf4, int8 (got "f8")');
    const full = await cli([
      'train',
      '--model',
      MODEL,
      '--data',
      data,
      '--method',
      'full',
      '--weights',
      'bf16',
      '--out',
      join(dir, 'v'),
    ]);
    expect(full.stderr).toContain('full fine-tuning trains the base weights, which needs them in f32');
    const section = await cli(['bench', '--sections', 'matmul,speed']);
    expect(section.code).toBe(1);
    expect(section.stderr).toContain(
      'bench: unknown section "speed" (choose from matmul, train, jax-lora, methods, memory, profile)',
    );
    const method = await cli(['bench', '--sections', 'methods', '--methods', 'lora,vera']);
    expect(method.code).toBe(1);
    expect(method.stderr).toContain(
      'bench: unknown method "vera" (choose from lora, gora, gralora, gelora, dora, pissa, loraga, adalora, full)',
    );
  });
});

/** Run configurations: the default for a new run and the demo's pre-configured comparison (experiments: experiment-presets.ts). */
import type { ModelCard, RunConfig } from '../worker/protocol';
import { methodName, methodParams } from './methods';

export function newRunId(): string {
  return crypto.randomUUID();
}

/** A name that says what the run is: "LoRA q,v r=8", "GoRA all-linear r_ref=8", "GraLoRA all-linear r=8 k=2". */
export function describeRun(
  c: Pick<RunConfig, 'method' | 'rank' | 'targets' | 'extras'>,
  family?: ModelCard['family'],
): string {
  if (c.method === 'full') return 'Full fine-tune';
  const targets = c.targets === 'all-linear' ? 'all-linear' : family === 'gpt2' ? 'c_attn' : 'q,v';
  return [methodName(c), targets, methodParams(c)].join(' ');
}

export function defaultRun(card: ModelCard | null, previous?: RunConfig): RunConfig {
  const base: RunConfig = previous
    ? { ...previous, seed: previous.seed + 1 }
    : {
        id: '',
        name: '',
        method: 'lora',
        rank: 8,
        alpha: 16,
        targets: 'qv',
        lr: 2e-4,
        steps: 200,
        batch: 4,
        seq: Math.min(256, card?.maxPositions ?? 256),
        warmupSteps: 10,
        valExamples: 100,
        evalEvery: 50,
        seed: 0,
      };
  const config = { ...base, id: newRunId() };
  config.name = describeRun(config, card?.family);
  return config;
}

/**
 * The demo: LoRA, GoRA, GraLoRA and GeLoRA at the budget of a rank-8 LoRA on every linear layer of
 * stories260K, trained on Shakespeare with the same steps, learning rate, batch, sequence length and seed, so
 * the curves compare the methods only. GoRA and GeLoRA keep their preparation short (8 gradient batches,
 * 512 hidden-state samples) so the whole demo takes a few minutes on a laptop GPU.
 */
export function demoRuns(): RunConfig[] {
  const common = {
    rank: 8,
    alpha: 16,
    targets: 'all-linear' as const,
    lr: 3e-3,
    steps: 80,
    batch: 8,
    seq: 64,
    warmupSteps: 5,
    valExamples: 64,
    evalEvery: 20,
    seed: 0,
  };
  const runs: Omit<RunConfig, 'id' | 'name'>[] = [
    { ...common, method: 'lora' },
    { ...common, method: 'gora', extras: { goraSteps: 8, rankMin: 2, rankMax: 16 } },
    { ...common, method: 'gralora', extras: { graloraK: 2 } },
    { ...common, method: 'gelora', extras: { geloraSamples: 512, geloraBudget: 'fit' } },
  ];
  return runs.map((r) => ({ ...r, id: newRunId(), name: describeRun(r, 'llama') }));
}

export const DEMO_PROMPT = 'Once upon a time';

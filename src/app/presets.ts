/** Run configurations: the default for a new run and the demo's three pre-configured runs. */
import type { ModelCard, RunConfig } from '../worker/protocol';

export function newRunId(): string {
  return crypto.randomUUID();
}

/** A name that says what the run is: "LoRA q,v r=8". */
export function describeRun(c: Pick<RunConfig, 'method' | 'rank' | 'targets'>, family?: ModelCard['family']): string {
  if (c.method === 'full') return 'Full fine-tune';
  const method = c.method === 'rslora' ? 'rsLoRA' : 'LoRA';
  const targets = c.targets === 'all-linear' ? 'all-linear' : family === 'gpt2' ? 'c_attn' : 'q,v';
  return `${method} ${targets} r=${c.rank}`;
}

export function defaultRun(card: ModelCard | null, previous?: RunConfig): RunConfig {
  const base: RunConfig = previous
    ? { ...previous, seed: previous.seed + 1 }
    : {
        id: '', name: '', method: 'lora', rank: 8, alpha: 16, targets: 'qv', lr: 2e-4, steps: 200, batch: 4,
        seq: Math.min(256, card?.maxPositions ?? 256), warmupSteps: 10, valExamples: 100, evalEvery: 50, seed: 0,
      };
  const config = { ...base, id: newRunId() };
  config.name = describeRun(config, card?.family);
  return config;
}

/**
 * The demo: three runs on stories260K + Shakespeare that finish in a minute or two on a laptop GPU.
 * Same data, steps and learning rate, so the curves compare structure and scaling only.
 */
export function demoRuns(): RunConfig[] {
  const common = { lr: 3e-3, steps: 60, batch: 8, seq: 64, warmupSteps: 5, valExamples: 64, evalEvery: 15, seed: 0 };
  const runs: Omit<RunConfig, 'id' | 'name'>[] = [
    { ...common, method: 'lora', rank: 8, alpha: 16, targets: 'qv' },
    { ...common, method: 'lora', rank: 4, alpha: 8, targets: 'all-linear' },
    { ...common, method: 'rslora', rank: 8, alpha: 8, targets: 'qv' },
  ];
  return runs.map((r) => ({ ...r, id: newRunId(), name: describeRun(r, 'llama') }));
}

export const DEMO_PROMPT = 'Once upon a time';

/** Learning-rate schedule: linear warmup, then cosine decay to minRatio * peak. */
export interface ScheduleOptions {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  minRatio: number;
}

export function learningRate(step: number, o: ScheduleOptions): number {
  if (o.warmupSteps > 0 && step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const decaySteps = Math.max(1, o.totalSteps - o.warmupSteps);
  const progress = Math.min(1, (step - o.warmupSteps) / decaySteps);
  const cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
  return o.lr * (o.minRatio + (1 - o.minRatio) * cosine);
}

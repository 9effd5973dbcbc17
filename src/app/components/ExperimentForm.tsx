/**
 * An experiment draft's definition: the split, the settings every run shares, the grid (rates and seeds), the
 * baseline and budget, the method configurations, then the budget table, the run count and an estimate.
 */
import { defaultSeqLen } from '../../engine/run-spec';
import { useContext, useMemo, type ReactNode } from 'react';
import { defaultLrGrid } from '../../experiment/plan';
import type { Experiment, ExperimentMethod } from '../../experiment/types';
import { matchBudget } from '../../experiment/budget';
import type { ModelCard } from '../../worker/protocol';
import { definitionProblem } from '../experiment-actions';
import { runCount, type LrMode } from '../experiment-record';
import { formatDuration, formatCount } from '../format';
import { useStudio } from '../store';
import { ExperimentBudgetTable } from './ExperimentBudget';
import { NumberListField } from './ExperimentFields';
import { ExperimentMethodRow } from './ExperimentMethodRow';
import { FieldValidity, NumberField, Segmented, SelectField } from './Fields';
import { TRUNCATION_HINT, TRUNCATION_OPTIONS } from './RunData';
import { effectiveBatchNote } from './RunForm';

export function ExperimentForm(props: {
  experiment: Experiment;
  lrMode: LrMode;
  card: ModelCard | null;
  set(update: (e: Experiment) => Experiment): void;
  setLrMode(mode: LrMode): void;
}) {
  const { experiment: e, card, set } = props;
  const setTrain = (patch: Partial<Experiment['train']>) => set((x) => ({ ...x, train: { ...x.train, ...patch } }));
  const setSplit = (patch: Partial<Experiment['split']>) => set((x) => ({ ...x, split: { ...x.split, ...patch } }));
  const setMethod = (i: number, m: ExperimentMethod) =>
    set((x) => {
      const old = x.methods[i];
      // A renamed baseline stays the baseline.
      const baseline = x.baseline === old.name ? m.name : x.baseline;
      return { ...x, baseline, methods: x.methods.map((y, j) => (j === i ? m : y)) };
    });
  const removeMethod = (i: number) =>
    set((x) => {
      const methods = x.methods.filter((_, j) => j !== i);
      const baseline = methods.some((m) => m.name === x.baseline) ? x.baseline : (methods[0]?.name ?? '');
      return { ...x, methods, baseline };
    });
  const shared = props.lrMode === 'shared';
  const matched = useMemo(() => {
    if (!card) return null;
    try {
      return matchBudget(card.spec, e);
    } catch {
      return null;
    }
  }, [card, e]);
  const problem = useMemo(() => definitionProblem(e), [e]);

  return (
    <div className="experiment-form" data-testid="experiment-form">
      <section className="experiment-section" aria-label="Data split">
        <h4>Split</h4>
        <div className="run-form">
          <NumberField
            label="Val. fraction"
            value={e.split.validation}
            onChange={(validation) => setSplit({ validation })}
            hint="Held out to choose each configuration's learning rate (never the test split)"
          />
          <NumberField
            label="Test fraction"
            value={e.split.test}
            onChange={(test) => setSplit({ test })}
            hint="Held out for the reported test loss"
          />
          <NumberField
            label="Split seed"
            value={e.split.seed}
            integer
            onChange={(seed) => setSplit({ seed })}
            hint="The split depends on this seed alone: every run sees the same three parts"
          />
        </div>
      </section>

      <section className="experiment-section" aria-label="Training settings">
        <h4>Every run</h4>
        <div className="run-form">
          <NumberField label="Steps" value={e.train.steps} integer onChange={(steps) => setTrain({ steps })} />
          <NumberField
            label="Batch"
            value={e.train.batch}
            integer
            onChange={(batch) => setTrain({ batch })}
            hint="Sequences per micro-batch (one forward and backward pass: what the GPU memory holds)"
          />
          <NumberField
            wide
            label="Gradient accumulation"
            value={e.train.gradAccum}
            integer
            onChange={(gradAccum) => setTrain({ gradAccum })}
            note={effectiveBatchNote(e.train.batch, e.train.gradAccum)}
            hint="Micro-batches per optimizer step (train.grad_accum): each step trains on Batch × this many sequences, exactly as one batch of that size"
          />
          <NumberField
            label="Seq. length"
            value={e.train.seqLen ?? defaultSeqLen(card?.maxPositions)}
            integer
            onChange={(seqLen) => setTrain({ seqLen })}
            hint="Tokens per sequence"
          />
          <NumberField
            label="Warmup"
            value={e.train.warmup}
            integer
            onChange={(warmup) => setTrain({ warmup })}
            hint="Linear warmup steps"
          />
          <SelectField
            wide
            label="Truncation"
            value={e.train.truncation}
            options={TRUNCATION_OPTIONS}
            onChange={(truncation) => setTrain({ truncation })}
            hint={TRUNCATION_HINT}
          />
          <NumberField
            label="Eval every"
            value={e.train.evalEvery}
            integer
            onChange={(evalEvery) => setTrain({ evalEvery })}
            hint="Validation-loss points on each run's curve every N steps (0 = none; every run's final validation loss is measured anyway)"
          />
        </div>
      </section>

      <section className="experiment-section" aria-label="Grid">
        <h4>Grid and comparison</h4>
        <div className="run-form">
          <div className="field wide">
            <span className="field-label">Learning rates</span>
            <Segmented
              label="Learning-rate grid"
              value={props.lrMode}
              options={[
                ['per-config', 'Per configuration'],
                ['shared', 'Shared'],
              ]}
              onChange={props.setLrMode}
            />
          </div>
          {shared && (
            <NumberListField
              label="Shared learning rates"
              value={e.lrs}
              onChange={(lrs) => set((x) => ({ ...x, lrs, methods: x.methods.map((m) => ({ ...m, lrs })) }))}
              hint="Peak rates every configuration tries, comma-separated; each keeps the one with the lowest validation loss"
            />
          )}
          <NumberListField
            label="Seeds"
            value={e.seeds}
            integer
            onChange={(seeds) => set((x) => ({ ...x, seeds, methods: x.methods.map((m) => ({ ...m, seeds })) }))}
            hint="Each seed is a repetition (initialization and batch order); the intervals are over seeds"
          />
          <SelectField
            wide
            label="Baseline"
            value={e.baseline}
            options={e.methods.map((m) => [m.name, m.name] as [string, string])}
            onChange={(baseline) => set((x) => ({ ...x, baseline }))}
            hint="Every other configuration is compared with it, seed by seed"
          />
          <NumberField
            label="Reference rank"
            value={e.referenceRank}
            integer
            onChange={(referenceRank) =>
              set((x) => ({
                ...x,
                referenceRank,
                methods: x.methods.map((m) => (m.rankMatched ? { ...m, rank: referenceRank } : m)),
              }))
            }
            hint="The budget: a LoRA of this rank on the baseline's targets; configurations to match get the closest rank"
          />
          <NumberField
            label="Exact match"
            value={e.exactMatch}
            integer
            onChange={(exactMatch) => set((x) => ({ ...x, exactMatch }))}
            hint="Test answers greedy-decoded per run for the exact-match column (0 = off; plain text has none)"
          />
        </div>
      </section>

      <section className="experiment-section" aria-label="Method configurations">
        <div className="experiment-section-head">
          <h4>Configurations</h4>
          <button
            className="btn btn-sm"
            onClick={() => set((x) => ({ ...x, methods: [...x.methods, newConfig(x, shared)] }))}
          >
            + Add configuration
          </button>
        </div>
        {e.methods.map((m, i) => (
          <PrefixedValidity key={i} prefix={m.name || `configuration ${i + 1}`}>
            <ExperimentMethodRow
              config={m}
              matchedRank={m.rankMatched ? (matched?.methods[i]?.rank ?? null) : null}
              family={card?.family}
              ownRates={!shared}
              canRemove={e.methods.length > 1}
              set={(next) => setMethod(i, next)}
              remove={() => removeMethod(i)}
            />
          </PrefixedValidity>
        ))}
      </section>

      {card && <ExperimentBudgetTable experiment={e} spec={card.spec} />}
      <PlanLine experiment={e} card={card} />
      {problem && (
        <div className="run-message error experiment-problems" role="alert" data-testid="experiment-problems">
          {problem}
        </div>
      )}
    </div>
  );
}

/** A new configuration: a LoRA under a name not taken yet, on the shared grid or LoRA's own. */
function newConfig(e: Experiment, shared: boolean): ExperimentMethod {
  const taken = new Set(e.methods.map((m) => m.name));
  let i = e.methods.length + 1;
  while (taken.has(`config${i}`)) i++;
  return {
    name: `config${i}`,
    method: 'lora',
    rank: e.referenceRank,
    rankMatched: false,
    alpha: 16,
    targets: e.methods[0]?.targets ?? [],
    options: {},
    lrs: shared ? e.lrs : defaultLrGrid('lora'),
    seeds: e.seeds,
  };
}

/** Field validity reported under "<configuration>: <field>", so two configurations' Alpha fields stay apart. */
function PrefixedValidity(props: { prefix: string; children: ReactNode }) {
  const report = useContext(FieldValidity);
  const prefixed = useMemo(
    () => (report ? (field: string, valid: boolean) => report(`${props.prefix}: ${field}`, valid) : null),
    [report, props.prefix],
  );
  return <FieldValidity.Provider value={prefixed}>{props.children}</FieldValidity.Provider>;
}

/** "36 runs (4 configurations x 3 rates x 3 seeds)", the tokens they train on, and a time estimate when one is known. */
function PlanLine({ experiment: e, card }: { experiment: Experiment; card: ModelCard | null }) {
  const runs = runCount(e);
  const seq = e.train.seqLen ?? defaultSeqLen(card?.maxPositions);
  const tokens = runs * e.train.steps * e.train.batch * e.train.gradAccum * seq;
  const speed = useMeasuredSpeed(card?.key ?? null);
  const rates = [...new Set(e.methods.map((m) => (m.lrs ?? e.lrs).length))];
  const seeds = [...new Set(e.methods.map((m) => (m.seeds ?? e.seeds).length))];
  const shape =
    rates.length === 1 && seeds.length === 1
      ? `${e.methods.length} configuration${e.methods.length === 1 ? '' : 's'} × ${rates[0]} rate${rates[0] === 1 ? '' : 's'} × ${seeds[0]} seed${seeds[0] === 1 ? '' : 's'}`
      : `${e.methods.length} configurations, each with its own grid`;
  return (
    <div className="run-settings experiment-plan" data-testid="experiment-plan">
      <strong data-testid="experiment-run-count">{runs} runs</strong> ({shape}) · {formatCount(tokens)} tokens of
      training
      {speed ? (
        <>
          {' '}
          · ≈ {formatDuration((tokens / speed) * 1000)} of training at the {formatCount(speed)} tokens/s measured on
          this model (evaluations add to it)
        </>
      ) : (
        <> · the time is estimated once a run has measured this GPU's speed on the model</>
      )}
    </div>
  );
}

/** The median training speed (tokens/s) finished runs and experiment runs measured on this model, or null. */
function useMeasuredSpeed(modelKey: string | null): number | null {
  const runs = useStudio((s) => s.runs);
  const experiments = useStudio((s) => s.experiments);
  return useMemo(() => {
    if (!modelKey) return null;
    const speeds = [
      ...Object.values(runs)
        .filter((r) => r.modelKey === modelKey && r.summary && r.summary.tokensPerSecond > 0)
        .map((r) => r.summary!.tokensPerSecond),
      ...Object.values(experiments)
        .filter((x) => x.modelKey === modelKey)
        .flatMap((x) => x.results.filter((r) => r.tokensPerSecond > 0).map((r) => r.tokensPerSecond)),
    ].sort((a, b) => a - b);
    return speeds.length ? speeds[Math.floor(speeds.length / 2)] : null;
  }, [runs, experiments, modelKey]);
}

/**
 * Experiments: methods x learning rates x seeds on the loaded model and dataset, with a fixed train/validation/test
 * split, each method's rate chosen on validation, test loss over seeds with 95% intervals and a paired comparison
 * with a baseline. New drafts, a definition file imported, or the demo's "Compare fairly"; one card each.
 */
import { useRef, useState } from 'react';
import { useStudio } from '../store';
import { ExperimentCard } from './ExperimentCard';
import { Alert, Panel } from './Panel';

export function ExperimentPanel() {
  const order = useStudio((s) => s.experimentOrder);
  const experiments = useStudio((s) => s.experiments);
  const card = useStudio((s) => s.model.card);
  const hasDataset = useStudio((s) => s.dataset.preview !== null);
  const { newExperiment, importExperiment } = useStudio.getState();
  const [importError, setImportError] = useState<string | null>(null);
  const importInput = useRef<HTMLInputElement>(null);

  return (
    <Panel
      id="experiments"
      step={7}
      title="Experiments"
      subtitle="Comparisons you can trust: every method at several learning rates and seeds on one fixed split, each method's rate chosen on validation only, test loss with 95% intervals over seeds, and a paired comparison with a baseline at a matched parameter budget."
      actions={
        <>
          <button
            className="btn"
            onClick={() => {
              setImportError(null);
              newExperiment();
            }}
            data-testid="experiment-new"
          >
            + New experiment
          </button>
          <button className="btn" onClick={() => importInput.current?.click()}>
            Import JSON
          </button>
          <input
            ref={importInput}
            type="file"
            accept=".json,application/json"
            hidden
            aria-label="Import an experiment definition"
            data-testid="experiment-import"
            onChange={async (ev) => {
              const file = ev.target.files?.[0];
              ev.target.value = '';
              if (file) setImportError(importExperiment(await file.text()));
            }}
          />
          <CompareFairlyButton />
        </>
      }
    >
      {(!card || !hasDataset) && (
        <Alert kind="info">
          Load a model and a dataset to run an experiment, or press <em>Compare fairly</em>: LoRA, GoRA, GraLoRA and
          GeLoRA on the demo at one parameter budget, 3 learning rates × 3 seeds each, with a report at the end.
        </Alert>
      )}
      {importError && (
        <Alert kind="error" title="That file is not an experiment the studio can run" testId="experiment-import-error">
          <span className="pre-line">{importError}</span>{' '}
          <button className="link" onClick={() => setImportError(null)}>
            Dismiss
          </button>
        </Alert>
      )}
      {order.length === 0 ? (
        <div className="empty">
          No experiments yet.{' '}
          <button className="link" onClick={() => newExperiment()}>
            Define one
          </button>
          .
        </div>
      ) : (
        <div className="run-list">
          {[...order].reverse().map((id) => (
            <ExperimentCard key={id} record={experiments[id]} card={card} />
          ))}
        </div>
      )}
    </Panel>
  );
}

/** Starts the demo's fair comparison (loading the demo first if needed) and scrolls to it. */
export function CompareFairlyButton({ large = false }: { large?: boolean }) {
  const compareFairly = useStudio((s) => s.compareFairly);
  return (
    <button
      className={`btn btn-primary ${large ? 'btn-lg' : ''}`}
      data-testid={large ? 'hero-compare-fairly' : 'compare-fairly'}
      title="LoRA, GoRA, GraLoRA and GeLoRA on the demo model at a matched budget, 3 learning rates x 3 seeds each"
      onClick={() => {
        compareFairly();
        document.getElementById('experiments')?.scrollIntoView({ behavior: 'smooth' });
      }}
    >
      Compare fairly
    </button>
  );
}

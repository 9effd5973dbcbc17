/**
 * "Reopen <model>" / "Reopen <dataset>" after a reload: one click, one permission prompt, instead of choosing the
 * files again; what went wrong when it cannot; and, where the browser cannot keep files, that they must be chosen.
 */
import { useEffect } from 'react';
import type { Slot } from '../handles';
import { offerLabel, offerMatches, reopenStore, useReopen } from '../reopen';
import type { RunRecord } from '../run-record';
import { useStudio } from '../store';
import { Alert } from './Panel';

const WHAT: Record<Slot, string> = { model: 'model folder', dataset: 'dataset file' };

/** The slot holds nothing and nothing is loading into it: the moment to offer the last session's source. */
function useSlotEmpty(slot: Slot): boolean {
  return useStudio((s) =>
    slot === 'model' ? !s.model.card && !s.model.loading : !s.dataset.preview && !s.dataset.loading,
  );
}

/** The panel's offer (Model, Dataset): shown while the slot is empty; notes about the last pick always. */
export function ReopenOffer({ slot }: { slot: Slot }) {
  const offer = useReopen((s) => s.offers[slot]);
  const busy = useReopen((s) => s.busy === slot);
  const note = useReopen((s) => s.notes[slot]);
  const lost = useReopen((s) => s.lost[slot]);
  const empty = useSlotEmpty(slot);
  // The demo is ours to fetch again: a note about the user's last pick does not concern it.
  const demo = useStudio((s) => (slot === 'model' ? !!s.model.card?.demo : !!s.dataset.preview?.demo));
  useEffect(() => void reopenStore().getState().restore(), []);

  return (
    <>
      {empty && offer && (
        <div className="reopen" data-testid={`reopen-${slot}-offer`}>
          <div className="reopen-text">
            Last session used <strong title={offer.name}>{offerLabel(offer)}</strong>.
            <span className="muted"> The browser asks once to allow reading it again.</span>
          </div>
          <div className="reopen-buttons">
            <ReopenButton slot={slot} label={offerLabel(offer)} busy={busy} primary />
            <button
              className="btn btn-ghost btn-sm"
              data-testid={`reopen-${slot}-forget`}
              onClick={() => void reopenStore().getState().forget(slot)}
              title={`Forget this ${WHAT[slot]}: the next session will not offer it`}
            >
              Forget
            </button>
          </div>
        </div>
      )}
      {empty && lost && !offer && (
        <Alert kind="info" testId={`reopen-${slot}-unsupported`}>
          This browser cannot reopen the last session's {WHAT[slot]} after a reload (it has no File System Access API):
          choose it again. Chrome and Edge reopen it with one click.
        </Alert>
      )}
      {note?.kind === 'problem' && (
        <Alert kind="error" title={`The ${WHAT[slot]} could not be reopened`} testId={`reopen-${slot}-problem`}>
          {note.text}
        </Alert>
      )}
      {note?.kind === 'info' && !demo && (
        <div className="muted small" data-testid={`reopen-${slot}-note`}>
          {note.text}
        </div>
      )}
    </>
  );
}

function ReopenButton(props: { slot: Slot; label: string; busy: boolean; primary?: boolean; testId?: string }) {
  const anyBusy = useReopen((s) => s.busy !== null);
  return (
    <button
      className={`btn btn-sm ${props.primary ? 'btn-primary' : ''}`}
      data-testid={props.testId ?? `reopen-${props.slot}`}
      disabled={anyBusy}
      // requestPermission needs the click's user activation: reopen starts inside the handler.
      onClick={() => void reopenStore().getState().reopen(props.slot)}
    >
      {props.busy ? `Reopening ${props.label}…` : `Reopen ${props.label}`}
    </button>
  );
}

/**
 * An interrupted run whose model or dataset is not loaded: reopen the stored one it trained on, from the run's card.
 * Nothing when the stored sources are other files (the run's problem line says what to load).
 */
export function ReopenForRun({ run }: { run: RunRecord }) {
  const offers = useReopen((s) => s.offers);
  const busy = useReopen((s) => s.busy);
  const notes = useReopen((s) => s.notes);
  const modelMissing = useStudio((s) => !s.model.loading && s.model.card?.key !== run.modelKey);
  const datasetMissing = useStudio((s) => !s.dataset.loading && s.dataset.preview?.name !== run.datasetName);
  useEffect(() => void reopenStore().getState().restore(), []);
  const model = modelMissing && offerMatches(offers.model, run.modelName) ? offers.model : null;
  const dataset = datasetMissing && offerMatches(offers.dataset, run.datasetName) ? offers.dataset : null;
  if (!model && !dataset) return null;
  const problems = [model && notes.model, dataset && notes.dataset].filter((n) => n && n.kind === 'problem');
  return (
    <div className="reopen-run" data-testid="run-reopen">
      <span className="muted">To resume, reopen what it trained on:</span>
      {model && (
        <ReopenButton
          slot="model"
          label={offerLabel(model)}
          busy={busy === 'model'}
          primary
          testId="run-reopen-model"
        />
      )}
      {dataset && (
        <ReopenButton
          slot="dataset"
          label={offerLabel(dataset)}
          busy={busy === 'dataset'}
          primary
          testId="run-reopen-dataset"
        />
      )}
      {problems.map((n) => (
        <div key={n!.text} className="run-message error" data-testid="run-reopen-problem">
          {n!.text}
        </div>
      ))}
    </div>
  );
}

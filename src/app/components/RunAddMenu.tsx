/**
 * The Runs panel's "+ Add run": says which run it copies, and offers the alternatives (a fresh run of any method),
 * beside "Clear drafts".
 */
import { copiedRun, PRESET_METHODS } from '../run-presets';
import { useStudio } from '../store';
import { RunMenu, RunMenuHeading, RunMenuItem } from './RunMenu';

export function RunAddButtons() {
  const copied = useStudio((s) => copiedRun(s)?.name ?? null);
  const drafts = useStudio((s) => s.order.filter((id) => s.runs[id].status === 'draft').length);
  const { addRun, addPresetRun, clearDrafts } = useStudio.getState();
  const clear = () => {
    if (window.confirm(`Remove all ${drafts} draft${drafts > 1 ? 's' : ''}? Their settings are lost.`)) clearDrafts();
  };
  return (
    <>
      <span className="run-add">
        <button
          className="btn run-add-main"
          onClick={addRun}
          data-testid="add-run"
          title={
            copied ? `A new draft with the settings of "${copied}" and the next seed` : 'A new draft with the defaults'
          }
        >
          + Add run
          {copied && <span className="run-add-copy"> (copy of {copied})</span>}
        </button>
        <RunMenu
          label="▾"
          ariaLabel="Add a run from a preset"
          title="Add a run from a preset: a copy of the last run, or a new run of one method"
          className="btn run-add-more"
          testId="add-run-menu"
        >
          {copied && (
            <RunMenuItem onClick={addRun} testId="add-run-copy">
              Copy of {copied}
            </RunMenuItem>
          )}
          <RunMenuHeading>New run with the defaults</RunMenuHeading>
          {PRESET_METHODS.map((m) => (
            <RunMenuItem key={m.id} onClick={() => addPresetRun(m.id)} testId={`add-run-preset-${m.id}`}>
              {m.label}
            </RunMenuItem>
          ))}
        </RunMenu>
      </span>
      {drafts > 0 && (
        <button
          className="btn btn-ghost"
          onClick={clear}
          data-testid="clear-drafts"
          title="Remove every run that has not started"
        >
          Clear drafts ({drafts})
        </button>
      )}
    </>
  );
}

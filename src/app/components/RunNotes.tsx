/** A run's tags and notes on its card: shown when it has some, edited in place (saved with the run). */
import { useState } from 'react';
import type { RunRecord } from '../run-record';
import { parseTags, tagsText } from '../run-tags';
import { useStudio } from '../store';

export function RunNotes(props: { run: RunRecord; editing: boolean; onEdit(): void; onDone(): void }) {
  const { run } = props;
  if (props.editing) return <RunNotesEditor run={run} onDone={props.onDone} />;
  if (run.tags.length === 0 && run.notes === '') return null;
  return (
    <div className="run-notes">
      {run.tags.length > 0 && (
        <span className="run-tags" data-testid="run-tags">
          {run.tags.map((t) => (
            <span key={t} className="run-tag" data-testid="run-tag">
              {t}
            </span>
          ))}
        </span>
      )}
      {run.notes && (
        <span className="run-notes-text" data-testid="run-notes-text">
          {run.notes}
        </span>
      )}
      <button
        className="link run-notes-edit"
        onClick={props.onEdit}
        aria-label={`Edit the notes and tags of ${run.config.name}`}
      >
        Edit
      </button>
    </div>
  );
}

function RunNotesEditor({ run, onDone }: { run: RunRecord; onDone(): void }) {
  const [tags, setTags] = useState(tagsText(run.tags));
  const [notes, setNotes] = useState(run.notes);
  const save = () => {
    const { setRunTags, setRunNotes } = useStudio.getState();
    setRunTags(run.config.id, parseTags(tags));
    setRunNotes(run.config.id, notes.trim());
    onDone();
  };
  return (
    <form
      className="run-notes-editor"
      data-testid="run-notes-editor"
      onSubmit={(e) => {
        e.preventDefault();
        save();
      }}
      onKeyDown={(e) => {
        if (e.key === 'Escape') onDone();
      }}
    >
      <label className="field">
        <span className="field-label">Tags</span>
        <input
          type="text"
          value={tags}
          placeholder="baseline, tiny, lr sweep"
          title="Comma-separated: the run list can be filtered by tag"
          onChange={(e) => setTags(e.target.value)}
          // biome-ignore lint/a11y/noAutofocus: the editor opens because the user asked to type here
          autoFocus
        />
      </label>
      <label className="field run-notes-field">
        <span className="field-label">Notes</span>
        <textarea
          value={notes}
          rows={2}
          placeholder="What this run tries, what it showed"
          onChange={(e) => setNotes(e.target.value)}
        />
      </label>
      <div className="run-notes-buttons">
        <button type="submit" className="btn btn-primary btn-sm" data-testid="run-notes-save">
          Save
        </button>
        <button type="button" className="btn btn-ghost btn-sm" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

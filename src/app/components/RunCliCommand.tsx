/** A run as a CLI command (run-cli-command.ts), shown on its card with what to replace and a copy button. */
import { cliCommand } from '../run-cli-command';
import { copyText } from '../run-download';
import type { RunRecord } from '../run-record';
import { useStudio } from '../store';

export function RunCliCommandBox({ run, onClose }: { run: RunRecord; onClose(): void }) {
  const card = useStudio((s) => s.model.card);
  const dataset = useStudio((s) => s.dataset.preview);
  const command = cliCommand(run, { card, dataset });
  const copy = async () => {
    const copied = await copyText(command.text);
    useStudio
      .getState()
      .toast(
        copied ? 'info' : 'error',
        copied ? 'CLI command copied.' : 'The browser did not allow copying: select the command and copy it.',
      );
  };
  return (
    <div className="run-cli" data-testid="run-cli">
      <div className="run-cli-head">
        <span className="run-cli-title">Train it with the CLI</span>
        <button className="btn btn-ghost btn-sm" onClick={() => void copy()} data-testid="run-cli-copy">
          Copy
        </button>
        <button className="icon-btn" aria-label="Close the CLI command" title="Close" onClick={onClose}>
          ×
        </button>
      </div>
      <div className="code-block">
        <pre>
          <code data-testid="run-cli-command">{command.text}</code>
        </pre>
      </div>
      {command.placeholders.length > 0 && (
        <p className="run-cli-note" data-testid="run-cli-placeholders">
          The browser does not know where your files are: replace{' '}
          {command.placeholders.map((p, i) => (
            <span key={p.placeholder}>
              {i > 0 && ' and '}
              <code>{p.placeholder}</code> with {p.what}
            </span>
          ))}
          .
        </p>
      )}
      {command.notes.map((n) => (
        <p key={n} className="run-cli-note" data-testid="run-cli-warning">
          {n}
        </p>
      ))}
    </div>
  );
}

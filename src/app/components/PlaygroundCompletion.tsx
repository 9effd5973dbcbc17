/** Completion mode: one prompt, each source's continuation streamed beside the others. */
import { useStudio } from '../store';
import { resultStats, SourceName } from './PlaygroundSources';

export function PlaygroundCompletion(props: { canGenerate: boolean }) {
  const s = useStudio();
  const p = s.playground;
  const busy = p.requestId !== null;
  const shown = p.shownMode === 'completion' ? p.order : [];
  return (
    <>
      <div className="playground-controls">
        <label className="field grow">
          <span className="field-label">Prompt</span>
          <textarea
            rows={3}
            value={p.prompt}
            onChange={(e) => s.setPlayground({ prompt: e.target.value })}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && props.canGenerate) s.generate();
            }}
            data-testid="prompt"
          />
        </label>
        <div className="playground-side">
          <button
            className="btn btn-primary"
            disabled={!props.canGenerate}
            onClick={s.generate}
            title="Ctrl+Enter"
            data-testid="generate"
          >
            {busy ? 'Generating…' : 'Generate'}
          </button>
          {busy && (
            <button className="btn btn-danger" onClick={s.stopGeneration} data-testid="stop-generation">
              Stop
            </button>
          )}
        </div>
      </div>
      {shown.length > 0 && (
        <div className="generations" data-testid="generations">
          {shown.map((key) => {
            const r = p.results[key];
            return (
              <div key={key} className="generation" data-testid="generation" data-source={key}>
                <div className="generation-head">
                  <SourceName source={key} />
                  <span className="muted small">{resultStats(r)}</span>
                </div>
                {r?.error ? (
                  <div className="run-message error">{r.error}</div>
                ) : (
                  <pre className="generation-text" data-testid="generation-text">
                    <span className="prompt-echo">{p.lastPrompt}</span>
                    {r?.text ?? ''}
                    {r && !r.done && <span className="caret" />}
                  </pre>
                )}
              </div>
            );
          })}
        </div>
      )}
    </>
  );
}

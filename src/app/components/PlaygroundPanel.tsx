import { formatDuration } from '../format';
import { generationRuns } from '../run-record';
import { useStudio } from '../store';
import { Alert, Panel, runColor } from './Panel';

export function PlaygroundPanel() {
  const s = useStudio();
  const p = s.playground;
  const card = s.model.card;
  const available = generationRuns(s);
  const selected = p.selected ?? available;
  const busy = p.requestId !== null;
  const canGenerate =
    !!card && s.model.ready && !busy && (p.includeBase || selected.some((id) => available.includes(id)));
  const toggle = (id: string) => {
    const next = selected.includes(id) ? selected.filter((x) => x !== id) : [...selected, id];
    s.setPlayground({ selected: next });
  };

  return (
    <Panel
      id="playground"
      step={7}
      title="Playground"
      subtitle="One prompt, greedy decoding from the base model and each finished run, side by side."
    >
      {!card && (
        <Alert kind="info">
          Load a model to generate text. Past runs' adapters are kept and work again once their base model is loaded.
        </Alert>
      )}
      <div className="playground-controls">
        <label className="field grow">
          <span className="field-label">Prompt</span>
          <textarea
            rows={3}
            value={p.prompt}
            onChange={(e) => s.setPlayground({ prompt: e.target.value })}
            data-testid="prompt"
          />
        </label>
        <div className="playground-side">
          <label className="field">
            <span className="field-label">Max new tokens: {p.maxNewTokens}</span>
            <input
              type="range"
              min={4}
              max={256}
              step={4}
              value={p.maxNewTokens}
              onChange={(e) => s.setPlayground({ maxNewTokens: Number(e.target.value) })}
              aria-label="Max new tokens"
            />
          </label>
          <button className="btn btn-primary" disabled={!canGenerate} onClick={s.generate} data-testid="generate">
            {busy ? 'Generating…' : 'Generate'}
          </button>
        </div>
      </div>
      <div className="source-picks" aria-label="Compare">
        <label className="check pill">
          <input
            type="checkbox"
            checked={p.includeBase}
            onChange={(e) => s.setPlayground({ includeBase: e.target.checked })}
          />{' '}
          Base model
        </label>
        {available.map((id) => (
          <label key={id} className="check pill">
            <input type="checkbox" checked={selected.includes(id)} onChange={() => toggle(id)} />
            <span className="run-dot" style={{ background: runColor(s.order.indexOf(id)) }} /> {s.runs[id].config.name}
          </label>
        ))}
        {card && available.length === 0 && (
          <span className="muted small">Finished runs on {card.name} appear here.</span>
        )}
      </div>
      {p.error && (
        <Alert kind="error" testId="generate-error">
          {p.error}
        </Alert>
      )}
      {p.order.length > 0 && (
        <div className="generations" data-testid="generations">
          {p.order.map((key) => {
            const r = p.results[key];
            const isBase = key === 'base';
            const run = isBase ? null : s.runs[key];
            const color = isBase ? 'var(--muted)' : runColor(s.order.indexOf(key));
            return (
              <div key={key} className="generation" data-testid="generation">
                <div className="generation-head">
                  <span className="run-dot" style={{ background: color }} />{' '}
                  {isBase ? `Base · ${card?.name ?? ''}` : (run?.config.name ?? 'Removed run')}
                  <span className="muted small">{r ? `${r.tokens} tokens · ${formatDuration(r.ms)}` : 'waiting'}</span>
                </div>
                {r?.error ? (
                  <div className="run-message error">{r.error}</div>
                ) : (
                  <pre className="generation-text">
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
    </Panel>
  );
}

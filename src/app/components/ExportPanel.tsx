import { useState } from 'react';
import { mergedSnippet, peftSnippet, slug } from '../../worker/snippets';
import { useStudio } from '../store';
import { Panel, runColor } from './Panel';

export function ExportPanel() {
  const runs = useStudio((s) => s.runs);
  const order = useStudio((s) => s.order);
  const exporting = useStudio((s) => s.exporting);
  const exportRun = useStudio((s) => s.exportRun);
  const exportable = order.filter((id) => runs[id].weights !== null);

  return (
    <Panel id="export" step={7} title="Export" subtitle="Each run as a standard PEFT adapter folder (adapter_config.json + adapter_model.safetensors), zipped, with the Python to load it.">
      {exportable.length === 0 ? (
        <div className="empty" data-testid="export-empty">Finished runs can be downloaded here.</div>
      ) : (
        <div className="export-list">
          {exportable.map((id) => {
            const r = runs[id];
            const dir = slug(r.config.name);
            const full = r.weights === 'session';
            const snippet = full ? mergedSnippet(dir) : peftSnippet(r.modelName ?? 'base-model', dir);
            return (
              <div key={id} className="export-card" data-testid="export-card">
                <div className="export-head">
                  <span className="run-dot" style={{ background: runColor(order.indexOf(id)) }} />
                  <div className="export-titles">
                    <div className="card-title small-title">{r.config.name}</div>
                    <div className="card-sub">
                      {full ? 'Merged model: model.safetensors + config and tokenizer files (kept until reload)' : `PEFT LoRA adapter for ${r.modelName ?? 'its base model'}`}
                      {' → '}<code>{dir}.zip</code>
                    </div>
                  </div>
                  <button className="btn btn-primary" disabled={!!exporting[id]} onClick={() => exportRun(id)} data-testid="export-button">
                    {exporting[id] ? 'Preparing…' : 'Download .zip'}
                  </button>
                </div>
                <CodeBlock code={snippet} />
              </div>
            );
          })}
        </div>
      )}
    </Panel>
  );
}

function CodeBlock({ code }: { code: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="code-block">
      <button
        className="btn btn-ghost btn-sm copy-btn"
        onClick={() => {
          void navigator.clipboard?.writeText(code).then(() => {
            setCopied(true);
            setTimeout(() => setCopied(false), 1500);
          });
        }}
      >
        {copied ? 'Copied' : 'Copy'}
      </button>
      <pre><code>{code}</code></pre>
    </div>
  );
}

import { useState } from 'react';
import { isMethodId, methodDescriptor } from '../../adapters/registry';
import { mergedSnippet, peftSnippet, slug } from '../../worker/snippets';
import type { RunRecord } from '../run-record';
import { useStudio } from '../store';
import { exportSections } from '../visible-runs';
import { ExportWholeModel } from './ExportWholeModel';
import { Panel, runColor } from './Panel';

export function ExportPanel() {
  const runs = useStudio((s) => s.runs);
  const order = useStudio((s) => s.order);
  // Archived runs stay exportable, apart and folded: archiving declutters, it does not take a run away.
  const { current, archived } = exportSections({ runs, order });
  const card = (id: string) => <ExportCard key={id} run={runs[id]} color={runColor(order.indexOf(id))} />;

  return (
    <Panel
      id="export"
      step={9}
      title="Export"
      subtitle="Each run as a standard PEFT adapter folder (adapter_config.json + adapter_model.safetensors), zipped with the Python to load it and a scale-out bundle (train_peft.py + accelerate_config.yaml) to keep training it on a multi-GPU machine; or as a merged model (the base with the run folded in) that transformers loads, or one GGUF file for llama.cpp and Ollama."
    >
      {current.length === 0 && archived.length === 0 ? (
        <div className="empty" data-testid="export-empty">
          Finished runs can be downloaded here.
        </div>
      ) : current.length === 0 ? (
        <div className="empty" data-testid="export-only-archived">
          Every finished run is archived: open "Archived runs" below to download one.
        </div>
      ) : (
        <div className="export-list">{current.map(card)}</div>
      )}
      {archived.length > 0 && (
        <details className="export-archived" data-testid="export-archived">
          <summary>Archived runs ({archived.length})</summary>
          <div className="export-list">{archived.map(card)}</div>
        </details>
      )}
    </Panel>
  );
}

function ExportCard({ run: r, color }: { run: RunRecord; color: string }) {
  const busy = useStudio((s) => !!s.exporting[r.config.id]);
  const exportRun = useStudio((s) => s.exportRun);
  const dir = slug(r.config.name);
  const full = r.weights === 'session';
  const gralora = r.adapterFormat === 'gralora';
  // A method's raw save beside its default export (PiSSA's), from its descriptor.
  const raw = !full && isMethodId(r.config.method) ? methodDescriptor(r.config.method).rawExport : undefined;
  const snippet = full ? mergedSnippet(dir) : peftSnippet(r.modelName ?? 'base-model', dir);
  const what = full
    ? 'Merged model: model.safetensors + config and tokenizer files (kept until reload)'
    : gralora
      ? `PEFT GraLoRA adapter (PEFT ≥ 0.19) for ${r.modelName ?? 'its base model'}, or its exact plain-LoRA equivalent for PEFT ≥ 0.9`
      : r.adapterFormat === 'adalora'
        ? `PEFT AdaLoRA adapter (PEFT ≥ 0.14) for ${r.modelName ?? 'its base model'}`
        : `PEFT LoRA adapter for ${r.modelName ?? 'its base model'}${raw ? `, or ${raw.what}` : ''}`;
  return (
    <div className="export-card" data-testid="export-card" data-run-id={r.config.id}>
      <div className="export-head">
        <span className="run-dot" style={{ background: color }} />
        <div className="export-titles">
          <div className="card-title small-title">{r.config.name}</div>
          <div className="card-sub">
            {what}
            {' → '}
            <code>{dir}.zip</code>
            {gralora && (
              <>
                , <code>{dir}-as-lora.zip</code>
              </>
            )}
            {raw && (
              <>
                , <code>{dir}-raw.zip</code>
              </>
            )}
          </div>
        </div>
        <div className="export-buttons">
          {gralora && (
            <button
              className="btn"
              disabled={busy}
              onClick={() => exportRun(r.config.id, 'lora')}
              data-testid="export-lora-button"
              title="The same adapter as a plain LoRA of rank k·r + h (exact), for tools that only read LoRA"
            >
              Export as plain LoRA
            </button>
          )}
          {raw && (
            <button
              className="btn"
              disabled={busy}
              onClick={() => exportRun(r.config.id, 'raw')}
              data-testid="export-raw-button"
              title={`The ${raw.what}`}
            >
              {raw.button}
            </button>
          )}
          <button
            className="btn btn-primary"
            disabled={busy}
            onClick={() => exportRun(r.config.id)}
            data-testid="export-button"
          >
            {busy ? 'Preparing…' : 'Download .zip'}
          </button>
        </div>
      </div>
      <ExportWholeModel run={r} />
      <CodeBlock code={snippet} />
    </div>
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
      <pre>
        <code>{code}</code>
      </pre>
    </div>
  );
}

/**
 * A run's whole-model exports: the base model with the run folded in, as a safetensors folder transformers loads
 * (f32, bf16, f16) or as one GGUF file for llama.cpp and Ollama (f16, q8_0, with a Modelfile).
 */
import { useState } from 'react';
import { GGUF_DTYPES, MERGED_DTYPES, type GgufDtype, type MergedDtype } from '../../export/merged-model';
import type { RunRecord } from '../run-record';
import { useStudio } from '../store';

const DTYPE_HINTS: Record<MergedDtype | GgufDtype, string> = {
  f32: 'float32: exact, 4 bytes per weight',
  bf16: 'bfloat16: half the size, the precision most checkpoints ship in',
  f16: 'float16: half the size',
  q8_0: "llama.cpp's 8-bit blocks of 32: about a quarter of f32, nearly lossless",
};

export function ExportWholeModel({ run: r }: { run: RunRecord }) {
  const busy = useStudio((s) => !!s.exporting[r.config.id]);
  const exportRun = useStudio((s) => s.exportRun);
  const loadedKey = useStudio((s) => s.model.card?.key ?? null);
  const [mergedDtype, setMergedDtype] = useState<MergedDtype>('bf16');
  const [ggufDtype, setGgufDtype] = useState<GgufDtype>('f16');
  // Folding needs the base weights: they are on the GPU only while the run's model is loaded.
  const why =
    loadedKey === null
      ? 'Load the base model to export a merged model.'
      : r.modelKey !== null && r.modelKey !== loadedKey
        ? `Load ${r.modelName ?? 'the base model this run was trained on'} to export a merged model.`
        : null;
  return (
    <div className="export-whole" data-testid="export-whole">
      <div className="export-whole-row">
        <span
          className="export-whole-label"
          title="The base model with this run folded into its weights: no PEFT needed"
        >
          Merged model
        </span>
        <DtypeSelect
          testId="export-merged-dtype"
          value={mergedDtype}
          choices={MERGED_DTYPES}
          onChange={setMergedDtype}
        />
        <button
          className="btn btn-sm"
          disabled={busy || why !== null}
          title={why ?? 'model.safetensors, config.json and the tokenizer files: AutoModelForCausalLM loads the folder'}
          onClick={() => exportRun(r.config.id, undefined, { format: 'merged', dtype: mergedDtype })}
          data-testid="export-merged-button"
        >
          Download folder (.zip)
        </button>
      </div>
      <div className="export-whole-row">
        <span className="export-whole-label" title="One file for llama.cpp, Ollama, LM Studio">
          GGUF
        </span>
        <DtypeSelect testId="export-gguf-dtype" value={ggufDtype} choices={GGUF_DTYPES} onChange={setGgufDtype} />
        <button
          className="btn btn-sm"
          disabled={busy || why !== null}
          title={why ?? 'The merged model as one .gguf file, with an Ollama Modelfile'}
          onClick={() => exportRun(r.config.id, undefined, { format: 'gguf', dtype: ggufDtype })}
          data-testid="export-gguf-button"
        >
          Download .gguf + Modelfile (.zip)
        </button>
      </div>
      {why && (
        <div className="card-sub" data-testid="export-whole-why">
          {why}
        </div>
      )}
    </div>
  );
}

function DtypeSelect<T extends MergedDtype | GgufDtype>(props: {
  testId: string;
  value: T;
  choices: readonly T[];
  onChange: (value: T) => void;
}) {
  return (
    <select
      className="export-dtype"
      value={props.value}
      onChange={(e) => props.onChange(e.target.value as T)}
      data-testid={props.testId}
      aria-label="Precision"
      title={DTYPE_HINTS[props.value]}
    >
      {props.choices.map((d) => (
        <option key={d} value={d} title={DTYPE_HINTS[d]}>
          {d}
        </option>
      ))}
    </select>
  );
}

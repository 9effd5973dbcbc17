import { useRef } from 'react';
import { formatBytes, formatCount, formatInt } from '../format';
import { pickedFolder } from '../files';
import { pickHandles, reopenStore, useReopen } from '../reopen';
import { useStudio } from '../store';
import type { WeightStorage } from '../../model/weights';
import { SelectField } from './Fields';
import { Alert, Panel, ProgressBar, Stat } from './Panel';
import { DropZone } from './DropZone';
import { ReopenOffer } from './Reopen';

/** React has no typing for the (non-standard but universal) directory picker attribute. */
const directoryPicker = { webkitdirectory: '', directory: '' } as Record<string, string>;

export function ModelPanel() {
  const model = useStudio((s) => s.model);
  const canKeep = useReopen((s) => s.supported);
  const tryDemo = useStudio((s) => s.tryDemo);
  const setWeightStorage = useStudio((s) => s.setWeightStorage);
  // Re-uploading the weights cancels queued runs: not while any run waits or trains.
  const busy = useStudio((s) => s.order.some((id) => ['queued', 'preparing', 'training'].includes(s.runs[id].status)));
  const folderInput = useRef<HTMLInputElement>(null);
  const filesInput = useRef<HTMLInputElement>(null);
  const card = model.card;

  // Plain <input> files carry no handle: the model cannot be reopened after a reload (reopen.ts says so).
  const onPicked = (list: FileList | null) => {
    const files = Array.from(list ?? []);
    if (files.length === 0) return;
    reopenStore().getState().open('model', pickedFolder(files), []);
  };
  // The File System Access pickers where the browser has them (their handles reopen after a reload), else the inputs.
  const choose = async (what: 'model-folder' | 'model-files', input: HTMLInputElement | null) => {
    if (!canKeep) return input?.click();
    try {
      const handles = await pickHandles(what);
      if (handles) await reopenStore().getState().openHandles('model', handles);
    } catch {
      input?.click();
    }
  };

  return (
    <Panel
      id="model"
      step={1}
      title="Model"
      subtitle="A Hugging Face causal LM folder (Llama, Qwen2/3, Mistral, GPT-2) or a llama2.c checkpoint. Read in place: nothing is uploaded."
    >
      <DropZone
        label="Drop a model folder"
        testId="model-drop"
        compact={!!card}
        onFiles={(d, handles) => reopenStore().getState().open('model', d, handles)}
      >
        <div className="dropzone-inner">
          <div className="dropzone-icon" aria-hidden>
            ⬡
          </div>
          <div>
            <div className="dropzone-title">
              {card ? 'Drop another model folder to switch' : 'Drop a model folder here'}
            </div>
            {!card && (
              <div className="dropzone-hint">config.json · *.safetensors (sharded is fine) · tokenizer.json</div>
            )}
          </div>
          <div className="dropzone-buttons">
            <button
              className="btn"
              data-testid="model-choose-folder"
              onClick={() => void choose('model-folder', folderInput.current)}
            >
              Choose folder…
            </button>
            <button
              className="btn btn-ghost"
              data-testid="model-choose-files"
              onClick={() => void choose('model-files', filesInput.current)}
            >
              Choose files…
            </button>
            {!card && (
              <button className="btn btn-primary" data-testid="try-demo-model" onClick={tryDemo}>
                Try the demo
              </button>
            )}
          </div>
        </div>
        <input
          ref={folderInput}
          type="file"
          hidden
          multiple
          {...directoryPicker}
          data-testid="model-folder-input"
          onChange={(e) => {
            onPicked(e.target.files);
            e.target.value = '';
          }}
        />
        <input
          ref={filesInput}
          type="file"
          hidden
          multiple
          data-testid="model-files-input"
          onChange={(e) => {
            onPicked(e.target.files);
            e.target.value = '';
          }}
        />
      </DropZone>
      <ReopenOffer slot="model" />

      {model.loading && (
        <div className="loading-line" data-testid="model-loading">
          <span>
            {model.loading.stage}
            {model.loading.total > 0 ? ` · ${model.loading.done}/${model.loading.total}` : '…'}
          </span>
          <ProgressBar
            value={model.loading.done}
            max={model.loading.total}
            indeterminate={model.loading.total === 0}
            label={model.loading.stage}
          />
        </div>
      )}
      {model.error && (
        <Alert kind="error" title="The model could not be loaded" testId="model-error">
          {model.error}
          {card && model.ready && (
            <div data-testid="model-error-kept">
              {card.name} stays loaded: its runs, results and exports are unchanged.
            </div>
          )}
        </Alert>
      )}

      {card && (
        <div className="model-card" data-testid="model-card">
          <div className="card-title-row">
            <div>
              <div className="card-title">{card.name}</div>
              <div className="card-sub">
                {card.modelType} · {card.format === 'huggingface' ? 'Hugging Face safetensors' : 'llama2.c checkpoint'}
                {card.demo && ' · embedded demo'}
                {card.quantized && <span data-testid="model-quantized"> · already {card.quantized}</span>}
              </div>
            </div>
            <span className={`badge ${model.ready ? 'badge-ok' : 'badge-busy'}`} data-testid="model-status">
              {model.ready ? 'On the GPU' : 'Uploading…'}
            </span>
          </div>
          <div className="stats-grid">
            <Stat
              label="Architecture"
              value={card.modelType}
              hint={card.family === 'gpt2' ? 'GPT-2 family' : 'Llama family (RMSNorm, RoPE, SwiGLU)'}
            />
            <Stat label="Layers" value={card.layers} />
            <Stat label="Hidden" value={formatInt(card.hidden)} />
            <Stat
              label="Heads / KV heads"
              value={`${card.heads} / ${card.kvHeads}`}
              hint={
                card.kvHeads < card.heads
                  ? `Grouped-query attention: ${card.heads / card.kvHeads} query heads share each KV head`
                  : 'Multi-head attention'
              }
            />
            <Stat label="Head dim" value={card.headDim} />
            <Stat label="MLP width" value={formatInt(card.intermediate)} />
            <Stat label="Vocabulary" value={formatInt(card.vocabSize)} />
            <Stat label="Context" value={`${formatInt(card.maxPositions)} tokens`} />
            <Stat
              label="Parameters"
              value={formatCount(card.parameters)}
              hint={`${formatInt(card.parameters)} parameters`}
              testId="model-params"
            />
            <Stat
              label={`Weights on GPU · ${(card.weightDtypes ?? ['f32']).join(' + ')}`}
              value={formatBytes(card.weightBytes)}
              hint={weightStorageHint(card.weightDtypes ?? ['f32'], card.weightStorage ?? 'auto')}
              testId="model-weight-storage"
            />
            <Stat
              label="Tokenizer"
              value={`${formatInt(card.tokenizer.vocabSize)} tokens`}
              hint={`BOS ${card.tokenizer.bos ?? 'none'} · EOS ${card.tokenizer.eos ?? 'none'}`}
            />
            <Stat label="Embeddings" value={card.tiedEmbeddings ? 'tied' : 'separate LM head'} />
          </div>
          <div className="model-options" data-testid="model-weight-storage-select">
            <SelectField
              label="Keep weights as"
              value={card.weightStorage ?? 'auto'}
              options={STORAGE_OPTIONS}
              disabled={!model.ready || busy}
              onChange={setWeightStorage}
              hint={
                busy
                  ? 'Wait for the queued and running runs to finish'
                  : 'How the frozen base matrices are stored on the GPU; changing it uploads the model again'
              }
            />
          </div>
          {card.warnings.length > 0 && (
            <Alert kind="warning" title={`${card.warnings.length} warning${card.warnings.length > 1 ? 's' : ''}`}>
              <ul className="plain-list">
                {card.warnings.map((w, i) => (
                  <li key={i}>{w}</li>
                ))}
              </ul>
            </Alert>
          )}
          <div className="file-chips" aria-label="Files">
            {card.files.map((f) => (
              <span key={f} className="chip chip-file">
                {f}
              </span>
            ))}
          </div>
        </div>
      )}
    </Panel>
  );
}

const STORAGE_OPTIONS: [WeightStorage, string][] = [
  ['auto', 'As stored'],
  ['bf16', 'bf16'],
  ['f16', 'f16'],
  ['f32', 'f32'],
  ['nf4', 'NF4, 4-bit (QLoRA)'],
  ['int8', 'int8'],
];

function weightStorageHint(dtypes: string[], storage: WeightStorage): string {
  const tail = 'Each run adds its activations and trainable state (see the estimate on each run).';
  if (storage === 'nf4' || storage === 'int8')
    return `The blocks' linear weights quantized to ${storage === 'nf4' ? 'NF4 with double quantization, as bitsandbytes does (QLoRA)' : 'int8 with one scale per row'}; embeddings and the LM head stay as stored, norms and biases in float32. Adapters train in float32 and export for the original model. ${tail}`;
  if (storage !== 'auto')
    return `Linear weights and embeddings kept as ${storage} (your choice below); norms and biases in float32. ${tail}`;
  const quantized = dtypes.find((d) => d === 'nf4' || d === 'fp4' || d === 'int8');
  if (quantized)
    return `A bitsandbytes checkpoint: the linear weights stay ${quantized === 'int8' ? 'int8' : quantized.toUpperCase()} as stored (dequantized inside each product), the rest as stored. ${tail}`;
  if (dtypes[0] === 'f32') return `Base weights in float32, as the checkpoint stores them. ${tail}`;
  return `Linear weights and embeddings stay ${dtypes[0]} as in the checkpoint (lossless, half the memory of float32); norms and biases in float32. ${tail}`;
}

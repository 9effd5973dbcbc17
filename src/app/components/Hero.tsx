import { useStudio } from '../store';
import { CompareFairlyButton } from './ExperimentPanel';

export function Hero() {
  const tryDemo = useStudio((s) => s.tryDemo);
  const hasModel = useStudio((s) => s.model.card !== null);
  return (
    <section className="hero" id="top">
      <div className="hero-text">
        <p className="eyebrow">WebGPU fine-tuning studio</p>
        <h1>
          Fine-tune language models on <span className="grad-text">your own GPU</span>, in a browser tab.
        </h1>
        <p className="lead">
          Drop in a Hugging Face model and a dataset, train LoRA, GoRA, GraLoRA and GeLoRA adapters side by side, watch
          the curves and per-layer ranks live, and export the winner as a standard PEFT adapter. No server, no install,
          no upload: your model and your data never leave this machine.
        </p>
        <div className="hero-actions">
          <button className="btn btn-primary btn-lg" onClick={tryDemo} data-testid="try-demo">
            Try the demo
          </button>
          <CompareFairlyButton large />
          <a className="btn btn-lg" href="#model">
            {hasModel ? 'Go to the model' : 'Open your own model'}
          </a>
        </div>
        <p className="hero-note">
          The demo fine-tunes a 260K-parameter story model on Shakespeare with LoRA, GoRA, GraLoRA and GeLoRA at the
          same parameter budget: a few minutes in all on a laptop GPU, longer on a CPU-only fallback.{' '}
          <em>Compare fairly</em> runs the same four as an experiment: 3 learning rates × 3 seeds each on a fixed split,
          the rate chosen on validation, test loss with 95% intervals, and a report to download.
        </p>
      </div>
      <ol className="hero-steps" aria-label="How it works">
        <li>
          <strong>Model</strong>
          <span>Safetensors streamed straight from disk to GPU memory</span>
        </li>
        <li>
          <strong>Data</strong>
          <span>Text, prompt/completion, Alpaca or chat; format detected</span>
        </li>
        <li>
          <strong>Train</strong>
          <span>LoRA, rsLoRA, GoRA, GraLoRA, GeLoRA or full fine-tuning, queued on one GPU</span>
        </li>
        <li>
          <strong>Compare</strong>
          <span>Loss curves, rank heatmaps, validation loss, generations</span>
        </li>
        <li>
          <strong>Export</strong>
          <span>PEFT adapter folders, plus train_peft.py to keep training on many GPUs</span>
        </li>
      </ol>
    </section>
  );
}

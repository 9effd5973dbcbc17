import { formatBytes } from '../format';
import { isActive } from '../run-record';
import { useStudio } from '../store';

const SECTIONS: [string, string][] = [
  ['model', 'Model'],
  ['dataset', 'Dataset'],
  ['runs', 'Runs'],
  ['charts', 'Curves'],
  ['allocation', 'Ranks'],
  ['compare', 'Compare'],
  ['experiments', 'Experiments'],
  ['playground', 'Playground'],
  ['export', 'Export'],
  ['bench', 'Benchmark'],
];

export function TopBar() {
  const gpu = useStudio((s) => s.gpu);
  const modelBytes = useStudio((s) => s.model.gpuBytes);
  const activeRun = useStudio((s) => Object.values(s.runs).find((r) => isActive(r) && r.progress));
  const bytes = activeRun?.progress?.gpuBytes ?? modelBytes;
  return (
    <header className="topbar">
      <a className="brand" href="#top">
        <span className="brand-mark" aria-hidden>
          ◆
        </span>{' '}
        LoRA Studio
      </a>
      <nav className="nav" aria-label="Sections">
        {SECTIONS.map(([id, label]) => (
          <a key={id} href={`#${id}`}>
            {label}
          </a>
        ))}
      </nav>
      <div
        className="gpu-badge"
        data-testid="gpu-badge"
        title={
          gpu.status === 'ready'
            ? `maxBufferSize ${formatBytes(gpu.info.maxBufferSize)} · maxStorageBufferBindingSize ${formatBytes(gpu.info.maxStorageBufferBindingSize)}${gpu.info.subgroups ? ' · subgroups' : ''}\n${gpu.info.matmul}`
            : undefined
        }
      >
        {gpu.status === 'checking' && (
          <>
            <span className="spinner" aria-hidden /> Opening the GPU…
          </>
        )}
        {gpu.status === 'ready' && (
          <>
            <span className={`gpu-dot ${gpu.info.software ? 'warn' : 'ok'}`} aria-hidden />
            <span className="gpu-name">{gpu.info.description}</span>
            {gpu.info.software && (
              <span
                className="badge badge-warn badge-inline"
                title="A CPU implementation of the GPU: everything works, slowly"
              >
                software
              </span>
            )}
            {gpu.info.f16 && <span className="badge badge-inline">f16</span>}
            {bytes > 0 && <span className="muted">· {formatBytes(bytes)} in use</span>}
          </>
        )}
        {gpu.status === 'unavailable' && <span className="error-text">No WebGPU</span>}
      </div>
    </header>
  );
}

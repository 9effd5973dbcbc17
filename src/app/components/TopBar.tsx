import { useLayoutEffect, useRef, useState } from 'react';
import { useGpuRole } from '../client';
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

/** Space between the bar's items and around them (styles.css: .topbar gap and padding). */
const BAR_GAPS = 2 * 24 + 2 * 28;

/**
 * The sections get a row of their own when brand, sections and GPU badge do not fit on one line (the badge's
 * width depends on the GPU's name, so a fixed breakpoint would cut some and waste room for others).
 */
function useStackedWhenCrowded() {
  const ref = useRef<HTMLElement>(null);
  const [stacked, setStacked] = useState(false);
  useLayoutEffect(() => {
    const bar = ref.current;
    if (!bar) return;
    const measure = () => {
      const brand = bar.querySelector<HTMLElement>('.brand');
      const links = [...bar.querySelectorAll<HTMLElement>('.nav a')];
      const badge = bar.querySelector<HTMLElement>('.gpu-badge');
      // Link widths do not depend on the layout; the badge is capped at 46% of the window on one line.
      const nav = links.reduce((w, a) => w + a.offsetWidth + 4, 0);
      const badgeWidth = Math.min(badge?.scrollWidth ?? 0, window.innerWidth * 0.46);
      setStacked((brand?.offsetWidth ?? 0) + nav + badgeWidth + BAR_GAPS > bar.clientWidth);
    };
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(bar);
    const badge = bar.querySelector('.gpu-badge');
    if (badge) observer.observe(badge);
    return () => observer.disconnect();
  }, []);
  return { ref, stacked };
}

export function TopBar() {
  const gpu = useStudio((s) => s.gpu);
  // A second tab waits for the first to let the GPU go: say so rather than spin.
  const role = useGpuRole((s) => s.role);
  const modelBytes = useStudio((s) => s.model.gpuBytes);
  const activeRun = useStudio((s) => Object.values(s.runs).find((r) => isActive(r) && r.progress));
  const bytes = activeRun?.progress?.gpuBytes ?? modelBytes;
  const { ref, stacked } = useStackedWhenCrowded();
  return (
    <header className={`topbar ${stacked ? 'stacked' : ''}`} ref={ref} data-testid="topbar">
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
        {gpu.status === 'checking' && role === 'waiting' && (
          <>
            <span className="gpu-dot warn" aria-hidden /> GPU in use by another tab
          </>
        )}
        {gpu.status === 'checking' && role !== 'waiting' && (
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

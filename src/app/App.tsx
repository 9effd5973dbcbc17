import { useEffect } from 'react';
import { AnalysisPanel } from './components/AnalysisPanel';
import { BenchPanel } from './components/BenchPanel';
import { ChartsPanel } from './components/ChartsPanel';
import { ComparisonPanel } from './components/ComparisonPanel';
import { DatasetPanel } from './components/DatasetPanel';
import { ExperimentPanel } from './components/ExperimentPanel';
import { ExportPanel } from './components/ExportPanel';
import { Hero } from './components/Hero';
import { ModelPanel } from './components/ModelPanel';
import { NoWebGpu } from './components/NoWebGpu';
import { PlaygroundPanel } from './components/PlaygroundPanel';
import { RunsPanel } from './components/RunsPanel';
import { StoragePanel } from './components/StoragePanel';
import { TabGpuNotice } from './components/TabGpuNotice';
import { Toasts } from './components/Toasts';
import { TopBar } from './components/TopBar';
import { useStudio } from './store';

let started = false;

export function App() {
  const gpu = useStudio((s) => s.gpu);

  useEffect(() => {
    // Once per page (StrictMode mounts twice in development).
    if (!started) {
      started = true;
      useStudio.getState().start();
    }
    // A file dropped outside a drop zone must not navigate away from the studio.
    const swallow = (e: DragEvent) => e.preventDefault();
    window.addEventListener('dragover', swallow);
    window.addEventListener('drop', swallow);
    return () => {
      window.removeEventListener('dragover', swallow);
      window.removeEventListener('drop', swallow);
    };
  }, []);

  if (gpu.status === 'unavailable') return <NoWebGpu reason={gpu.reason} />;

  return (
    <>
      <TopBar />
      <main className="page">
        <TabGpuNotice />
        <Hero />
        <div className="grid-2">
          <ModelPanel />
          <DatasetPanel />
        </div>
        <RunsPanel />
        <ChartsPanel />
        <AnalysisPanel />
        <ComparisonPanel />
        <ExperimentPanel />
        <PlaygroundPanel />
        <ExportPanel />
        <BenchPanel />
        <StoragePanel />
        <footer className="footer">
          LoRA Studio runs entirely in this tab through WebGPU. Run settings, metrics, rank allocations and adapters are
          kept in this browser (IndexedDB); your model and dataset files are read in place and never stored or sent
          anywhere.
        </footer>
      </main>
      <Toasts />
    </>
  );
}

/**
 * Storage: how much of the browser's storage the studio uses, whether the browser keeps it (persistent) or may
 * evict it, and the stored checkpoints by run with their sizes, to delete those of stopped runs when space runs out.
 */
import { useEffect } from 'react';
import { useGpuRole } from '../client';
import { formatBytes } from '../format';
import { deleteStoredCheckpoints, storedCheckpoints, type StoredCheckpointRow } from '../storage-checkpoints';
import { refreshStorageStatus, useStorageStatus } from '../storage-status';
import { useStudio } from '../store';
import { Panel } from './Panel';

export function StoragePanel() {
  const runs = useStudio((s) => s.runs);
  const order = useStudio((s) => s.order);
  const rows = storedCheckpoints(runs, order);
  const stopped = rows.filter((r) => r.deletable);
  const stoppedBytes = stopped.reduce((n, r) => n + r.bytes, 0);
  // Read the usage again when the stored checkpoints change (the write lands a moment after the list changes).
  const key = rows.map((r) => `${r.id}:${r.step}`).join(',');
  useEffect(() => {
    const timer = setTimeout(() => void refreshStorageStatus(), 1000);
    return () => clearTimeout(timer);
  }, [key]);

  return (
    <Panel
      id="storage"
      step={11}
      title="Storage"
      subtitle="Runs, their metrics, adapters and checkpoints stay in this browser (IndexedDB). A checkpoint lets a run cut off by a reload, a closed tab or a lost GPU resume; it holds the trained weights and the optimizer's state, so it is the largest thing the studio stores."
    >
      <div className="storage-facts">
        <StorageUsage />
        <StoragePersistence />
        <TabCoordination />
      </div>
      {rows.length === 0 ? (
        <div className="empty" data-testid="storage-empty">
          No checkpoints are stored: only runs that have not finished keep one.
        </div>
      ) : (
        <>
          <div className="table-wrap">
            <table className="table" data-testid="storage-checkpoints">
              <thead>
                <tr>
                  <th>Run</th>
                  <th>Status</th>
                  <th className="num">Checkpoint</th>
                  <th className="num">Size</th>
                  <th aria-label="Actions" />
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <CheckpointRow key={r.id} row={r} />
                ))}
              </tbody>
            </table>
          </div>
          <div className="storage-actions">
            <button
              className="btn btn-danger btn-sm"
              data-testid="storage-delete-stopped"
              disabled={stopped.length === 0}
              title="Runs that are not queued or training: they will not be able to resume"
              onClick={() => deleteStoredCheckpoints(stopped.map((r) => r.id))}
            >
              Delete checkpoints of stopped runs ({stopped.length}
              {stoppedBytes > 0 ? ` · ${formatBytes(stoppedBytes)}` : ''})
            </button>
          </div>
        </>
      )}
    </Panel>
  );
}

function CheckpointRow({ row: r }: { row: StoredCheckpointRow }) {
  return (
    <tr data-testid="storage-checkpoint" data-run-id={r.id}>
      <td>{r.name}</td>
      <td>{r.deletable ? r.status : `${r.status} (in use)`}</td>
      <td className="num">
        step {r.step} of {r.steps}
      </td>
      <td className="num">{r.bytes > 0 ? formatBytes(r.bytes) : '–'}</td>
      <td>
        {r.deletable && (
          <button
            className="btn btn-ghost btn-sm"
            data-testid="storage-delete-checkpoint"
            aria-label={`Delete the checkpoint of ${r.name}`}
            onClick={() => deleteStoredCheckpoints([r.id])}
          >
            Delete
          </button>
        )}
      </td>
    </tr>
  );
}

function StorageUsage() {
  const use = useStorageStatus((s) => s.use);
  return (
    <div data-testid="storage-usage">
      {use
        ? `This site uses ${formatBytes(use.usage)} of the ${formatBytes(use.quota)} the browser allows it.`
        : 'This browser does not say how much storage the site uses.'}
    </div>
  );
}

function StoragePersistence() {
  const persisted = useStorageStatus((s) => s.persisted);
  return (
    <div data-testid="storage-persisted" data-persisted={persisted === null ? 'unknown' : String(persisted)}>
      {persisted === true && 'Persistent: the browser keeps the studio’s runs until you delete them.'}
      {persisted === false &&
        'Not persistent: the browser may delete the studio’s runs when the disk runs low on space (it decides whether to grant persistence; bookmarking or installing the site helps). Export the runs you want to keep.'}
      {persisted === null && 'This browser does not say whether it keeps the studio’s runs when space runs low.'}
    </div>
  );
}

/** Said only where tabs cannot coordinate: without Web Locks every tab would use the GPU and write on its own. */
function TabCoordination() {
  const alone = useGpuRole((s) => s.role === 'alone');
  const unheard = typeof BroadcastChannel !== 'function';
  if (!alone && !unheard) return null;
  return (
    <div className="muted" data-testid="storage-tabs">
      {alone
        ? 'This browser cannot coordinate the studio’s tabs (no Web Locks): use the studio in one tab at a time.'
        : 'Changes made in another tab of the studio show here after a reload.'}
    </div>
  );
}

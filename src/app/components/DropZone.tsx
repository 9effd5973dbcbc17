/** A drop target for files or folders, with the browse buttons beside it. */
import { useRef, useState, type ReactNode } from 'react';
import { collectDropped, type DroppedFiles } from '../files';
import { droppedHandles, type EntryHandle } from '../handles';

export function DropZone(props: {
  /** `handles`: what the browser gave to reopen the drop after a reload (none outside Chromium). */
  onFiles(dropped: DroppedFiles, handles: EntryHandle[]): void;
  children: ReactNode;
  testId?: string;
  compact?: boolean;
  label: string;
}) {
  const [over, setOver] = useState(false);
  // dragenter/dragleave fire for every child element: count them so the highlight does not flicker.
  const depth = useRef(0);
  return (
    <div
      className={`dropzone ${over ? 'over' : ''} ${props.compact ? 'compact' : ''}`}
      data-testid={props.testId}
      aria-label={props.label}
      onDragEnter={(e) => {
        e.preventDefault();
        depth.current++;
        setOver(true);
      }}
      onDragOver={(e) => {
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
      }}
      onDragLeave={() => {
        depth.current = Math.max(0, depth.current - 1);
        if (depth.current === 0) setOver(false);
      }}
      onDrop={(e) => {
        e.preventDefault();
        depth.current = 0;
        setOver(false);
        // Both must be taken synchronously: the browser empties the items after the event.
        const pending = collectDropped(e.dataTransfer);
        const handles = droppedHandles(e.dataTransfer.items);
        void Promise.all([pending, handles]).then(([dropped, kept]) => {
          if (dropped.files.length) props.onFiles(dropped, kept);
        });
      }}
    >
      {props.children}
    </div>
  );
}

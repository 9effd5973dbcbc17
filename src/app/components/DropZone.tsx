/** A drop target for files or folders, with the browse buttons beside it. */
import { useRef, useState, type ReactNode } from 'react';
import { collectDropped, type DroppedFiles } from '../files';

export function DropZone(props: {
  onFiles(dropped: DroppedFiles): void;
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
        const pending = collectDropped(e.dataTransfer);
        void pending.then((dropped) => {
          if (dropped.files.length) props.onFiles(dropped);
        });
      }}
    >
      {props.children}
    </div>
  );
}

/** Which runs the charts leave out: the legend's toggles, local to the charts (not saved). */
import { useCallback, useState } from 'react';

/** `hidden` with `id` toggled (a new set: React sees the change). */
export function toggled(hidden: ReadonlySet<string>, id: string): ReadonlySet<string> {
  const next = new Set(hidden);
  if (!next.delete(id)) next.add(id);
  return next;
}

export function useHiddenRuns(): [ReadonlySet<string>, (id: string) => void] {
  const [hidden, setHidden] = useState<ReadonlySet<string>>(() => new Set());
  const toggle = useCallback((id: string) => setHidden((h) => toggled(h, id)), []);
  return [hidden, toggle];
}

/** Who answers in the playground: the base model and finished runs, picked as pills, and one source's title line. */
import type { GenerationResult } from '../../worker/protocol';
import { formatDuration } from '../format';
import { useStudio } from '../store';
import { playgroundRuns } from '../visible-runs';
import { runColor } from './Panel';

export function PlaygroundSourcePicks() {
  const s = useStudio();
  const p = s.playground;
  const card = s.model.card;
  // Archived runs are not offered (nor generated with: the store asks the same).
  const available = playgroundRuns(s);
  const selected = p.selected ?? available;
  const toggle = (id: string) => {
    const next = selected.includes(id) ? selected.filter((x) => x !== id) : [...selected, id];
    s.setPlayground({ selected: next });
  };
  return (
    <div className="source-picks" title="Who answers: the base model and the finished runs picked here">
      <label className="check pill">
        <input
          type="checkbox"
          checked={p.includeBase}
          onChange={(e) => s.setPlayground({ includeBase: e.target.checked })}
        />{' '}
        Base model
      </label>
      {available.map((id) => (
        <label key={id} className="check pill">
          <input type="checkbox" checked={selected.includes(id)} onChange={() => toggle(id)} />
          <span className="run-dot" style={{ background: runColor(s.order.indexOf(id)) }} /> {s.runs[id].config.name}
        </label>
      ))}
      {card && available.length === 0 && <span className="muted small">Finished runs on {card.name} appear here.</span>}
    </div>
  );
}

const FINISH: Record<NonNullable<GenerationResult['finish']>, string> = {
  eos: 'ended',
  'stop-string': 'stop string',
  length: 'token limit',
  stopped: 'stopped',
};

/** "12 tokens · 3s · 4.1 tok/s · stop string": what a finished (or running) answer cost and why it ended. */
export function resultStats(r: GenerationResult | undefined): string {
  if (!r) return 'waiting';
  const parts = [`${r.tokens} tokens`, formatDuration(r.ms)];
  if (r.tokens > 1 && r.ms > 0) parts.push(`${((1000 * r.tokens) / r.ms).toFixed(1)} tok/s`);
  if (r.done && r.finish) parts.push(FINISH[r.finish]);
  return parts.join(' · ');
}

/** The dot and name of a source ('base' or a run id). */
export function SourceName(props: { source: string }) {
  const s = useStudio();
  const isBase = props.source === 'base';
  const color = isBase ? 'var(--muted)' : runColor(s.order.indexOf(props.source));
  return (
    <>
      <span className="run-dot" style={{ background: color }} />{' '}
      {isBase ? `Base · ${s.model.card?.name ?? ''}` : (s.runs[props.source]?.config.name ?? 'Removed run')}
    </>
  );
}

/**
 * The playground's decoding settings: greedy or sampled (temperature, top-k, top-p, min-p, penalty, seed), stop
 * strings, length. Kept across reloads with the mode and system prompt (ui-prefs.ts, followed by the store).
 */
import { parseStopStrings, SAMPLING_DEFAULTS, type SamplingSettings } from '../../model/sampling';
import { useStudio } from '../store';
import { MAX_NEW_TOKENS_RANGE } from '../ui-prefs';
import { NumberField } from './Fields';

/** The form's names for the settings (validation messages use them). */
export const SAMPLING_LABELS: Record<keyof SamplingSettings, string> = {
  temperature: 'Temperature',
  topK: 'Top-k',
  topP: 'Top-p',
  minP: 'Min-p',
  repetitionPenalty: 'Repetition penalty',
  seed: 'Seed',
};

const HINTS: Record<keyof SamplingSettings, string> = {
  temperature: 'Divides the logits before the softmax: lower is more focused, higher more varied. 0 = greedy.',
  topK: 'Draw only among the k most likely tokens (tokens tied with the k-th stay). 0 = off.',
  topP: 'Draw only among the most likely tokens that together hold this much probability (nucleus). 1 = off.',
  minP: "Drop tokens less likely than min-p × the most likely token's probability. 0 = off.",
  repetitionPenalty:
    "transformers' repetition penalty on every token already in the prompt or the answer: above 1 discourages repeats. 1 = off.",
  seed: 'The same seed, prompt and settings give the same text again.',
};

const FIELDS: { key: keyof SamplingSettings; integer?: boolean }[] = [
  { key: 'temperature' },
  { key: 'topK', integer: true },
  { key: 'topP' },
  { key: 'minP' },
  { key: 'repetitionPenalty' },
];

/** Shows a stop string as typed in the field would write it: newlines as \n. */
const shown = (stop: string) => JSON.stringify(stop).slice(1, -1);

export function PlaygroundSettings() {
  const s = useStudio();
  const p = s.playground;
  const setSampling = (patch: Partial<SamplingSettings>) => s.setPlayground({ sampling: { ...p.sampling, ...patch } });
  const stops = parseStopStrings(p.stop);
  return (
    <div className="playground-settings" data-testid="playground-settings">
      <div className="playground-settings-head">
        <label
          className="switch"
          title="Always take the most likely token: deterministic, the same answer every time. Off: draw each token with the settings beside."
        >
          <input
            type="checkbox"
            role="switch"
            aria-checked={p.greedy}
            checked={p.greedy}
            onChange={(e) => s.setPlayground({ greedy: e.target.checked })}
            data-testid="greedy"
          />
          <span className="switch-track" aria-hidden />
          <span>Greedy</span>
        </label>
        <span className="muted small">
          {p.greedy
            ? 'The most likely token every time. Turn it off to sample.'
            : 'Sampled on the GPU: penalty → temperature → top-k → top-p → min-p, as transformers applies them.'}
        </span>
        {!p.greedy && (
          <button
            className="link small"
            onClick={() => s.setPlayground({ sampling: { ...SAMPLING_DEFAULTS, seed: p.sampling.seed } })}
          >
            Reset to defaults
          </button>
        )}
      </div>
      <div className="playground-fields">
        {FIELDS.map(({ key, integer }) => (
          <NumberField
            key={key}
            label={SAMPLING_LABELS[key]}
            value={p.sampling[key]}
            integer={integer}
            disabled={p.greedy}
            hint={HINTS[key]}
            onChange={(v) => setSampling({ [key]: v })}
          />
        ))}
        <div className="playground-seed">
          <NumberField
            label={SAMPLING_LABELS.seed}
            value={p.sampling.seed}
            integer
            disabled={p.greedy}
            hint={HINTS.seed}
            onChange={(seed) => setSampling({ seed })}
          />
          <button
            className="btn btn-sm btn-ghost"
            disabled={p.greedy}
            title="A new random seed"
            aria-label="New random seed"
            onClick={() => setSampling({ seed: Math.floor(Math.random() * 1_000_000) })}
          >
            ⚄
          </button>
        </div>
        <label
          className="field playground-stop"
          title="The text ends before the first of these. Comma-separated; \n is a newline, \, a comma."
        >
          <span className="field-label">Stop strings</span>
          <input
            type="text"
            value={p.stop}
            placeholder="e.g. \n\n, The end"
            onChange={(e) => s.setPlayground({ stop: e.target.value })}
            aria-label="Stop strings"
          />
          <span className="field-note">
            {stops.length ? stops.map((x) => `“${shown(x)}”`).join(' ') : 'none (EOS still stops)'}
          </span>
        </label>
        <label className="field playground-length">
          <span className="field-label">Max new tokens: {p.maxNewTokens}</span>
          <input
            type="range"
            min={MAX_NEW_TOKENS_RANGE.min}
            max={MAX_NEW_TOKENS_RANGE.max}
            step={MAX_NEW_TOKENS_RANGE.step}
            value={p.maxNewTokens}
            onChange={(e) => s.setPlayground({ maxNewTokens: Number(e.target.value) })}
            aria-label="Max new tokens"
          />
        </label>
      </div>
    </div>
  );
}

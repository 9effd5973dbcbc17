/** The playground: completion or chat, greedy or sampled, with the base model and each finished run side by side. */
import { samplingProblems } from '../../model/sampling';
import { useStudio } from '../store';
import { playgroundRuns } from '../visible-runs';
import { ChatView } from './ChatView';
import { Segmented } from './Fields';
import { Alert, Panel } from './Panel';
import { PlaygroundCompletion } from './PlaygroundCompletion';
import { SAMPLING_LABELS, PlaygroundSettings } from './PlaygroundSettings';
import { PlaygroundSourcePicks } from './PlaygroundSources';

export function PlaygroundPanel() {
  const s = useStudio();
  const p = s.playground;
  const card = s.model.card;
  const available = playgroundRuns(s);
  const selected = p.selected ?? available;
  const problems = p.greedy ? [] : samplingProblems(p.sampling, (key) => SAMPLING_LABELS[key]);
  const canGenerate =
    !!card &&
    s.model.ready &&
    p.requestId === null &&
    problems.length === 0 &&
    (p.includeBase || selected.some((id) => available.includes(id)));

  return (
    <Panel
      id="playground"
      step={8}
      title="Playground"
      subtitle="Complete a prompt or chat, greedy or sampled on the GPU, with the base model and each finished run side by side."
      actions={
        <Segmented
          label="Playground mode"
          value={p.mode}
          options={[
            ['completion', 'Completion'],
            ['chat', 'Chat'],
          ]}
          onChange={(mode) => s.setPlayground({ mode })}
        />
      }
    >
      {!card && (
        <Alert kind="info">
          Load a model to generate text. Past runs' adapters are kept and work again once their base model is loaded.
        </Alert>
      )}
      <PlaygroundSettings />
      <PlaygroundSourcePicks />
      {problems.length > 0 && (
        <Alert kind="error" testId="sampling-problems">
          {problems.join('; ')}.
        </Alert>
      )}
      {p.error && (
        <Alert kind="error" testId="generate-error">
          {p.error}
        </Alert>
      )}
      {p.mode === 'completion' ? (
        <PlaygroundCompletion canGenerate={canGenerate} />
      ) : (
        <ChatView canGenerate={canGenerate} />
      )}
    </Panel>
  );
}

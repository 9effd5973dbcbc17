import { describe, expect, it } from 'vitest';
import type { MethodAnalysis } from '../../src/engine/methods';
import { bestOf, comparisonGroups, type ComparisonRow, truncateMessage, verdictNote } from '../../src/app/comparison';
import type { RunRecord } from '../../src/app/run-record';
import type { RunSummary } from '../../src/worker/protocol';
import { record } from './fixtures';

function summary(finalValLoss: number | null, patch: Partial<RunSummary> = {}): RunSummary {
  return {
    steps: 40,
    stopReason: 'done',
    message: null,
    initialValLoss: 5,
    finalValLoss,
    trainableParams: 10_000,
    elapsedMs: 1000,
    tokensPerSecond: 100,
    tokens: 4000,
    trainExamples: 100,
    validationExamples: 10,
    peakGpuBytes: 1 << 20,
    ...patch,
  };
}

/** A finished run on model "m" and dataset "d" unless told otherwise. */
function run(id: string, loss: number | null, patch: Partial<RunRecord> = {}, params = 10_000): RunRecord {
  return record(id, {
    status: 'done',
    modelKey: 'm:llama:2:64',
    modelName: 'tiny-llama',
    datasetName: 'shakespeare.txt',
    datasetDigest: '1000:sha256:aaaa1111bbbb',
    summary: summary(loss, { trainableParams: params }),
    ...patch,
  });
}

const rows = (...runs: RunRecord[]): ComparisonRow[] => runs.map((r, index) => ({ run: r, index }));

function groupsOf(...runs: RunRecord[]) {
  return comparisonGroups(
    Object.fromEntries(runs.map((r) => [r.config.id, r])),
    runs.map((r) => r.config.id),
  );
}

describe('comparison groups', () => {
  it('puts runs of different models or datasets in separate groups, each with its own best', () => {
    const groups = groupsOf(
      run('a', 2.0),
      run('b', 3.0, { modelKey: 'other:gpt2', modelName: 'gpt2' }),
      run('c', 2.5),
      run('d', 1.0, { datasetName: 'alpaca.json', datasetDigest: '5:sha256:cccc' }),
      run('e', 4.0, { modelKey: 'other:gpt2', modelName: 'gpt2' }),
      run('f', 1.5, { datasetName: 'alpaca.json', datasetDigest: '5:sha256:cccc' }),
    );
    expect(groups.map((g) => [g.model, g.dataset, g.rows.map((r) => r.run.config.id)])).toEqual([
      ['tiny-llama', 'shakespeare.txt', ['a', 'c']],
      ['gpt2', 'shakespeare.txt', ['b', 'e']],
      ['tiny-llama', 'alpaca.json', ['d', 'f']],
    ]);
    // Globally, d (1.0, another dataset) is lowest; within each group, its own lowest wins.
    expect(groups.map((g) => g.verdict)).toEqual([
      { kind: 'best', id: 'a' },
      { kind: 'best', id: 'b' },
      { kind: 'best', id: 'd' },
    ]);
  });

  it('keeps run-list positions (colours) and skips runs without results; lists failed runs', () => {
    const draft = record('draft');
    const failed = run('x', null, { status: 'failed', summary: null, message: 'Device lost' });
    const groups = groupsOf(draft, run('a', 2), failed);
    expect(groups).toHaveLength(1);
    expect(groups[0].rows.map((r) => [r.run.config.id, r.index])).toEqual([
      ['a', 1],
      ['x', 2],
    ]);
  });

  it('tells apart two files of one name by their hashes', () => {
    const groups = groupsOf(run('a', 2), run('b', 2, { datasetDigest: '1000:sha256:ffff2222eeee' }));
    expect(groups.map((g) => g.dataset)).toEqual([
      'shakespeare.txt (sha256 aaaa1111…)',
      'shakespeare.txt (sha256 ffff2222…)',
    ]);
  });
});

describe('best of a group', () => {
  it('marks the lowest validation loss when it leads clearly and budgets match', () => {
    expect(bestOf(rows(run('a', 2.0), run('b', 2.2), run('c', 2.1)))).toEqual({ kind: 'best', id: 'a' });
  });

  it('needs two runs with a validation loss', () => {
    expect(bestOf(rows(run('a', 2.0)))).toEqual({ kind: 'none' });
    expect(bestOf(rows(run('a', 2.0), run('b', null)))).toEqual({ kind: 'none' });
  });

  it('marks no best on a lead within noise (1%)', () => {
    const v = bestOf(rows(run('a', 2.0), run('b', 2.01)));
    expect(v).toMatchObject({ kind: 'tie', id: 'a', other: 'b' });
    expect(bestOf(rows(run('a', 2.0), run('b', 2.0)))).toMatchObject({ kind: 'tie' });
  });

  it('never marks best a run whose budget differs by more than ±5% from a run it beats', () => {
    // GoRA at 84% of the budget, lowest loss by far: not "best".
    const gora = run('gora', 1.5, {}, 8_400);
    expect(bestOf(rows(run('lora', 2.0), gora, run('gralora', 2.2)))).toEqual({
      kind: 'budget-differs',
      id: 'gora',
      other: 'lora',
      ratio: 0.84,
    });
    // Nor when the bigger budget wins.
    expect(bestOf(rows(run('big', 1.5, {}, 12_000), run('lora', 2.0)))).toMatchObject({
      kind: 'budget-differs',
      id: 'big',
    });
    // Within ±5% (GeLoRA at 96%): comparable.
    expect(bestOf(rows(run('gelora', 1.5, {}, 9_600), run('lora', 2.0)))).toEqual({ kind: 'best', id: 'gelora' });
  });

  it('reads the exact count from the method analysis when there is one', () => {
    const analysis = { trainableParameters: 8_000 } as MethodAnalysis;
    expect(bestOf(rows(run('a', 1.5, { analysis }), run('b', 2.0)))).toMatchObject({ kind: 'budget-differs' });
  });

  it('leaves failed runs out: their NaN or last-good loss never wins or counts', () => {
    const failedNaN = run('f', Number.NaN, { status: 'failed', message: 'Loss became NaN at step 12' });
    const failedLow = run('g', 0.5, { status: 'failed', message: 'Loss became NaN at step 30' });
    expect(bestOf(rows(run('a', 2.0), failedNaN, failedLow, run('b', 2.5)))).toEqual({ kind: 'best', id: 'a' });
    // A failed run with a smaller budget blocks nothing: it is not a run "beaten".
    expect(bestOf(rows(run('a', 2.0), run('s', 3, { status: 'failed' }, 1), run('b', 2.5)))).toEqual({
      kind: 'best',
      id: 'a',
    });
    expect(bestOf(rows(run('a', 2.0), failedLow))).toEqual({ kind: 'none' });
  });
});

describe('wording', () => {
  const names = (id: string) => `run ${id}`;

  it('says why there is no best', () => {
    expect(verdictNote({ kind: 'budget-differs', id: 'g', other: 'l', ratio: 0.84 }, names)).toMatchObject({
      id: 'g',
      text: 'not comparable: budget differs',
      why: expect.stringContaining('run g trains 84% of the trainable parameters of run l'),
    });
    expect(verdictNote({ kind: 'tie', id: 'a', other: 'b', lead: 0.005 }, names)).toMatchObject({
      id: 'a',
      text: 'no clear winner',
    });
    expect(verdictNote({ kind: 'best', id: 'a' }, names)).toBeNull();
  });

  it('truncates long failure messages to one line', () => {
    expect(truncateMessage('Loss became NaN.')).toBe('Loss became NaN.');
    const long = `The GPU device was lost:\n${'x'.repeat(200)}`;
    const cut = truncateMessage(long, 40);
    expect(cut).toHaveLength(40);
    expect(cut.endsWith('…')).toBe(true);
    expect(cut).not.toContain('\n');
  });
});

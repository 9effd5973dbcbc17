import { describe, expect, it } from 'vitest';
import {
  BatchStream,
  packBatches,
  padBatches,
  splitTrainValidation,
  truncate,
  type Batch,
} from '../../src/data/batches';
import type { Example } from '../../src/data/types';
import { Rng } from '../../src/util/random';

const M = -100;
const PAD = 0;
const SEP = 2;

function row(batch: Batch, b: number) {
  const s = batch.seq;
  return {
    tokens: [...batch.tokens.slice(b * s, (b + 1) * s)],
    targets: [...batch.targets.slice(b * s, (b + 1) * s)],
    positions: [...batch.positions.slice(b * s, (b + 1) * s)],
  };
}

function supervisedCount(batch: Batch): number {
  return batch.targets.filter((t) => t !== M).length;
}

describe('truncate', () => {
  it('cuts ids and labels together, leaves short examples alone', () => {
    const ex = { inputIds: [1, 2, 3, 4], labels: [M, 2, 3, 4] };
    expect(truncate(ex, 3)).toEqual({ inputIds: [1, 2, 3], labels: [M, 2, 3] });
    expect(truncate(ex, 4)).toBe(ex);
  });
});

describe('padBatches', () => {
  it('shifts labels into next-token targets, -100 at the last real position and on padding', () => {
    const examples: Example[] = [
      { inputIds: [1, 10, 11, 12], labels: [M, M, 11, 12] },
      { inputIds: [1, 20], labels: [M, 20] },
    ];
    const [batch, ...rest] = padBatches(examples, { batch: 2, seq: 6, padId: PAD });
    expect(rest).toEqual([]);
    expect(row(batch, 0)).toEqual({
      tokens: [1, 10, 11, 12, PAD, PAD],
      targets: [M, 11, 12, M, M, M],
      positions: [0, 1, 2, 3, 4, 5],
    });
    expect(row(batch, 1)).toEqual({
      tokens: [1, 20, PAD, PAD, PAD, PAD],
      targets: [20, M, M, M, M, M],
      positions: [0, 1, 2, 3, 4, 5],
    });
    expect(batch.supervised).toBe(3);
    expect(batch.tokens).toBeInstanceOf(Uint32Array);
    expect(batch.targets).toBeInstanceOf(Int32Array);
    expect(batch.positions).toBeInstanceOf(Uint32Array);
  });

  it('truncates to seq and fills the last batch with fully ignored rows', () => {
    const examples = [0, 1, 2].map((k) => ({ inputIds: [5 + k, 6, 7, 8, 9], labels: [5 + k, 6, 7, 8, 9] }));
    const batches = padBatches(examples, { batch: 2, seq: 3, padId: 99 });
    expect(batches).toHaveLength(2);
    expect(row(batches[0], 0)).toEqual({ tokens: [5, 6, 7], targets: [6, 7, M], positions: [0, 1, 2] });
    expect(row(batches[1], 0).tokens).toEqual([7, 6, 7]);
    expect(row(batches[1], 1)).toEqual({ tokens: [99, 99, 99], targets: [M, M, M], positions: [0, 1, 2] });
    expect(batches.map((b) => [b.batch, b.seq, b.tokens.length, b.supervised])).toEqual([
      [2, 3, 6, 4],
      [2, 3, 6, 2],
    ]);
  });

  it('validates the shape', () => {
    expect(() => padBatches([], { batch: 0, seq: 4, padId: 0 })).toThrow('batch must be a positive integer, got 0');
    expect(() => padBatches([], { batch: 1, seq: 1, padId: 0 })).toThrow('seq must be an integer >= 2, got 1');
    expect(() => padBatches([], { batch: 1, seq: 4, padId: -1 })).toThrow('padId must be a token id, got -1');
  });
});

describe('packBatches', () => {
  it('joins examples with a supervised separator; positions restart; nothing crosses an example', () => {
    const examples: Example[] = [
      { inputIds: [1, 10, 11], labels: [M, 10, 11] },
      { inputIds: [1, 20, 21, SEP], labels: [M, M, 21, SEP] }, // already ends with SEP: none added
      { inputIds: [1, 30], labels: [M, 30] },
    ];
    const batches = packBatches(examples, { batch: 2, seq: 5, padId: PAD, separatorId: SEP });
    // Stream: 1 10 11 SEP | 1 20 21 SEP | 1 30 SEP  (11 tokens) -> rows of 5: 3 rows -> 2 batches.
    expect(batches).toHaveLength(2);
    expect(row(batches[0], 0)).toEqual({
      tokens: [1, 10, 11, SEP, 1],
      targets: [10, 11, SEP, M, M],
      positions: [0, 1, 2, 3, 0],
    });
    expect(row(batches[0], 1)).toEqual({
      tokens: [20, 21, SEP, 1, 30],
      targets: [21, SEP, M, 30, M], // row start: example 2 continues at position 0; its 20 -> 21 target survives
      positions: [0, 1, 2, 0, 1],
    });
    expect(row(batches[1], 0)).toEqual({
      tokens: [SEP, PAD, PAD, PAD, PAD],
      targets: [M, M, M, M, M],
      positions: [0, 1, 2, 3, 4],
    });
    expect(row(batches[1], 1)).toEqual({
      tokens: [PAD, PAD, PAD, PAD, PAD],
      targets: [M, M, M, M, M],
      positions: [0, 1, 2, 3, 4],
    });
    expect(batches[0].supervised).toBe(6);
    expect(batches[1].supervised).toBe(0);
  });

  it('adds no separator when separatorId is null', () => {
    const examples = [
      { inputIds: [7, 8], labels: [7, 8] },
      { inputIds: [9, 10], labels: [9, 10] },
    ];
    const [batch] = packBatches(examples, { batch: 1, seq: 4, padId: PAD, separatorId: null });
    expect(row(batch, 0)).toEqual({ tokens: [7, 8, 9, 10], targets: [8, M, 10, M], positions: [0, 1, 0, 1] });
  });

  it('random examples: the stream is preserved and every target is the next token of the same example', () => {
    const rng = new Rng(7);
    const examples: Example[] = Array.from({ length: 23 }, () => {
      const ids = Array.from({ length: 1 + rng.int(17) }, () => 3 + rng.int(50));
      return { inputIds: ids, labels: ids.slice() }; // all supervised: target must equal next token
    });
    const seq = 7;
    const batches = packBatches(examples, { batch: 3, seq, padId: PAD, separatorId: SEP });
    const stream = examples.flatMap((e) => [...e.inputIds, SEP]);
    const tokens = batches.flatMap((b) => [...b.tokens]);
    expect(tokens.slice(0, stream.length)).toEqual(stream);
    expect(tokens.slice(stream.length).every((t) => t === PAD)).toBe(true);
    for (const b of batches) {
      expect(b.tokens.length).toBe(3 * seq);
      expect(b.supervised).toBe(supervisedCount(b));
      for (let i = 0; i < b.tokens.length; i++) {
        expect(b.positions[i]).toBeLessThan(seq);
        const sameRowNext = (i + 1) % seq !== 0 && b.positions[i + 1] === b.positions[i] + 1 && b.tokens[i] !== SEP;
        expect(b.targets[i]).toBe(sameRowNext && b.tokens[i + 1] !== PAD ? b.tokens[i + 1] : M);
      }
    }
  });
});

describe('splitTrainValidation', () => {
  const items = Array.from({ length: 50 }, (_, i) => i);

  it('is deterministic, disjoint and complete, and keeps the original order', () => {
    const a = splitTrainValidation(items, 0.2, 123);
    expect(splitTrainValidation(items, 0.2, 123)).toEqual(a);
    expect(a.validation).toHaveLength(10);
    expect(a.train).toHaveLength(40);
    expect([...a.train, ...a.validation].sort((x, y) => x - y)).toEqual(items);
    expect(a.train).toEqual([...a.train].sort((x, y) => x - y));
    expect(a.validation).toEqual([...a.validation].sort((x, y) => x - y));
    expect(splitTrainValidation(items, 0.2, 124).validation).not.toEqual(a.validation);
  });

  it('handles the edges', () => {
    expect(splitTrainValidation(items, 0, 1)).toEqual({ train: items, validation: [] });
    expect(splitTrainValidation([1, 2], 0.01, 1).validation).toHaveLength(1);
    expect(splitTrainValidation([1, 2], 0.9, 1).train).toHaveLength(1);
    expect(splitTrainValidation([1], 0.5, 1)).toEqual({ train: [1], validation: [] });
    expect(() => splitTrainValidation(items, 1, 1)).toThrow('validationFraction must be in [0, 1), got 1');
  });
});

describe('BatchStream', () => {
  // Example k starts with token 100 + k so a row tells which example it holds.
  const examples: Example[] = Array.from({ length: 10 }, (_, k) => ({
    inputIds: [100 + k, ...Array.from({ length: 1 + (k % 4) }, (_, j) => 10 + j)],
    labels: [100 + k, ...Array.from({ length: 1 + (k % 4) }, (_, j) => 10 + j)],
  }));
  const opts = { batch: 3, seq: 6, padId: PAD, seed: 5 };

  function epochOrder(stream: BatchStream): number[] {
    const seen: number[] = [];
    for (let s = 0; s < stream.stepsPerEpoch; s++) {
      const b = stream.next();
      for (let r = 0; r < b.batch; r++) if (b.tokens[r * b.seq] >= 100) seen.push(b.tokens[r * b.seq] - 100);
    }
    return seen;
  }

  it('pad mode: each epoch holds every example once, reshuffled per epoch, reproducibly', () => {
    const stream = new BatchStream(examples, { ...opts, shuffle: true, mode: 'pad' });
    expect(stream.stepsPerEpoch).toBe(4);
    const e0 = epochOrder(stream);
    expect(stream.epoch).toBe(0);
    const e1 = epochOrder(stream);
    expect(stream.epoch).toBe(1);
    expect([...e0].sort((a, b) => a - b)).toEqual([...examples.keys()]);
    expect([...e1].sort((a, b) => a - b)).toEqual([...examples.keys()]);
    expect(e1).not.toEqual(e0);

    const again = new BatchStream(examples, { ...opts, shuffle: true, mode: 'pad' });
    expect(epochOrder(again)).toEqual(e0);
    expect(epochOrder(again)).toEqual(e1);
    const otherSeed = new BatchStream(examples, { ...opts, seed: 6, shuffle: true, mode: 'pad' });
    expect(epochOrder(otherSeed)).not.toEqual(e0);
  });

  it('without shuffle keeps the order; the last batch is filled with ignored rows', () => {
    const stream = new BatchStream(examples, { ...opts, shuffle: false, mode: 'pad' });
    expect(epochOrder(stream)).toEqual([...examples.keys()]);
    const last = padBatches(examples.slice(9), opts)[0];
    const again = new BatchStream(examples, { ...opts, shuffle: false, mode: 'pad' });
    for (let s = 0; s < 3; s++) again.next();
    expect(again.next()).toEqual(last);
    expect(again.next()).toEqual(padBatches(examples.slice(0, 3), opts)[0]); // next epoch starts over
    expect(again.epoch).toBe(1);
  });

  it('pack mode: steps per epoch match packBatches and batches are deterministic', () => {
    const stream = new BatchStream(examples, { ...opts, separatorId: SEP, shuffle: true, mode: 'pack' });
    const packed = packBatches(examples, { ...opts, separatorId: SEP });
    expect(stream.stepsPerEpoch).toBe(packed.length);
    const twin = new BatchStream(examples, { ...opts, separatorId: SEP, shuffle: true, mode: 'pack' });
    for (let s = 0; s < 3 * stream.stepsPerEpoch; s++) expect(stream.next()).toEqual(twin.next());
    expect(stream.epoch).toBe(2);

    const ordered = new BatchStream(examples, { ...opts, separatorId: SEP, shuffle: false, mode: 'pack' });
    expect(ordered.next()).toEqual(packed[0]);
  });

  it('needs at least one example', () => {
    expect(() => new BatchStream([], { ...opts, shuffle: false, mode: 'pad' })).toThrow(
      'BatchStream needs at least one example',
    );
  });
});

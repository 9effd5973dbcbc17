/**
 * A model with a real model's shapes and random weights generated in memory (no download): what the bench
 * measures throughput and memory on when a real checkpoint is too large to ship. Matrices ~ N(0, 0.02²) and norm
 * weights 1, stored as bf16 like the published checkpoints; the tokenizer is a stub (the bench's data are
 * synthetic token ids).
 */
import { expectedTensors, parseConfig, type ModelSpec } from '../model/config';
import type { TensorSource } from '../model/weights';
import { halfCapableTensors } from '../model/weights';
import type { TextTokenizer } from '../tokenizer/tokenizer';
import { Rng } from '../util/random';
import { MODEL_SHAPES } from './memory';

export interface GeneratedModel {
  name: string;
  spec: ModelSpec;
  source: TensorSource;
  tokenizer: TextTokenizer;
}

export function generatedModel(shape: string, seed = 0): GeneratedModel {
  const config = MODEL_SHAPES[shape];
  if (!config)
    throw new Error(`bench: unknown model shape "${shape}" (choose from ${Object.keys(MODEL_SHAPES).join(', ')})`);
  const spec = parseConfig(config, `${shape}/config.json`);
  const sizes = new Map(expectedTensors(spec).map((t) => [t.name, t.shape.reduce((a, b) => a * b, 1)]));
  const half = halfCapableTensors(spec);
  const source: TensorSource = {
    // Each tensor from its own seeded stream, so a tensor's values do not depend on the load order.
    load: async (name) => {
      const n = sizes.get(name);
      if (n === undefined) throw new Error(`${shape} has no tensor ${name}`);
      if (/norm\.weight$/.test(name)) return new Float32Array(n).fill(1);
      return new Rng(seed * 7919 + hash(name)).normals(n, 0.02);
    },
    dtype: (name) => (half.has(name) ? 'bf16' : 'f32'),
  };
  return { name: `${shape} (generated)`, spec, source, tokenizer: idsOnlyTokenizer(spec.vocabSize) };
}

/** A tokenizer for data that is already token ids: it knows the vocabulary size and pads with 0. */
export function idsOnlyTokenizer(vocabSize: number): TextTokenizer {
  return {
    vocabSize,
    bosId: null,
    eosId: null,
    padId: 0,
    addBos: false,
    encode: () => [],
    decode: () => '',
    tokenToId: () => null,
    chatTemplate: null,
  };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

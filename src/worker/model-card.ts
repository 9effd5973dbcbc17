/** The Model panel's card, from config.json and tokenizer.json alone (before any weight is read). */
import type { LoadedModel } from '../engine/load-model';
import { expectedTensors, type ModelSpec } from '../model/config';
import { plannedWeightBytes, storagePlan, type WeightStorage } from '../model/weights';
import type { ModelCard } from './protocol';

export function modelKey(spec: ModelSpec, name: string): string {
  return [
    name,
    spec.modelType,
    spec.layers,
    spec.hidden,
    spec.intermediate,
    spec.heads,
    spec.kvHeads,
    spec.headDim,
    spec.vocabSize,
  ].join(':');
}

export function parameterCount(spec: ModelSpec): number {
  return expectedTensors(spec).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
}

export function modelCard(
  model: LoadedModel,
  files: string[],
  demo: boolean,
  storage: WeightStorage = 'auto',
): ModelCard {
  const { spec, tokenizer } = model;
  const parameters = parameterCount(spec);
  const weights = plannedWeightBytes(spec, storagePlan(spec, model.source, storage));
  const tokenName = (id: number | null) => (id === null ? null : (tokenizer.idToToken(id) ?? `#${id}`));
  return {
    key: modelKey(spec, model.name),
    name: model.name,
    format: model.format,
    demo,
    files,
    modelType: spec.modelType,
    family: spec.family,
    layers: spec.layers,
    hidden: spec.hidden,
    heads: spec.heads,
    kvHeads: spec.kvHeads,
    headDim: spec.headDim,
    intermediate: spec.intermediate,
    vocabSize: spec.vocabSize,
    maxPositions: spec.maxPositions,
    tiedEmbeddings: spec.tieWordEmbeddings,
    parameters,
    weightBytes: weights.bytes,
    weightDtypes: weights.dtypes,
    weightStorage: storage,
    tokenizer: {
      vocabSize: tokenizer.vocabSize,
      bos: tokenName(tokenizer.bosId),
      eos: tokenName(tokenizer.eosId),
      chatTemplate: tokenizer.chatTemplate !== null,
    },
    warnings: model.warnings,
    ...(model.quantized ? { quantized: model.quantized } : {}),
    spec,
  };
}

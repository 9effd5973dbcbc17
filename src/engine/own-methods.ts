/**
 * Methods that build themselves (their folder's build.ts returns the whole MethodState: layers, analysis, export,
 * per-step work), by registry id. Methods that are a recipe of the shared parts (structure x allocation x init)
 * are built by buildMethod in methods.ts and are not listed here.
 */
import { buildAdalora } from '../adapters/adalora/build';
import { buildDora } from '../adapters/dora/build';
import { buildLoraga } from '../adapters/loraga/build';
import { buildPissa } from '../adapters/pissa/build';
import type { MethodId } from '../adapters/registry';
import type { OwnMethodBuilder } from './methods';

export const OWN_METHOD_BUILDERS: Partial<Record<MethodId, OwnMethodBuilder>> = {
  pissa: buildPissa,
  loraga: buildLoraga,
  dora: buildDora,
  adalora: buildAdalora,
};

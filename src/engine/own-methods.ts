/**
 * Methods that build themselves (their folder's build.ts returns the whole MethodState: layers, analysis, export,
 * per-step work), by registry id. Methods that are a recipe of the shared parts (structure x allocation x init)
 * are built by buildMethod in methods.ts and are not listed here.
 */
import type { MethodId } from '../adapters/registry';
import type { OwnMethodBuilder } from './methods';

export const OWN_METHOD_BUILDERS: Partial<Record<MethodId, OwnMethodBuilder>> = {};

/** What "+ Add run" offers: a copy of the last run, or a fresh run of one method. Pure. */
import { METHOD_REGISTRY, methodDescriptor } from '../adapters/registry';
import type { MethodId, ModelCard, RunConfig } from '../worker/protocol';
import { defaultRun, describeRun } from './presets';
import type { RunList } from './run-record';

/** A new run of `method` with the studio's defaults, at the learning rate the method is usually trained at here. */
export function methodPreset(method: MethodId, card: ModelCard | null): RunConfig {
  const c: RunConfig = { ...defaultRun(card), method, lr: methodDescriptor(method).usualLr };
  return { ...c, name: describeRun(c, card?.family) };
}

/** The methods a preset can be made of, in registry order, with the menu's text. */
export const PRESET_METHODS: { id: MethodId; label: string }[] = METHOD_REGISTRY.map((m) => ({
  id: m.id,
  label: m.choiceLabel,
}));

/** The run "+ Add run" copies: the last in the list, archived or not (null: it starts from the defaults). */
export function copiedRun(list: RunList): RunConfig | null {
  const id = list.order[list.order.length - 1];
  return id ? list.runs[id].config : null;
}

/**
 * The store's run-management actions: presets, notes and tags, archiving, removing several runs, clearing the
 * drafts, importing a run configuration. Written over the store's get and set (like experiment-actions.ts), with
 * the store's own helpers injected, so they run in node without a worker. Confirmations are the panel's business.
 */
import type { MethodId, RunConfig } from '../worker/protocol';
import { defaultRun, describeRun, newRunId } from './presets';
import { parseRunConfigJson } from './run-config-json';
import { methodPreset } from './run-presets';
import { isActive, patchedRuns } from './run-record';
import { cleanTags } from './run-tags';
import type { StudioState } from './store';

export interface RunActions {
  /** Adds a draft of `method` with the defaults and the method's usual learning rate. */
  addPresetRun(method: MethodId): void;
  setRunNotes(id: string, notes: string): void;
  /** Sets the run's tags (cleaned: trimmed, without duplicates). */
  setRunTags(id: string, tags: string[]): void;
  /** Archives (hides from the list) or restores runs; queued or training runs are left as they are. */
  setRunsArchived(ids: string[], archived: boolean): void;
  /** Removes runs with their metrics, adapters and checkpoints (active ones are cancelled first). */
  removeRuns(ids: string[]): void;
  /** Removes every draft. */
  clearDrafts(): void;
  /** Adds a draft from a run configuration file; returns the problems (each naming its field) when it cannot. */
  importRunConfig(text: string): string[];
}

export interface RunActionDeps {
  /** Adds drafts of these configurations at the end of the list (store.ts). */
  addRecords(configs: RunConfig[]): void;
  /** `name`, or "name (2)" when a run has it (store.ts). */
  uniqueName(name: string): string;
}

export function createRunActions(
  get: () => StudioState,
  set: (update: (s: StudioState) => Partial<StudioState>) => void,
  deps: RunActionDeps,
): RunActions {
  const addDraft = (config: RunConfig) => deps.addRecords([{ ...config, name: deps.uniqueName(config.name) }]);

  return {
    addPresetRun(method) {
      addDraft(methodPreset(method, get().model.card));
    },

    setRunNotes(id, notes) {
      set((s) => patchedRuns(s.runs, id, { notes }));
    },

    setRunTags(id, tags) {
      set((s) => patchedRuns(s.runs, id, { tags: cleanTags(tags) }));
    },

    setRunsArchived(ids, archived) {
      set((s) => {
        const runs = { ...s.runs };
        for (const id of ids) {
          const r = runs[id];
          if (r && !isActive(r) && r.archived !== archived) runs[id] = { ...r, archived };
        }
        return { runs };
      });
    },

    removeRuns(ids) {
      for (const id of ids) get().removeRun(id);
    },

    clearDrafts() {
      const s = get();
      get().removeRuns(s.order.filter((id) => s.runs[id].status === 'draft'));
    },

    importRunConfig(text) {
      const card = get().model.card;
      const { id: _id, ...defaults } = defaultRun(card);
      const result = parseRunConfigJson(text, defaults, (c) => describeRun(c, card?.family));
      if (!result.ok) return result.problems;
      addDraft({ ...result.settings, id: newRunId() });
      return [];
    },
  };
}

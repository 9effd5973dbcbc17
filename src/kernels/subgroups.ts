/**
 * Reductions with and without subgroup operations, side by side in one WGSL file:
 *
 *   // subgroups:begin
 *   ...shared-memory version (any device)...
 *   // subgroups:alternative
 *   ...subgroup version (same names and signatures)...
 *   // subgroups:end
 *
 * The file as written is not valid WGSL; each form keeps one half of every block, so each half is compiled
 * only where it is valid. The subgroup form also opens with `enable subgroups;` and is named
 * `<name>+subgroups`, so the module and pipeline caches keep the two apart.
 *
 * Subgroup built-ins can only be entry-point inputs, so entry points take an `Invocation` and pass it to the
 * reductions; each form declares it here with the built-ins it needs.
 */
import type { CommandList, KernelSource } from '../gpu/gpu';

export interface SubgroupForms {
  plain: KernelSource;
  subgroups: KernelSource;
}

export const INVOCATION = {
  plain: 'struct Invocation {\n  @builtin(local_invocation_index) lid: u32,\n}\n',
  subgroups:
    'struct Invocation {\n  @builtin(local_invocation_index) lid: u32,\n  @builtin(subgroup_id) sg: u32,\n' +
    '  @builtin(num_subgroups) numSg: u32,\n  @builtin(subgroup_invocation_id) sgLane: u32,\n}\n',
};

const BLOCK =
  /\/\/ subgroups:begin[^\n]*\n([\s\S]*?)\/\/ subgroups:alternative[^\n]*\n([\s\S]*?)\/\/ subgroups:end[^\n]*\n?/g;

/** Both forms of a source with `subgroups:` blocks. */
export function subgroupForms(source: KernelSource): SubgroupForms {
  const blocks = source.code.match(BLOCK)?.length ?? 0;
  if (blocks === 0) throw new Error(`${source.name} has no subgroups block`);
  // A block missing a marker would silently swallow the next one.
  if (blocks !== source.code.match(/\/\/ subgroups:begin/g)?.length)
    throw new Error(`${source.name}: unbalanced subgroups markers`);
  return {
    plain: { name: source.name, code: source.code.replace(BLOCK, (_m, plain: string) => plain) + INVOCATION.plain },
    subgroups: {
      name: `${source.name}+subgroups`,
      code: `enable subgroups;\n${source.code.replace(BLOCK, (_m, _plain: string, sub: string) => sub)}${INVOCATION.subgroups}`,
    },
  };
}

/**
 * The form this device can run: subgroups where the device has them and its compiler builds them (device.ts probes
 * that at setup: wgpu's naga, in Firefox and Deno, does not parse `enable subgroups;` yet).
 */
export function sourceFor(list: CommandList, forms: SubgroupForms): KernelSource {
  return list.gpu.handle.features.subgroups ? forms.subgroups : forms.plain;
}

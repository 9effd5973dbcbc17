import { describe, expect, it } from 'vitest';
import { INVOCATION, sourceFor, subgroupForms } from '../../src/kernels/subgroups';
import { testGpu, testGpuWithoutFeatures } from '../helpers/gpu';

const SOURCE = {
  name: 'demo',
  code: [
    '// header',
    'const A = 1u;',
    '// subgroups:begin (tree)',
    'fn f() -> u32 { return 1u; }',
    '// subgroups:alternative (subgroups)',
    'fn f() -> u32 { return 2u; }',
    '// subgroups:end',
    'fn g() {}',
    '// subgroups:begin',
    'fn h() {}',
    '// subgroups:alternative',
    'fn h2() {}',
    '// subgroups:end',
  ].join('\n'),
};

describe('subgroup source forms', () => {
  it('keeps one half of every block; the subgroup form is renamed and opens with the enable directive', () => {
    const { plain, subgroups } = subgroupForms(SOURCE);
    expect(plain.name).toBe('demo');
    expect(plain.code).toBe(
      ['// header', 'const A = 1u;', 'fn f() -> u32 { return 1u; }', 'fn g() {}', 'fn h() {}', ''].join('\n') +
        INVOCATION.plain,
    );
    expect(subgroups.name).toBe('demo+subgroups');
    expect(subgroups.code).toBe(
      [
        'enable subgroups;',
        '// header',
        'const A = 1u;',
        'fn f() -> u32 { return 2u; }',
        'fn g() {}',
        'fn h2() {}',
        '',
      ].join('\n') + INVOCATION.subgroups,
    );
    expect(plain.code).not.toMatch(/subgroups:/);
    expect(subgroups.code).not.toMatch(/subgroups:/);
  });

  it('rejects a source without blocks or with a marker missing', () => {
    expect(() => subgroupForms({ name: 'plain', code: 'fn f() {}' })).toThrow(/plain has no subgroups block/);
    const broken = SOURCE.code.replace('// subgroups:alternative (subgroups)\n', '');
    expect(() => subgroupForms({ name: 'broken', code: broken })).toThrow(/broken: unbalanced/);
  });

  // The kernel tests run their barrier-tree variants on both devices; that covers both forms only while
  // testGpu has subgroups, which every machine these tests run on provides (SwiftShader included).
  it('testGpu has subgroups and testGpuWithoutFeatures has not, so both forms are tested', async () => {
    const [on, off] = [await testGpu(), await testGpuWithoutFeatures()];
    expect(on.handle.features.subgroups, 'testGpu lacks subgroups: the subgroup kernels go untested').toBe(true);
    expect(off.handle.features.subgroups).toBe(false);
    const forms = subgroupForms(SOURCE);
    expect(sourceFor(on.list('on'), forms)).toBe(forms.subgroups);
    expect(sourceFor(off.list('off'), forms)).toBe(forms.plain);
  });
});

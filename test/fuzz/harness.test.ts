/** The fuzzing harness itself: what it counts as a failure must fail, or every fuzz test could pass vacuously. */
import { describe, expect, it } from 'vitest';
import { decodeToF32 } from '../../src/model/formats/safetensors';
import {
  AllocationError,
  applyJsonMutations,
  guardAllocations,
  loadsOrRefuses,
  namedErrorProblem,
  recordingSource,
} from '../helpers/fuzz';

describe('fuzz harness', () => {
  it('accepts only the project’s own errors that name the file', () => {
    expect(namedErrorProblem(new Error('a.json: bad'), ['a.json'])).toBeNull();
    expect(namedErrorProblem(new TypeError('a.json: x is not a function'), ['a.json'])).toMatch(/raw TypeError/);
    expect(namedErrorProblem(new Error('bad'), ['a.json'])).toMatch(/names none of a.json/);
    expect(
      namedErrorProblem(new Error("a.json: Cannot read properties of undefined (reading 'x')"), ['a.json']),
    ).toMatch(/engine error/);
    expect(namedErrorProblem(new Error('a.json: wrapped', { cause: new RangeError('deep') }), ['a.json'])).toMatch(
      /wraps a raw RangeError/,
    );
    expect(namedErrorProblem('text', ['a.json'])).toMatch(/non-Error/);
    const quoted = new Error('a.parquet: not a readable Parquet file (Cannot read properties of undefined)');
    expect(namedErrorProblem(quoted, ['a.parquet'], /not a readable Parquet file \(/)).toBeNull();
  });

  it('stops an allocation over the limit inside project code, and restores the constructors', async () => {
    const bytes = new Uint8Array(4000);
    const OriginalFloat32Array = Float32Array;
    await expect(guardAllocations(1000, async () => decodeToF32(bytes, 'F16'))).rejects.toBeInstanceOf(AllocationError);
    expect(globalThis.Float32Array).toBe(OriginalFloat32Array);
    expect((await guardAllocations(1 << 20, async () => decodeToF32(bytes, 'F16'))).length).toBe(2000);
    // A parser that catches the AllocationError and goes on is still caught.
    const swallowed = guardAllocations(100, async () => {
      try {
        new Float64Array(1000);
      } catch {}
      return 'loaded';
    });
    await expect(swallowed).rejects.toBeInstanceOf(AllocationError);
    expect(new Float32Array([1, 2])).toBeInstanceOf(Float32Array);
  });

  it('records reads past the end of a source', async () => {
    const src = recordingSource('x.bin', new Uint8Array(8));
    await expect(src.read(4, 8)).rejects.toThrow('x.bin');
    expect(src.pastEnd).toEqual(['read(4, 8) of a 8-byte file']);
  });

  it('reports a verify failure of a loaded input as a failure, not a refusal', async () => {
    await expect(
      loadsOrRefuses(() => 1, ['f'], {
        verify: () => {
          throw new Error('f: loaded something wrong');
        },
      }),
    ).rejects.toThrow('loaded something wrong');
  });

  it('JSON mutations can set "__proto__" as an own key', () => {
    const out = applyJsonMutations({ a: 1 }, [{ op: 'add', path: [], key: '__proto__', value: 5 }]) as object;
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(JSON.stringify(out)).toBe('{"a":1,"__proto__":5}');
  });
});

/** Python's repr(float) and json.dumps / json.loads as src/quant/python-float.ts writes and reads them. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dumpsPythonJson, parsePythonJson, PyFloat, pythonFloatRepr } from '../../src/quant/python-float';

describe('pythonFloatRepr', () => {
  it('writes what Python’s repr(float) writes', () => {
    const cases: [number, string][] = [
      [1.0, '1.0'],
      [1.249999968422344e-5, '1.249999968422344e-05'],
      [Math.fround(1.25e-5), '1.249999968422344e-05'],
      [0.1, '0.1'],
      [1e16, '1e+16'],
      [1e-5, '1e-05'],
      [123456789.0, '123456789.0'],
      [5e-324, '5e-324'],
      [1e15, '1000000000000000.0'],
      [9007199254740992, '9007199254740992.0'],
      [12345678901234568, '1.2345678901234568e+16'],
      [0.0001, '0.0001'],
      [0.00012345, '0.00012345'],
      [1.5e300, '1.5e+300'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [-2.5, '-2.5'],
      [-1e-7, '-1e-07'],
      [Math.fround(0.3), '0.30000001192092896'],
      [0.33929443359375, '0.33929443359375'],
      [100, '100.0'],
      [0, '0.0'],
      [-0, '-0.0'],
      [Infinity, 'inf'],
      [-Infinity, '-inf'],
      [Number.NaN, 'nan'],
    ];
    for (const [x, repr] of cases) expect(pythonFloatRepr(x), String(x)).toBe(repr);
  });
});

describe('Python JSON', () => {
  it('json.dumps: separators, ensure_ascii, ints and floats', () => {
    const value = { b: [1, new PyFloat(2), 2.5, null, true], a: 'é\n"\\\u007f\u{1F600}', c: {}, d: [] };
    expect(dumpsPythonJson(value)).toBe(
      '{"b": [1, 2.0, 2.5, null, true], "a": "\\u00e9\\n\\"\\\\\\u007f\\ud83d\\ude00", "c": {}, "d": []}',
    );
    expect(dumpsPythonJson(value, { indent: 2, sortKeys: true })).toBe(
      '{\n  "a": "\\u00e9\\n\\"\\\\\\u007f\\ud83d\\ude00",\n  "b": [\n    1,\n    2.0,\n    2.5,\n    null,\n    true\n  ],\n  "c": {},\n  "d": []\n}',
    );
    expect(dumpsPythonJson([new PyFloat(Number.NaN), new PyFloat(-Infinity), 2n ** 70n])).toBe(
      '[NaN, -Infinity, 1180591620717411303424]',
    );
  });

  it('json.loads keeps floats floats (6.0, 1e-05) and big ints exact', () => {
    const v = parsePythonJson('{"t": 6.0, "e": 1e-05, "i": 6, "big": 12345678901234567890, "n": NaN, "__proto__": 1}');
    expect(v).toMatchObject({ i: 6, big: 12345678901234567890n });
    const o = v as Record<string, unknown>;
    expect(o.t).toEqual(new PyFloat(6));
    expect(o.e).toEqual(new PyFloat(1e-5));
    expect(Object.keys(o)).toEqual(['t', 'e', 'i', 'big', 'n', '__proto__']);
    expect(() => parsePythonJson('{"a": 1,}', 'x.json')).toThrow(/x.json is not valid JSON/);
    expect(() => parsePythonJson('[1] 2')).toThrow(/extra data/);
  });

  it('re-dumps transformers’ config.json files byte for byte (indent 2, sorted keys)', () => {
    for (const model of ['gpt2', 'llama_tied_bf16', 'qwen3']) {
      const text = readFileSync(`test/fixtures/hf-golden/models/${model}/config.json`, 'utf8');
      expect(`${dumpsPythonJson(parsePythonJson(text), { indent: 2, sortKeys: true })}\n`).toBe(text);
    }
  });
});

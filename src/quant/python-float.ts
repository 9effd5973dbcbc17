/**
 * Python's number and JSON text, for files Python tools read and write byte for byte: `repr(float(x))`, and
 * `json.dumps` / `json.loads` keeping the int/float distinction JavaScript numbers lose (a config value 6.0 must stay
 * a float: transformers' BitsAndBytesConfig rejects an int llm_int8_threshold).
 */

/**
 * Python's `repr(float(x))`: the shortest digits that round-trip (the same digits as JavaScript's Number#toString,
 * both choosing the closest when several are as short), written as Python writes them: scientific when the decimal
 * exponent is below -4 or at least 16 (`1e-05`, `1e+16`, two exponent digits at least), else positional with at least
 * one fractional digit (`1.0`, `123456789.0`, `0.0001`); `inf`, `-inf`, `nan`, `-0.0`.
 */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const { digits, exponent } = shortestDigits(Math.abs(x));
  let body: string;
  if (exponent < -4 || exponent >= 16) {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${mantissa}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  } else if (exponent >= 0) {
    const whole = exponent + 1;
    body =
      digits.length <= whole
        ? `${digits}${'0'.repeat(whole - digits.length)}.0`
        : `${digits.slice(0, whole)}.${digits.slice(whole)}`;
  } else {
    body = `0.${'0'.repeat(-exponent - 1)}${digits}`;
  }
  return x < 0 ? `-${body}` : body;
}

/** The shortest round-trip significant digits of a positive finite x (no trailing zeros) and its decimal exponent. */
function shortestDigits(x: number): { digits: string; exponent: number } {
  const s = String(x);
  const e = s.indexOf('e');
  if (e >= 0) {
    // d[.ddd]e±k
    const mantissa = s.slice(0, e);
    return { digits: mantissa.replace('.', ''), exponent: Number(s.slice(e + 1)) };
  }
  const [whole, fraction = ''] = s.split('.');
  if (whole !== '0') {
    return { digits: (whole + fraction).replace(/0+$/, ''), exponent: whole.length - 1 };
  }
  const zeros = fraction.length - fraction.replace(/^0+/, '').length;
  return { digits: fraction.slice(zeros).replace(/0+$/, ''), exponent: -(zeros + 1) };
}

/** A JSON number Python reads as a float (it had a fraction or an exponent), whatever its value. */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** JSON as Python's json module sees it: floats are PyFloat, ints are numbers (bigint past 2^53). */
export type PyJson = null | boolean | number | bigint | string | PyFloat | PyJson[] | { [key: string]: PyJson };

/** Python's float text inside JSON: repr, with json's spellings of the non-finite values. */
function jsonFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  return pythonFloatRepr(x);
}

/** json.dumps' string escaping with ensure_ascii=True: everything outside ' '..'~' is escaped. */
function jsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i];
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (c < 0x20 || c > 0x7e) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

export interface DumpsOptions {
  /** json.dumps' indent: null writes one line with ', ' and ': ' separators; a number writes one item a line. */
  indent?: number | null;
  sortKeys?: boolean;
}

/**
 * Python's `json.dumps(value, indent=..., sort_keys=...)` with its defaults otherwise (ensure_ascii, ', ' / ': '
 * separators without indent, ',' / ': ' with it). A JS number is an int when it is an integer, else a float; wrap an
 * integral float in PyFloat.
 */
export function dumpsPythonJson(value: PyJson, options: DumpsOptions = {}): string {
  const indent = options.indent ?? null;
  const write = (v: PyJson, depth: number): string => {
    if (v === null) return 'null';
    if (v === true) return 'true';
    if (v === false) return 'false';
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : jsonFloat(v);
    if (typeof v === 'string') return jsonString(v);
    if (v instanceof PyFloat) return jsonFloat(v.value);
    const inner = indent === null ? '' : `\n${' '.repeat(indent * (depth + 1))}`;
    const outer = indent === null ? '' : `\n${' '.repeat(indent * depth)}`;
    const separator = indent === null ? ', ' : ',';
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return `[${v.map((item) => inner + write(item, depth + 1)).join(separator)}${outer}]`;
    }
    const keys = Object.keys(v);
    if (keys.length === 0) return '{}';
    if (options.sortKeys) keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${keys.map((k) => `${inner}${jsonString(k)}: ${write(v[k], depth + 1)}`).join(separator)}${outer}}`;
  };
  return write(value, 0);
}

/**
 * Python's `json.loads`: numbers with a fraction or an exponent become PyFloat, the others ints; NaN, Infinity and
 * -Infinity are accepted as Python accepts them. Object keys keep their order (a repeated key keeps its last value).
 */
export function parsePythonJson(text: string, what = 'JSON'): PyJson {
  let i = 0;
  const fail = (message: string): never => {
    throw new Error(`${what} is not valid JSON: ${message} at character ${i}`);
  };
  const space = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  };
  const literal = (word: string, value: PyJson): PyJson => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return value;
    }
    return fail(`unexpected ${JSON.stringify(text.slice(i, i + 10))}`);
  };
  const string = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail('invalid string');
    }
  };
  const number = (): PyJson => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!match) return fail('invalid number');
    i += match[0].length;
    if (match[2] !== undefined || match[3] !== undefined) return new PyFloat(Number(match[0]));
    const n = Number(match[0]);
    return Number.isSafeInteger(n) ? n : BigInt(match[0]);
  };
  const value = (): PyJson => {
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      const object: { [key: string]: PyJson } = {};
      space();
      if (text[i] === '}') {
        i++;
        return object;
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail('expected a key');
        const key = string();
        space();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        // defineProperty: a "__proto__" key is an ordinary key, as in Python.
        Object.defineProperty(object, key, { value: value(), enumerable: true, writable: true, configurable: true });
        space();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return object;
        } else fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const array: PyJson[] = [];
      space();
      if (text[i] === ']') {
        i++;
        return array;
      }
      for (;;) {
        array.push(value());
        space();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return array;
        } else fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true', true);
    if (c === 'f') return literal('false', false);
    if (c === 'n') return literal('null', null);
    if (c === 'N') return literal('NaN', new PyFloat(NaN));
    if (c === 'I') return literal('Infinity', new PyFloat(Infinity));
    if (c === '-' && text.startsWith('-Infinity', i)) return literal('-Infinity', new PyFloat(-Infinity));
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    return fail(c === undefined ? 'unexpected end' : `unexpected ${JSON.stringify(c)}`);
  };
  const result = value();
  space();
  if (i < text.length) fail('extra data');
  return result;
}

/**
 * GGUF metadata values, typed as gguf-py writes them: integers the converter adds with add_uint32 stay uint32,
 * Python ints inside arrays become int32, Python floats float32 (gguf-py GGUFValueType.get_type).
 */

/** GGUF value type codes (gguf-py constants.GGUFValueType). */
export const VALUE_TYPE = {
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
} as const;

export type GgufValue =
  | { type: 'uint32'; value: number }
  | { type: 'int32'; value: number }
  | { type: 'float32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'int32[]'; value: ArrayLike<number> }
  | { type: 'float32[]'; value: ArrayLike<number> };

/** Key -> value, in the order the file lists them. */
export type GgufMetadata = Map<string, GgufValue>;

export const uint32 = (value: number): GgufValue => {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new Error(`GGUF uint32 value out of range: ${value}`);
  }
  return { type: 'uint32', value };
};
export const int32 = (value: number): GgufValue => {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new Error(`GGUF int32 value out of range: ${value}`);
  }
  return { type: 'int32', value };
};
export const float32 = (value: number): GgufValue => ({ type: 'float32', value });
export const bool = (value: boolean): GgufValue => ({ type: 'bool', value });
export const string = (value: string): GgufValue => ({ type: 'string', value });
export const strings = (value: readonly string[]): GgufValue => ({ type: 'string[]', value });
export const int32s = (value: ArrayLike<number>): GgufValue => ({ type: 'int32[]', value });
export const float32s = (value: ArrayLike<number>): GgufValue => ({ type: 'float32[]', value });

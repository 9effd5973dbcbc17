/**
 * A dataset file's identity for resuming: its size and SHA-256. Files over WHOLE_LIMIT are identified by their
 * size and the SHA-256 of their first and last MiB, so a multi-GB file is not hashed whole on every load.
 */
const MIB = 2 ** 20;
const WHOLE_LIMIT = 64 * MIB;

export async function fileDigest(bytes: Uint8Array): Promise<string> {
  const whole = bytes.length <= WHOLE_LIMIT;
  const hashed = whole ? bytes : concat(bytes.subarray(0, MIB), bytes.subarray(bytes.length - MIB));
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', hashed as Uint8Array<ArrayBuffer>));
  const hex = Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${bytes.length}:${whole ? 'sha256' : 'sha256-ends'}:${hex}`;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

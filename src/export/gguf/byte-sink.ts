/** A growable little-endian byte buffer for the GGUF header (metadata and tensor infos). */
const utf8 = new TextEncoder();

export class ByteSink {
  private bytes = new Uint8Array(1 << 16);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  u8(v: number): void {
    this.reserve(1).setUint8(this.length - 1, v);
  }

  u32(v: number): void {
    this.reserve(4).setUint32(this.length - 4, v, true);
  }

  i32(v: number): void {
    this.reserve(4).setInt32(this.length - 4, v, true);
  }

  f32(v: number): void {
    this.reserve(4).setFloat32(this.length - 4, v, true);
  }

  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`GGUF uint64 value out of range: ${v}`);
    this.reserve(8).setBigUint64(this.length - 8, BigInt(v), true);
  }

  /** A GGUF string: uint64 byte length, then UTF-8 without a terminator. */
  string(s: string): void {
    const encoded = utf8.encode(s);
    this.u64(encoded.length);
    this.reserve(encoded.length);
    this.bytes.set(encoded, this.length - encoded.length);
  }

  /** The bytes written so far (a view, not a copy). */
  result(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  /** Grows the buffer so `n` more bytes fit, advances the length, and returns the view to write them through. */
  private reserve(n: number): DataView {
    const needed = this.length + n;
    if (needed > this.bytes.length) {
      let size = this.bytes.length * 2;
      while (size < needed) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length = needed;
    return this.view;
  }
}

/**
 * Gzip-compressed dataset files (`data.jsonl.gz`, how large datasets are often shipped), decompressed as they stream
 * with the platform's DecompressionStream (browsers, Node, Deno): never inflated whole in memory.
 */

/** A stream of bytes with how far into the file it has read (compressed bytes, for a .gz). */
export interface ByteStream {
  chunks: AsyncIterable<Uint8Array>;
  position(): number;
}

export function plainStream(chunks: AsyncIterable<Uint8Array>): ByteStream {
  let position = 0;
  return {
    position: () => position,
    chunks: (async function* () {
      for await (const chunk of chunks) {
        position += chunk.length;
        yield chunk;
      }
    })(),
  };
}

/** The decompressed bytes of a gzip stream; a damaged or cut file fails naming it. */
export function gunzipStream(name: string, compressed: AsyncIterable<Uint8Array>): ByteStream {
  let position = 0;
  return {
    position: () => position,
    chunks: (async function* () {
      const inflate = new DecompressionStream('gzip');
      const writer = inflate.writable.getWriter();
      const reader = inflate.readable.getReader();
      // The compressed side is fed while the decompressed side is read: each waits on the other's backpressure.
      const feed = (async () => {
        for await (const chunk of compressed) {
          position += chunk.length;
          await writer.write(chunk as Uint8Array<ArrayBuffer>);
        }
        await writer.close();
      })();
      // A feed error surfaces through the reader as well; this keeps it from being reported unhandled.
      feed.catch(() => {});
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          yield value;
        }
        await feed;
      } catch (err) {
        throw new Error(`${name}: not a readable gzip file (${(err as Error).message || 'damaged or cut short'})`, {
          cause: err,
        });
      } finally {
        reader.releaseLock();
      }
    })(),
  };
}

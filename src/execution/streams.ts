// Byte-level stream helpers for the egress gateway: counting what passes, and removing
// an injected secret from a response body even when it spans chunk boundaries.

/** Counts the bytes that pass (request bodies, TCP streams). */
export function countingStream(): { stream: TransformStream<Uint8Array, Uint8Array>; bytes: () => number } {
  let bytes = 0;
  const stream = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      bytes += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  return { stream, bytes: () => bytes };
}

const REDACTED = new TextEncoder().encode("[REDACTED]");

/** Replaces every occurrence of `secret` (as UTF-8 bytes) with [REDACTED]. */
export function redactingStream(secret: string): TransformStream<Uint8Array, Uint8Array> {
  const needle = new TextEncoder().encode(secret);
  let carry = new Uint8Array(0);
  const scan = (buffer: Uint8Array, final: boolean, controller: TransformStreamDefaultController<Uint8Array>) => {
    let start = 0;
    for (let i = 0; i + needle.length <= buffer.length; i++) {
      let hit = true;
      for (let j = 0; j < needle.length; j++) {
        if (buffer[i + j] !== needle[j]) {
          hit = false;
          break;
        }
      }
      if (hit) {
        controller.enqueue(buffer.subarray(start, i));
        controller.enqueue(REDACTED);
        i += needle.length - 1;
        start = i + 1;
      }
    }
    // Keep a tail that could be the start of a secret split across chunks.
    const keep = final ? 0 : Math.min(needle.length - 1, buffer.length - start);
    controller.enqueue(buffer.subarray(start, buffer.length - keep));
    carry = buffer.slice(buffer.length - keep);
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      const buffer = new Uint8Array(carry.length + chunk.length);
      buffer.set(carry);
      buffer.set(chunk, carry.length);
      scan(buffer, false, controller);
    },
    flush(controller) {
      scan(carry, true, controller);
    },
  });
}

/**
 * Content fingerprints for cache keys: files, text, and model weights.
 */
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync, readFileSync, statSync } from "node:fs";

export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** sha256 of a whole file (streamed in 4 MiB chunks). */
export function fileSha256(path: string): string {
  const h = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(4 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

/**
 * A quick content fingerprint of a large file: its size, and 64 KiB samples at 65 evenly spaced offsets
 * (first and last bytes included). Different weights differ in the sampled bytes with overwhelming
 * probability; use fileSha256 when a full hash is needed.
 */
export function fileFingerprint(path: string): string {
  const size = statSync(path).size;
  if (size <= 8 << 20) return sha256(readFileSync(path));
  const h = createHash("sha256");
  h.update(String(size));
  const fd = openSync(path, "r");
  try {
    const chunk = Buffer.alloc(64 << 10);
    for (let i = 0; i <= 64; i++) {
      const off = Math.min(size - chunk.length, Math.floor(((size - chunk.length) * i) / 64));
      const n = readSync(fd, chunk, 0, chunk.length, off);
      h.update(chunk.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

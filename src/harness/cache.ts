/**
 * The request cache: every answered harness request, keyed by a hash of the request, appended to a JSONL
 * file named after the model's fingerprint (weights, config and tokenizer), so an interrupted evaluation
 * rerun makes no model call twice, and an edited model (other weights, other fingerprint) never reads
 * the unedited model's answers.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { sha256 } from "../util/hash.js";
import { cacheDir } from "../util/paths.js";

export class RequestCache {
  private readonly map = new Map<string, unknown>();
  /** lines that could not be parsed (an interrupted write leaves at most one) */
  readonly skipped: number = 0;
  private needsNewline = false;

  constructor(readonly file: string) {
    if (existsSync(file)) {
      let skipped = 0;
      const text = readFileSync(file, "utf8");
      this.needsNewline = text.length > 0 && !text.endsWith("\n");
      for (const line of text.split("\n")) {
        if (!line) continue;
        try {
          const { k, r } = JSON.parse(line) as { k: string; r: unknown };
          if (typeof k === "string") this.map.set(k, r);
        } catch {
          skipped++;
        }
      }
      this.skipped = skipped;
    }
  }

  /** The cache file of a model fingerprint under `dir` (default: <cacheDir>/requests). */
  static forModel(fingerprint: string, dir = join(cacheDir(), "requests")): RequestCache {
    return new RequestCache(join(dir, `${fingerprint}.jsonl`));
  }

  static key(type: string, args: unknown): string {
    return sha256(JSON.stringify([type, args])).slice(0, 32);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): unknown {
    return this.map.get(key);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  /** Records answers and appends them to the file at once (one write per call). */
  add(entries: [string, unknown][]): void {
    if (entries.length === 0) return;
    for (const [k, r] of entries) this.map.set(k, r);
    mkdirSync(dirname(this.file), { recursive: true });
    // a write interrupted mid-line leaves a fragment: start on a fresh line after it
    const lines = entries.map(([k, r]) => JSON.stringify({ k, r })).join("\n") + "\n";
    appendFileSync(this.file, (this.needsNewline ? "\n" : "") + lines);
    this.needsNewline = false;
  }
}

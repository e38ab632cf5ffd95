/**
 * Reading benchmark files: CSV (RFC 4180: quoted fields, doubled quotes, newlines inside quotes, an
 * optional UTF-8 BOM), JSON lines, and where the shared data lives.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dataDir } from "../util/paths.js";

/** Parses CSV text into rows of fields. */
export function parseCsv(text: string): string[][] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field.length === 0) {
      quoted = true;
      i++;
    } else if (c === ",") {
      row.push(field);
      field = "";
      i++;
    } else if (c === "\n" || c === "\r") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i += c === "\r" && text[i + 1] === "\n" ? 2 : 1;
    } else {
      field += c;
      i++;
    }
  }
  if (field.length > 0 || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

export function readCsv(path: string): string[][] {
  return parseCsv(readText(path));
}

export function readText(path: string): string {
  if (!existsSync(path))
    throw new Error(
      `${path}: not found (set --data_dir or EDITEVAL_DATA to the folder holding the benchmark data)`,
    );
  return readFileSync(path, "utf8");
}

/** JSON lines: one object per non-empty line; an error names the file and line. */
export function readJsonl<T = Record<string, unknown>>(path: string): T[] {
  const out: T[] = [];
  readText(path)
    .split("\n")
    .forEach((line, i) => {
      if (line.trim() === "") return;
      try {
        out.push(JSON.parse(line) as T);
      } catch (e) {
        throw new Error(`${path}:${i + 1}: invalid JSON (${(e as Error).message})`);
      }
    });
  return out;
}

/** A file of a benchmark under the data folder (default: the shared data). */
export function dataFile(root: string | undefined, ...parts: string[]): string {
  return join(root ?? dataDir(), ...parts);
}

/**
 * results.csv: one ResultRow per line, RFC 4180 quoting (metric names such as
 * "exact_match,strict-match" contain commas). Numbers are written in JavaScript's shortest round-trip
 * form, so `fromCsv(toCsv(rows))` gives the rows back exactly. An absent optional field is an empty
 * cell; a `stderr` of null is written "NA" (pandas and R read both as missing).
 */
import { RESULT_FIELDS, type ResultField, type ResultRow } from "./types.js";
import { ReportInputError, validateRows } from "./validate.js";

const NULL_CELL = "NA";

function quote(cell: string): string {
  return /[",\r\n]/.test(cell) || cell !== cell.trim() ? `"${cell.replace(/"/g, '""')}"` : cell;
}

function cellOf(row: ResultRow, f: ResultField): string {
  const v = row[f];
  if (v === undefined) return "";
  if (v === null) return NULL_CELL;
  return typeof v === "number" ? String(v) : v;
}

/** The rows as CSV text with a header line (columns: RESULT_FIELDS), lines ending in "\n". */
export function toCsv(rows: readonly ResultRow[]): string {
  const lines = [RESULT_FIELDS.join(",")];
  for (const r of rows) lines.push(RESULT_FIELDS.map((f) => quote(cellOf(r, f))).join(","));
  return lines.join("\n") + "\n";
}

/** Splits CSV text into records of cells (RFC 4180: quoted cells, doubled quotes, CRLF or LF). */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let cells: string[] = [];
  let cell = "";
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // byte-order mark
  let quoted = false;
  let any = false; // the current record has content (so a trailing newline makes no empty record)
  for (; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else cell += c;
    } else if (c === '"' && cell === "") {
      quoted = true;
      any = true;
    } else if (c === ",") {
      cells.push(cell);
      cell = "";
      any = true;
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      if (any || cell !== "") {
        cells.push(cell);
        records.push(cells);
      }
      cells = [];
      cell = "";
      any = false;
    } else {
      cell += c;
      any = true;
    }
  }
  if (quoted) throw new ReportInputError("CSV: a quoted cell is not closed (a '\"' is missing)");
  if (any || cell !== "") {
    cells.push(cell);
    records.push(cells);
  }
  return records;
}

const NUMBER_FIELDS = new Set<ResultField>(["edits", "value", "stderr", "n", "seed"]);
const REQUIRED = new Set<ResultField>([
  "model",
  "method",
  "schedule",
  "edits",
  "benchmark",
  "metric",
  "value",
]);

/**
 * Parses results.csv (or any CSV with these column names, in any order; other columns are ignored) into
 * validated ResultRows. Errors name the row (0-based, the header not counted) and the field.
 */
export function fromCsv(text: string): ResultRow[] {
  const records = parseCsv(text);
  const header = records[0];
  if (!header)
    throw new ReportInputError(
      "CSV: the text is empty (expected a header line: " + RESULT_FIELDS.join(",") + ")",
    );
  const col = new Map<string, number>();
  header.forEach((h, j) => col.set(h.trim(), j));
  for (const f of REQUIRED)
    if (!col.has(f))
      throw new ReportInputError(
        `CSV: the header has no column "${f}" (it has: ${header.join(", ")})`,
        undefined,
        f,
      );
  const rows: Record<string, unknown>[] = [];
  records.slice(1).forEach((rec, i) => {
    if (rec.length !== header.length)
      throw new ReportInputError(
        `CSV: row ${i} (line ${i + 2}) has ${rec.length} cells, the header has ${header.length}`,
        i,
      );
    const row: Record<string, unknown> = {};
    for (const f of RESULT_FIELDS) {
      const j = col.get(f);
      if (j === undefined) continue;
      const cell = rec[j] as string;
      if (!NUMBER_FIELDS.has(f)) row[f] = cell;
      else if (cell === "") {
        if (REQUIRED.has(f)) row[f] = undefined;
      } else if (cell === NULL_CELL && f === "stderr") row[f] = null;
      else {
        const t = cell.trim();
        const v = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t) ? Number(t) : NaN;
        if (Number.isNaN(v))
          throw new ReportInputError(
            `CSV: row ${i} (line ${i + 2}): field "${f}" is not a number: ${JSON.stringify(cell)}`,
            i,
            f,
          );
        row[f] = v;
      }
    }
    rows.push(row);
  });
  return validateRows(rows);
}

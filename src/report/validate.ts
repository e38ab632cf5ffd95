/**
 * Checks rows before anything is written: every error names the row (0-based index, as in the input
 * array; for a CSV, the data line) and the field, and says what was expected.
 */
import type { ResultRow } from "./types.js";

/** Bad report input: `row` is the index of the first bad row, `field` the offending field. */
export class ReportInputError extends Error {
  constructor(
    message: string,
    readonly row?: number,
    readonly field?: string,
  ) {
    super(message);
    this.name = "ReportInputError";
  }
}

const STRING_FIELDS = ["model", "method", "schedule", "benchmark", "metric"] as const;

function show(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (v === undefined) return "nothing (the field is missing)";
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/**
 * Validates `rows` (any values, e.g. parsed JSON) as ResultRows and returns them typed. Throws a
 * ReportInputError for the first bad row: a missing or empty name field, a non-integer or negative
 * `edits`, a non-finite `value`, a negative or non-finite `stderr`, a non-integer `n` or `seed`.
 * Fields other than those of ResultRow are ignored.
 */
export function validateRows(rows: readonly unknown[]): ResultRow[] {
  if (!Array.isArray(rows))
    throw new ReportInputError(`report rows: expected an array of rows, got ${show(rows)}`);
  rows.forEach((r, i) => validateRow(r, i));
  return rows as ResultRow[];
}

function validateRow(r: unknown, i: number): void {
  const fail = (field: string, what: string): never => {
    throw new ReportInputError(`report rows: row ${i}: field "${field}" ${what}`, i, field);
  };
  if (typeof r !== "object" || r === null || Array.isArray(r))
    throw new ReportInputError(`report rows: row ${i}: expected an object, got ${show(r)}`, i);
  const o = r as Record<string, unknown>;
  for (const f of STRING_FIELDS) {
    const v = o[f];
    if (typeof v !== "string") fail(f, `must be a string, got ${show(v)}`);
    else if (v.trim() === "") fail(f, "must not be empty");
  }
  const edits = o.edits;
  if (typeof edits !== "number" || !Number.isInteger(edits) || edits < 0)
    fail("edits", `must be a whole number >= 0 (the number of edits applied), got ${show(edits)}`);
  const value = o.value;
  if (typeof value !== "number" || !Number.isFinite(value))
    fail("value", `must be a finite number, got ${show(value)}`);
  const se = o.stderr;
  if (se !== undefined && se !== null && (typeof se !== "number" || !Number.isFinite(se) || se < 0))
    fail("stderr", `must be a finite number >= 0, null or absent, got ${show(se)}`);
  const n = o.n;
  if (n !== undefined && (typeof n !== "number" || !Number.isInteger(n) || n < 0))
    fail("n", `must be a whole number >= 0 or absent, got ${show(n)}`);
  const seed = o.seed;
  if (seed !== undefined && (typeof seed !== "number" || !Number.isInteger(seed)))
    fail("seed", `must be a whole number or absent, got ${show(seed)}`);
}

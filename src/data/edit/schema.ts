/**
 * Record validation for edit datasets: each check names the record's index and the field (a JSON path
 * such as `requested_rewrite.target_new.str` or `locality.Relation_Specificity[1].prompt`), so a bad
 * record can be found and fixed. Nothing is coerced: a missing string is an error, never "".
 */

/** One problem in one record. */
export interface RecordIssue {
  /** 0-based position of the record in the file */
  index: number;
  /** the JSON path of the offending field inside the record */
  field: string;
  message: string;
  /** the record's case_id when it has one */
  caseId?: number | string;
}

export function formatIssue(file: string, i: RecordIssue): string {
  const id = i.caseId !== undefined ? ` (case_id ${i.caseId})` : "";
  return `${file}: record ${i.index}${id}, field '${i.field}': ${i.message}`;
}

/** A malformed record under `onError: "fatal"` (or a file that is not a dataset at all). */
export class DatasetError extends Error {
  constructor(
    message: string,
    readonly issues: RecordIssue[] = [],
  ) {
    super(message);
  }
}

/** Thrown inside a record's mapping; the loader turns it into a RecordIssue. */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

function show(v: unknown): string {
  if (v === undefined) return "nothing (the field is missing)";
  const s = JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 77) + "..." : s;
}

/** Typed accessors over one record; each failure is a FieldError naming the path. */
export class Fields {
  constructor(
    readonly value: Record<string, unknown>,
    readonly path = "",
  ) {}

  static of(v: unknown, path = ""): Fields {
    if (typeof v !== "object" || v === null || Array.isArray(v))
      throw new FieldError(path || "(record)", `expected an object, got ${show(v)}`);
    return new Fields(v as Record<string, unknown>, path);
  }

  private at(k: string): string {
    return this.path ? `${this.path}.${k}` : k;
  }

  has(k: string): boolean {
    return this.value[k] !== undefined && this.value[k] !== null;
  }

  /** A non-empty string (whitespace-only counts as empty). */
  str(k: string): string {
    const v = this.value[k];
    if (typeof v !== "string") throw new FieldError(this.at(k), `expected a string, got ${show(v)}`);
    if (v.trim() === "") throw new FieldError(this.at(k), "is empty");
    return v;
  }

  optStr(k: string): string | undefined {
    return this.has(k) ? this.str(k) : undefined;
  }

  int(k: string): number {
    const v = this.value[k];
    if (typeof v !== "number" || !Number.isInteger(v))
      throw new FieldError(this.at(k), `expected an integer, got ${show(v)}`);
    return v;
  }

  obj(k: string): Fields {
    return Fields.of(this.value[k], this.at(k));
  }

  /** A list of non-empty strings; `min` is the least number of entries. */
  strList(k: string, min = 1): string[] {
    const v = this.value[k];
    if (!Array.isArray(v)) throw new FieldError(this.at(k), `expected a list of strings, got ${show(v)}`);
    if (v.length < min) throw new FieldError(this.at(k), `expected at least ${min} entries, got ${v.length}`);
    return v.map((x, i) => {
      if (typeof x !== "string")
        throw new FieldError(`${this.at(k)}[${i}]`, `expected a string, got ${show(x)}`);
      if (x.trim() === "") throw new FieldError(`${this.at(k)}[${i}]`, "is empty");
      return x;
    });
  }

  list(k: string): unknown[] {
    const v = this.value[k];
    if (!Array.isArray(v)) throw new FieldError(this.at(k), `expected a list, got ${show(v)}`);
    return v;
  }

  /** The path of a child (for messages built outside this class). */
  child(k: string): string {
    return this.at(k);
  }
}

/**
 * Edit datasets: CounterFact (EasyEdit's and ROME's layouts), ZsRE (MEND layout) and KnowEdit, from the
 * shared data folder by name or from a user's file. Every record is validated; a malformed one is
 * reported with its index and field, then skipped (with a warning listing what was skipped) or fatal.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dataDir } from "../../util/paths.js";
import { detectFormat, mapRecord } from "./formats.js";
import { DatasetError, FieldError, formatIssue, type RecordIssue } from "./schema.js";
import type { DatasetFormat, EditCase } from "./types.js";

export * from "./types.js";
export { DatasetError, FieldError, formatIssue, type RecordIssue } from "./schema.js";
export { detectFormat, mapRecord } from "./formats.js";

/** Datasets known by name: file under the data folder and layout. */
export const EDIT_DATASETS: Record<string, { file: string; format: DatasetFormat; note: string }> = {
  counterfact: {
    file: "counterfact/counterfact-edit.json",
    format: "counterfact-easyedit",
    note: "EasyEdit's counterfact-edit.json (10,000 of CounterFact's 21,919 cases; one rephrase and one neighbourhood prompt per case)",
  },
  "counterfact-train": {
    file: "counterfact/counterfact-train.json",
    format: "counterfact-easyedit",
    note: "EasyEdit's counterfact-train.json (10,000 cases)",
  },
  "counterfact-val": {
    file: "counterfact/counterfact-val.json",
    format: "counterfact-easyedit",
    note: "EasyEdit's counterfact-val.json (1,919 cases)",
  },
  "counterfact-rome": {
    file: "counterfact/rome_format/counterfact_portability_gpt4.json",
    format: "counterfact-rome",
    note: "ROME-layout CounterFact subset with portability (1,031 of 21,919 cases, case_ids 34..8696)",
  },
  "counterfact-rome-subject-replace": {
    file: "counterfact/rome_format/counterfact_subject_replace.json",
    format: "counterfact-rome",
    note: "ROME-layout CounterFact subset from EasyEdit's subject-replace portability data (213 cases)",
  },
  zsre: {
    file: "zsre/zsre_mend_eval_portability_gpt4.json",
    format: "zsre-mend",
    note: "ZsRE MEND-layout eval subset with portability (1,037 records; EasyEdit's ZsRE set, not the 19,086-record eval)",
  },
  "zsre-train": {
    file: "zsre/zsre_mend_train-1k.json",
    format: "zsre-mend",
    note: "ZsRE MEND-layout train subset (1,000 records)",
  },
  knowedit: {
    file: "zsre/KnowEdit_ZsRE-test-all.json",
    format: "knowedit",
    note: "KnowEdit ZsRE test (1,304 records; the KnowEdit paper's table uses a 1,301-record copy)",
  },
};
EDIT_DATASETS["knowedit-zsre"] = EDIT_DATASETS.knowedit as (typeof EDIT_DATASETS)["knowedit"];

export interface LoadEditOptions {
  /** "skip": drop malformed records (listed in `skipped` and warned); "fatal" (default): throw */
  onError?: "skip" | "fatal";
  /** the layout; detected from the first record when left out */
  format?: DatasetFormat;
  /** first record index to read (default 0) */
  start?: number;
  /** at most this many cases (after skipping malformed ones) */
  limit?: number;
  /** data folder for named datasets (default: dataDir()) */
  dataDir?: string;
  /** KnowEdit: keep rephrase_prompt as a rephrase prompt (KnowEdit's own loader drops it) */
  knowEditRephrase?: boolean;
  /** where warnings go (default stderr) */
  warn?: (msg: string) => void;
}

export interface EditDataset {
  name: string;
  path: string;
  format: DatasetFormat;
  /** a sentence on what the set is (a subset of the canonical one, ...), for every report */
  note: string;
  cases: EditCase[];
  /** records skipped as malformed */
  skipped: RecordIssue[];
  /** list items dropped inside kept records (e.g. KnowEdit answers that are empty) */
  dropped: RecordIssue[];
  /** records in the file */
  totalRecords: number;
}

/** Resolves a dataset name (see EDIT_DATASETS) or a path. */
export function resolveEditDataset(
  nameOrPath: string,
  dir = dataDir(),
): { path: string; format?: DatasetFormat; note: string; name: string } {
  const known = EDIT_DATASETS[nameOrPath.toLowerCase()];
  if (known) return { path: join(dir, known.file), format: known.format, note: known.note, name: nameOrPath };
  if (existsSync(nameOrPath)) return { path: nameOrPath, note: `user file ${nameOrPath}`, name: nameOrPath };
  throw new DatasetError(
    `edit dataset '${nameOrPath}' is neither a known name (${Object.keys(EDIT_DATASETS).join(", ")}) nor an existing file`,
  );
}

/** Parses a JSON list (or JSON lines) of records. */
export function readRecords(path: string): unknown[] {
  if (!existsSync(path)) throw new DatasetError(`${path}: no such file`);
  const text = readFileSync(path, "utf8");
  const trimmed = text.trimStart();
  if (trimmed.startsWith("[")) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new DatasetError(`${path}: invalid JSON (${(e as Error).message})`);
    }
    return v as unknown[];
  }
  // JSON lines
  const out: unknown[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      throw new DatasetError(`${path}: line ${i + 1} is not valid JSON (${(e as Error).message})`);
    }
  });
  return out;
}

/**
 * Loads an edit dataset by name or path and maps its records to EditCases. Malformed records are
 * reported with index and field: thrown (onError "fatal", the default) or skipped with a warning.
 */
export function loadEditDataset(nameOrPath: string, opts: LoadEditOptions = {}): EditDataset {
  const r = resolveEditDataset(nameOrPath, opts.dataDir);
  const records = readRecords(r.path);
  return mapRecords(records, {
    ...opts,
    name: r.name,
    path: r.path,
    format: opts.format ?? r.format,
    note: r.note,
  });
}

/** Maps already parsed records (the work of loadEditDataset, for records from elsewhere). */
export function mapRecords(
  records: unknown[],
  opts: LoadEditOptions & { name?: string; path?: string; note?: string },
): EditDataset {
  const path = opts.path ?? "(records)";
  if (!Array.isArray(records) || records.length === 0)
    throw new DatasetError(`${path}: expected a non-empty JSON list of records`);
  const onError = opts.onError ?? "fatal";
  const warn = opts.warn ?? ((m: string) => process.stderr.write(m + "\n"));
  let format = opts.format;
  if (!format) {
    const first = records.find((x) => detectFormat(x) !== null);
    const d = first === undefined ? null : detectFormat(first);
    if (!d)
      throw new DatasetError(
        `${path}: cannot tell the layout from the records' fields; expected CounterFact (prompt, subject, target_new, ` +
          `ground_truth, rephrase_prompt, locality_prompt, locality_ground_truth, or requested_rewrite), ` +
          `ZsRE (src, alt, rephrase, loc, loc_ans) or KnowEdit (prompt, target_new, locality, portability)`,
      );
    format = d;
  }
  const start = opts.start ?? 0;
  const limit = opts.limit ?? Infinity;
  const cases: EditCase[] = [];
  const skipped: RecordIssue[] = [];
  const dropped: RecordIssue[] = [];
  for (let i = start; i < records.length && cases.length < limit; i++) {
    const rec = records[i];
    const caseId =
      typeof rec === "object" && rec !== null && typeof (rec as { case_id?: unknown }).case_id === "number"
        ? ((rec as { case_id: number }).case_id as number)
        : undefined;
    const itemDrops: RecordIssue[] = [];
    try {
      const c = mapRecord(format, rec, i, {
        knowEditRephrase: opts.knowEditRephrase,
        dropItem: (field, message) => {
          const issue = { index: i, field, message, caseId };
          if (onError === "fatal") throw new DatasetError(formatIssue(path, issue), [issue]);
          itemDrops.push(issue);
        },
      });
      cases.push(c);
      dropped.push(...itemDrops);
    } catch (e) {
      if (e instanceof DatasetError) throw e;
      if (!(e instanceof FieldError)) throw e;
      const issue: RecordIssue = { index: i, field: e.field, message: e.message, caseId };
      if (onError === "fatal")
        throw new DatasetError(
          `${formatIssue(path, issue)} (pass --on-error skip to skip malformed records)`,
          [issue],
        );
      skipped.push(issue);
    }
  }
  if (skipped.length > 0 || dropped.length > 0) {
    const lines = [
      ...skipped.map((s) => "  skipped " + formatIssue(path, s)),
      ...dropped.map((s) => "  dropped an item: " + formatIssue(path, s)),
    ];
    warn(
      `${path}: skipped ${skipped.length} malformed record(s)` +
        (dropped.length ? ` and dropped ${dropped.length} item(s)` : "") +
        `:\n${lines.join("\n")}`,
    );
  }
  return {
    name: opts.name ?? path,
    path,
    format,
    note: opts.note ?? `file ${path}`,
    cases,
    skipped,
    dropped,
    totalRecords: records.length,
  };
}

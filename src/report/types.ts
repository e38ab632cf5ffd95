/**
 * The input of a report: experiment results as plain rows, one number per row, and the run's metadata.
 * The experiment runner (or a user's own script, or a CSV via `fromCsv`) produces these; nothing in
 * src/report/ knows about models or editing.
 */

/** One measured number: a metric of a benchmark on a model after a number of edits. */
export interface ResultRow {
  /** model name or directory label */
  model: string;
  /** "ROME", "MEMIT", "AlphaEdit", "FT-L", ... or "unedited" for the model before any edit */
  method: string;
  /** "sequential" or "batch" (a batch size may appear: "batch-10") */
  schedule: string;
  /** number of edits applied at this checkpoint (0 = unedited) */
  edits: number;
  /** e.g. "mmlu", "gsm8k", "edit/rewrite_acc", "world/knowledge_mc" */
  benchmark: string;
  /** e.g. "acc", "exact_match,strict-match", "rewrite_acc" */
  metric: string;
  /** the score; in [0, 1] for accuracy-like metrics */
  value: number;
  /** standard error of `value`; null or absent when unknown */
  stderr?: number | null;
  /** number of items the value is computed on */
  n?: number;
  /** seed of the run (edit order, sampling); rows differing only in seed are averaged */
  seed?: number;
}

/** What the report says about the run besides its numbers. */
export interface ReportMeta {
  title: string;
  runId: string;
  /** ISO 8601 time the run (or the report) was made */
  createdAt: string;
  /** the experiment spec, shown verbatim (JSON) in the HTML page */
  spec?: unknown;
  /** model hash, data hash, code version, machine, ...: shown as a table */
  provenance?: Record<string, unknown>;
  /** wall time of the run in seconds */
  wallSeconds?: number;
  /** free text lines shown under the title (e.g. "MMLU: a 200-question subset of the 14,042") */
  notes?: string[];
}

/** The columns of a ResultRow, in the order of results.csv. */
export const RESULT_FIELDS = [
  "model",
  "method",
  "schedule",
  "edits",
  "benchmark",
  "metric",
  "value",
  "stderr",
  "n",
  "seed",
] as const satisfies readonly (keyof ResultRow)[];

export type ResultField = (typeof RESULT_FIELDS)[number];

/** The method label of the unedited model's rows. */
export const UNEDITED = "unedited";

/** Whether a row belongs to the unedited model ("unedited" in any letter case). */
export function isUnedited(method: string): boolean {
  return method.toLowerCase() === UNEDITED;
}

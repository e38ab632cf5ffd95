/**
 * Tables: one per (model, benchmark, metric); rows are method x schedule (the unedited model first),
 * columns are numbers of edits, cells "value ± stderr" (percent with one decimal for accuracy-like
 * metrics). The same Table renders as Markdown (summary.md) and HTML (index.html).
 */
import { distinct, measureKey, seriesKey, type Measure, type Point } from "./aggregate.js";
import { UNEDITED } from "./types.js";

/** Metric names that are never proportions, whatever their values. */
const NOT_ACCURACY = /perplexity|ppl|entropy|fluency|loss|nll|bits_per|bpb|length|tokens|seconds|time/i;

/**
 * Whether a metric is shown in percent: its name is not a known non-proportion (perplexity, entropy,
 * loss, ...) and every value lies in [0, 1].
 */
export function isAccuracyLike(metric: string, values: Iterable<number>): boolean {
  if (NOT_ACCURACY.test(metric)) return false;
  for (const v of values) if (v < 0 || v > 1) return false;
  return true;
}

/** Decimals for a plain (non-percent) number: 3 below 10, 2 below 100, 1 above. */
function plainDecimals(v: number): number {
  const a = Math.abs(v);
  return a < 10 ? 3 : a < 100 ? 2 : 1;
}

function fixed(v: number, decimals: number): string {
  const s = v.toFixed(decimals);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s; // no "-0.0"
}

/** A number as shown in a cell: percent with one decimal ("45.3"), or plain. */
export function formatValue(v: number, percent: boolean): string {
  return percent ? fixed(100 * v, 1) : fixed(v, plainDecimals(v));
}

/** A cell: "45.3 ± 1.2" (percent) or "6.214 ± 0.031"; no "±" part when stderr is unknown. */
export function formatCell(value: number, stderr: number | null | undefined, percent: boolean): string {
  const v = formatValue(value, percent);
  if (stderr === null || stderr === undefined) return v;
  const se = percent ? fixed(100 * stderr, 1) : fixed(stderr, plainDecimals(value));
  return `${v} ± ${se}`;
}

export interface TableRow {
  method: string;
  /** "" for the unedited model */
  schedule: string;
  /** one per column of `edits`; undefined where nothing was measured */
  cells: (Point | undefined)[];
}

export interface Table extends Measure {
  model: string;
  /** cells in percent */
  percent: boolean;
  /** the columns: numbers of edits, ascending */
  edits: number[];
  rows: TableRow[];
  /** items per score, when the same for every cell */
  n?: number;
  /** the largest number of seeds averaged in a cell */
  seeds: number;
}

export interface TableOptions {
  /** decides percent formatting per measure; default: isAccuracyLike on the measure's values */
  percent?: (m: Measure) => boolean;
}

/** Whether each measure is shown in percent, keyed by measureKey. */
export function percentByMeasure(points: readonly Point[], opts: TableOptions = {}): Map<string, boolean> {
  const values = new Map<string, { m: Measure; v: number[] }>();
  for (const p of points) {
    const k = measureKey(p);
    let e = values.get(k);
    if (!e) values.set(k, (e = { m: { benchmark: p.benchmark, metric: p.metric }, v: [] }));
    e.v.push(p.value);
  }
  const out = new Map<string, boolean>();
  for (const [k, e] of values) out.set(k, opts.percent ? opts.percent(e.m) : isAccuracyLike(e.m.metric, e.v));
  return out;
}

/** The tables of all points: models, then measures, in order of first appearance. */
export function buildTables(points: readonly Point[], opts: TableOptions = {}): Table[] {
  const percent = percentByMeasure(points, opts);
  // one row order for every table: series in order of first appearance
  const series = distinct(points.filter((p) => p.method !== UNEDITED).map((p) => seriesKey(p)));
  const tables: Table[] = [];
  for (const model of distinct(points.map((p) => p.model))) {
    const ofModel = points.filter((p) => p.model === model);
    for (const mk of distinct(ofModel.map((p) => measureKey(p)))) {
      const ps = ofModel.filter((p) => measureKey(p) === mk);
      const first = ps[0] as Point;
      const m: Measure = { benchmark: first.benchmark, metric: first.metric };
      const edits = [...new Set(ps.map((p) => p.edits))].sort((a, b) => a - b);
      const rowOf = (method: string, schedule: string): TableRow => ({
        method,
        schedule,
        cells: edits.map((e) =>
          ps.find((p) => p.method === method && p.schedule === schedule && p.edits === e),
        ),
      });
      const rows: TableRow[] = [];
      if (ps.some((p) => p.method === UNEDITED)) rows.push(rowOf(UNEDITED, ""));
      for (const s of series) {
        const one = ps.find((p) => p.method !== UNEDITED && seriesKey(p) === s);
        if (one) rows.push(rowOf(one.method, one.schedule));
      }
      const ns = new Set(ps.map((p) => p.n));
      const t: Table = {
        model,
        ...m,
        percent: percent.get(mk) ?? false,
        edits,
        rows,
        seeds: Math.max(...ps.map((p) => p.seeds)),
      };
      if (ns.size === 1 && first.n !== undefined) t.n = first.n;
      tables.push(t);
    }
  }
  return tables;
}

/** The heading of a table: "mmlu · acc (%)". */
export function tableTitle(t: Measure & { percent: boolean }): string {
  return `${t.benchmark} · ${t.metric}${t.percent ? " (%)" : ""}`;
}

/** The text of a cell; "–" where nothing was measured. */
export function cellText(t: Table, p: Point | undefined): string {
  return p ? formatCell(p.value, p.stderr, t.percent) : "–";
}

/** A line under a table: items per score, seeds. */
export function tableCaption(t: Table): string {
  const parts: string[] = [];
  if (t.n !== undefined) parts.push(`n = ${t.n} items per score`);
  if (t.seeds > 1) parts.push(`mean over up to ${t.seeds} seeds, ± is the standard error over seeds`);
  return parts.join("; ");
}

function mdEscape(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|");
}

/** A table as Markdown: columns method | schedule | one per number of edits. */
export function tableMarkdown(t: Table): string {
  const head = ["method", "schedule", ...t.edits.map(String)];
  const lines = [
    `| ${head.join(" | ")} |`,
    `| ${["---", "---", ...t.edits.map(() => "---:")].join(" | ")} |`,
  ];
  for (const r of t.rows) {
    const cells = [
      mdEscape(r.method),
      r.schedule === "" ? "–" : mdEscape(r.schedule),
      ...r.cells.map((p) => cellText(t, p)),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

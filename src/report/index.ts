/**
 * Reports of experiment results: `writeReport(dir, rows, meta)` writes
 *   results.csv        every row (fromCsv reads it back)
 *   summary.md         one table per benchmark metric: method x schedule by number of edits
 *   plots/<b>.svg/.png one figure per benchmark (a panel per metric), score vs number of edits
 *   plots/overview.*   every panel in one figure
 *   index.html         all of it in one self-contained page
 * See docs/reports.md.
 */
import { wideTables } from "./wide.js";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { aggregate, distinct, type Measure } from "./aggregate.js";
import { toCsv } from "./csv.js";
import { reportHtml, type HtmlSection } from "./html.js";
import { summaryMarkdown } from "./markdown.js";
import { plotSpec, renderSvg, svgToPng, PNG_SCALE, type PlotOptions } from "./plot.js";
import { buildTables, percentByMeasure } from "./table.js";
import { isUnedited, type ReportMeta, type ResultRow } from "./types.js";
import { ReportInputError, validateRows } from "./validate.js";

export * from "./types.js";
export { ReportInputError, validateRows } from "./validate.js";
export { fromCsv, toCsv, parseCsv } from "./csv.js";
export { aggregate, uneditedPoint, type Point, type Measure } from "./aggregate.js";
export {
  buildTables,
  formatCell,
  formatValue,
  isAccuracyLike,
  tableMarkdown,
  tableTitle,
  type Table,
} from "./table.js";
export {
  plotSpec,
  plotData,
  renderSvg,
  svgToPng,
  svgSize,
  panelLabel,
  PNG_SCALE,
  PLOT_FONT,
  type PlotOptions,
} from "./plot.js";
export { reportHtml, tableHtml } from "./html.js";
export { summaryMarkdown } from "./markdown.js";
export { wideTables, wideMarkdown, type WideTable } from "./wide.js";

export interface ReportOptions {
  /** decides percent formatting per measure; default: accuracy-like names with every value in [0, 1] */
  percent?: (m: Measure) => boolean;
  /** PNG pixels per SVG pixel (default 2) */
  pngScale?: number;
  /** write the PNGs (default true) */
  png?: boolean;
  /** panel size and layout of the figures */
  plot?: Pick<PlotOptions, "panelWidth" | "panelHeight" | "columns" | "startAtUnedited">;
}

export interface ReportPlot {
  /** the benchmark, or "overview" for the figure with every panel */
  benchmark: string;
  svg: string;
  /** absent when PNGs are off */
  png?: string;
}

/** The paths written. */
export interface ReportFiles {
  dir: string;
  csv: string;
  summary: string;
  html: string;
  overview: ReportPlot;
  plots: ReportPlot[];
}

/**
 * The file name (without extension) of a benchmark's figure: characters other than letters, digits,
 * ".", "_" and "-" become "_" ("edit/rewrite_acc" -> "edit_rewrite_acc").
 */
export function plotFileName(benchmark: string): string {
  const s = benchmark.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[.]+/, "_");
  return s === "" ? "benchmark" : s;
}

/** File names for the benchmarks, distinct from each other and from "overview" ("-2", "-3" on a clash). */
export function plotFileNames(benchmarks: readonly string[]): Map<string, string> {
  const used = new Set(["overview"]);
  const out = new Map<string, string>();
  for (const b of benchmarks) {
    const base = plotFileName(b);
    let name = base;
    for (let i = 2; used.has(name.toLowerCase()); i++) name = `${base}-${i}`;
    used.add(name.toLowerCase());
    out.set(b, name);
  }
  return out;
}

/**
 * Writes the report of `rows` into `dir` (created if missing; files of an earlier report there are
 * overwritten). Rows are validated first: a bad row throws a ReportInputError naming its index and field.
 */
export async function writeReport(
  dir: string,
  rows: readonly ResultRow[],
  meta: ReportMeta,
  opts: ReportOptions = {},
): Promise<ReportFiles> {
  validateRows(rows);
  if (rows.length === 0) throw new ReportInputError("writeReport: no rows: there is nothing to report");
  const points = aggregate(rows);
  const percent = percentByMeasure(points, opts.percent ? { percent: opts.percent } : {});
  const tables = buildTables(points, opts.percent ? { percent: opts.percent } : {});
  const edited = points.filter((p) => !isUnedited(p.method));
  const common: PlotOptions = {
    ...opts.plot,
    percent,
    methods: distinct(edited.map((p) => p.method)),
    schedules: distinct(edited.map((p) => p.schedule)),
  };
  const scale = opts.pngScale ?? PNG_SCALE;
  const writePng = opts.png ?? true;

  const plotsDir = join(dir, "plots");
  mkdirSync(plotsDir, { recursive: true });
  const emit = async (benchmark: string, name: string, spec: ReturnType<typeof plotSpec>) => {
    const svg = await renderSvg(spec);
    const plot: ReportPlot = { benchmark, svg: join(plotsDir, `${name}.svg`) };
    writeFileSync(plot.svg, svg);
    if (writePng) writeFileSync((plot.png = join(plotsDir, `${name}.png`)), svgToPng(svg, scale));
    return { plot, svg };
  };

  const overview = await emit(
    "overview",
    "overview",
    plotSpec(points, {
      ...common,
      title: meta.title,
      subtitle: "score vs number of edits (symlog axis); dashed grey line: the unedited model",
    }),
  );
  const benchmarks = distinct(points.map((p) => p.benchmark));
  const names = plotFileNames(benchmarks);
  const plots: ReportPlot[] = [];
  const sections: HtmlSection[] = [];
  for (const b of benchmarks) {
    const ps = points.filter((p) => p.benchmark === b);
    const { plot, svg } = await emit(
      b,
      names.get(b) as string,
      plotSpec(ps, { ...common, title: b, panelBenchmark: false }),
    );
    plots.push(plot);
    sections.push({ benchmark: b, svg, tables: tables.filter((t) => t.benchmark === b) });
  }

  const files: ReportFiles = {
    dir,
    csv: join(dir, "results.csv"),
    summary: join(dir, "summary.md"),
    html: join(dir, "index.html"),
    overview: overview.plot,
    plots,
  };
  writeFileSync(files.csv, toCsv(rows));
  const wide = wideTables(points, percent);
  writeFileSync(files.summary, summaryMarkdown(meta, tables, wide));
  writeFileSync(files.html, reportHtml(meta, overview.svg, sections, wide));
  return files;
}

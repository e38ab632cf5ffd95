/**
 * Plots: score against number of edits, the figure of Li et al. 2024 ("Should We Really Edit Language
 * Models?"): one panel per benchmark metric, one line per method (colour) and schedule (dash), points
 * with standard-error bars, the unedited model's score as a dashed horizontal reference line, and the
 * number of edits on a symlog axis (log-like, with 0 shown at the left).
 *
 * The figure is a Vega-Lite spec, compiled to Vega and rendered to SVG by Vega's headless View; resvg
 * turns the SVG into PNG.
 */
import { existsSync } from "node:fs";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { Resvg } from "@resvg/resvg-js";
import { useDejaVuMetrics } from "./fontmetrics.js";
import { distinct, measureKey, seriesKey, uneditedPoint, type Measure, type Point } from "./aggregate.js";
import { UNEDITED } from "./types.js";

/** The font of every plot: DejaVu Sans where it is installed, the usual sans-serif fonts elsewhere. */
export const PLOT_FONT = "DejaVu Sans, Verdana, Arial, sans-serif";
/** Where resvg looks for DejaVu (besides the system's font directories). */
export const FONT_DIRS = [
  "/usr/share/fonts/truetype/dejavu",
  "/usr/share/fonts/dejavu",
  "/usr/share/fonts/TTF",
];
/** PNG pixels per SVG pixel. */
export const PNG_SCALE = 2;

/** Line dashes by schedule (in order of first appearance): solid, dashed, dotted, dash-dot, ... */
const DASHES = [
  [1, 0],
  [7, 4],
  [2, 3],
  [10, 3, 2, 3],
  [4, 2, 1, 2],
  [12, 6],
];
const REF_COLOR = "#555555";

export interface PlotOptions {
  /** title above the figure */
  title?: string;
  subtitle?: string;
  /** size of one panel in pixels (default 280 x 190) */
  panelWidth?: number;
  panelHeight?: number;
  /** panels per row (default: up to 3) */
  columns?: number;
  /** measures shown in percent, keyed by measureKey (default: none) */
  percent?: Map<string, boolean>;
  /** name the benchmark in each panel's header (default true; a figure of one benchmark has it as its title) */
  panelBenchmark?: boolean;
  /** start each method's line at the unedited score when the method has no 0-edit point (default true) */
  startAtUnedited?: boolean;
  /** methods and schedules in legend order (default: order of first appearance); fixes colours across plots */
  methods?: string[];
  schedules?: string[];
}

/** One mark's datum. kind: a measured point, the unedited start of a line, or the reference line. */
export interface PlotDatum {
  panel: string;
  method: string;
  schedule: string;
  series: string;
  edits: number;
  y: number;
  lo: number | null;
  hi: number | null;
  kind: "point" | "start" | "ref";
}

/**
 * The label of a panel: "mmlu · acc (%)" (or "acc (%)" without the benchmark), with the model in front
 * when there are several.
 */
export function panelLabel(m: Measure, percent: boolean, model?: string, withBenchmark = true): string {
  return `${model ? model + ": " : ""}${withBenchmark ? m.benchmark + " · " : ""}${m.metric}${percent ? " (%)" : ""}`;
}

/** The data of a figure: panels in order of (model, measure) first appearance. */
export function plotData(
  points: readonly Point[],
  opts: PlotOptions = {},
): { data: PlotDatum[]; panels: string[] } {
  const models = distinct(points.map((p) => p.model));
  const data: PlotDatum[] = [];
  const panels: string[] = [];
  for (const model of models) {
    const ofModel = points.filter((p) => p.model === model);
    for (const mk of distinct(ofModel.map((p) => measureKey(p)))) {
      const ps = ofModel.filter((p) => measureKey(p) === mk);
      const m: Measure = { benchmark: (ps[0] as Point).benchmark, metric: (ps[0] as Point).metric };
      const percent = opts.percent?.get(mk) ?? false;
      const k = percent ? 100 : 1;
      const panel = panelLabel(
        m,
        percent,
        models.length > 1 ? model : undefined,
        opts.panelBenchmark ?? true,
      );
      panels.push(panel);
      const ref = uneditedPoint(ps, model, m);
      if (ref)
        data.push({
          panel,
          method: UNEDITED,
          schedule: "",
          series: UNEDITED,
          edits: 0,
          y: k * ref.value,
          lo: null,
          hi: null,
          kind: "ref",
        });
      const edited = ps.filter((p) => p.method !== UNEDITED);
      for (const s of distinct(edited.map((p) => seriesKey(p)))) {
        const line = edited.filter((p) => seriesKey(p) === s).sort((a, b) => a.edits - b.edits);
        const first = line[0] as Point;
        const series = `${first.method} (${first.schedule})`;
        if (ref && (opts.startAtUnedited ?? true) && first.edits > 0)
          data.push({
            panel,
            method: first.method,
            schedule: first.schedule,
            series,
            edits: 0,
            y: k * ref.value,
            lo: null,
            hi: null,
            kind: "start",
          });
        for (const p of line) {
          const se = p.stderr;
          data.push({
            panel,
            method: p.method,
            schedule: p.schedule,
            series,
            edits: p.edits,
            y: k * p.value,
            lo: se === null ? null : k * (p.value - se),
            hi: se === null ? null : k * (p.value + se),
            kind: "point",
          });
        }
      }
    }
  }
  return { data, panels };
}

/** The Vega-Lite spec of a figure of `points` (every measure of every model, one panel each). */
export function plotSpec(points: readonly Point[], opts: PlotOptions = {}): TopLevelSpec {
  const { data, panels } = plotData(points, opts);
  const edited = points.filter((p) => p.method !== UNEDITED);
  const methods = opts.methods ?? distinct(edited.map((p) => p.method));
  const schedules = opts.schedules ?? distinct(edited.map((p) => p.schedule));
  const ticks = [...new Set([0, ...points.map((p) => p.edits)])].sort((a, b) => a - b);
  const maxEdits = Math.max(1, ...ticks);
  const x = {
    field: "edits",
    type: "quantitative" as const,
    title: "number of edits",
    scale: { type: "symlog" as const, constant: 1, domain: [0, maxEdits], nice: false, padding: 10 },
    axis: { values: ticks, format: "d", labelOverlap: "greedy" as const, grid: true },
  };
  const y = {
    field: "y",
    type: "quantitative" as const,
    title: "score",
    scale: { zero: false, nice: true },
    // a panel whose values are all equal gets labels such as "40.000000": those are shortened
    axis: { labelExpr: "length(datum.label) > 8 ? format(datum.value, '~r') : datum.label" },
  };
  const color = {
    field: "method",
    type: "nominal" as const,
    title: "method",
    scale: { domain: methods, scheme: "tableau10" },
    legend: { orient: "right" as const, symbolStrokeWidth: 2.5, order: 1 },
  };
  const strokeDash = {
    field: "schedule",
    type: "nominal" as const,
    title: "schedule",
    scale: { domain: schedules, range: schedules.map((_, i) => DASHES[i % DASHES.length] as number[]) },
    legend: {
      orient: "right" as const,
      symbolStrokeColor: "#333",
      symbolStrokeWidth: 2,
      symbolSize: 400,
      order: 2,
    },
  };
  const columns = opts.columns ?? Math.min(3, Math.max(1, panels.length));
  const spec = {
    data: { values: data },
    facet: {
      field: "panel",
      type: "nominal" as const,
      title: null,
      sort: panels,
      // "benchmark · metric" on two lines, so a long metric name does not widen its column
      header: {
        labelExpr: "split(datum.label, ' · ')",
        labelFontSize: 13,
        labelFontWeight: "bold" as const,
        labelPadding: 6,
        labelLimit: 0,
      },
    },
    columns,
    // each panel its own y scale (benchmarks differ in range) and its own x axis (a wrapped last row
    // would otherwise leave panels above an empty cell without one)
    resolve: { scale: { y: "independent" as const }, axis: { x: "independent" as const } },
    spec: {
      width: opts.panelWidth ?? 280,
      height: opts.panelHeight ?? 190,
      layer: [
        {
          name: "reference",
          transform: [{ filter: "datum.kind === 'ref'" }],
          mark: { type: "rule" as const, color: REF_COLOR, strokeDash: [6, 4], strokeWidth: 1.5 },
          encoding: { y },
        },
        {
          name: "reference_label",
          transform: [{ filter: "datum.kind === 'ref'" }],
          mark: {
            type: "text" as const,
            color: REF_COLOR,
            align: "right" as const,
            baseline: "bottom" as const,
            dx: -2,
            dy: -2,
            fontSize: 10,
          },
          encoding: { x: { value: "width" as const }, y, text: { value: "unedited" } },
        },
        {
          name: "errorbars",
          transform: [{ filter: "datum.kind === 'point' && datum.lo !== null" }],
          mark: { type: "rule" as const, strokeWidth: 1.3, opacity: 0.8 },
          encoding: { x, y: { ...y, field: "lo" }, y2: { field: "hi" }, color },
        },
        {
          name: "lines",
          transform: [{ filter: "datum.kind !== 'ref'" }],
          mark: { type: "line" as const, strokeWidth: 2, interpolate: "linear" as const },
          encoding: { x, y, color, strokeDash, detail: { field: "series", type: "nominal" as const } },
        },
        {
          name: "points",
          transform: [{ filter: "datum.kind === 'point'" }],
          mark: { type: "point" as const, filled: true, size: 36, opacity: 1 },
          encoding: { x, y, color },
        },
      ],
    },
    config: {
      font: PLOT_FONT,
      background: "white",
      padding: 12,
      view: { stroke: "#bbbbbb" },
      axis: {
        labelFontSize: 11,
        titleFontSize: 12,
        gridColor: "#ebebeb",
        titleFontWeight: "normal" as const,
      },
      legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 240 },
      title: { fontSize: 15, subtitleFontSize: 12, anchor: "start" as const, subtitleColor: "#444" },
    },
  };
  const title = opts.title
    ? { title: opts.subtitle ? { text: opts.title, subtitle: opts.subtitle } : opts.title }
    : {};
  return { ...title, ...spec } as TopLevelSpec;
}

/** Renders a Vega-Lite spec to SVG text with Vega's headless View (no browser, no canvas). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  useDejaVuMetrics();
  const vgSpec = compile(spec).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The width and height an SVG declares on its root element. */
export function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0] ?? "";
  const w = /\swidth="([\d.]+)"/.exec(root)?.[1];
  const h = /\sheight="([\d.]+)"/.exec(root)?.[1];
  if (w === undefined || h === undefined) throw new Error("svgSize: the SVG root has no width/height");
  return { width: Number(w), height: Number(h) };
}

/**
 * SVG to PNG with resvg, at `scale` pixels per SVG pixel (the PNG is round(width * scale) x
 * round(height * scale)). Text uses the system's fonts (DejaVu Sans where installed); without any font
 * the PNG is still written, without its text.
 */
export function svgToPng(svg: string, scale = PNG_SCALE): Buffer {
  const fontDirs = FONT_DIRS.filter((d) => existsSync(d));
  const resvg = new Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    background: "white",
    font: {
      loadSystemFonts: true,
      fontDirs,
      defaultFontFamily: "DejaVu Sans",
      sansSerifFamily: "DejaVu Sans",
    },
  });
  return resvg.render().asPng();
}

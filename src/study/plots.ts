/**
 * The study's figures, drawn with the report's plot machinery (src/report/plot.ts: plotSpec, renderSvg,
 * svgToPng): the same symlog axis of the number of edits (0 shown), faceted panels, colours and
 * "unedited" reference line. The study's lines are not (method, schedule) but (size, variant), so the
 * points are mapped onto plotSpec's fields - panel header = method and what is shown, colour = size or
 * variant, dash = variant or size - and the legend and axis titles are renamed in the spec plotSpec
 * returns. Error bars are the confidence intervals over seeds (claims.ts: curveIntervals), not standard
 * errors: their ends are set from the intervals after plotSpec.
 *
 * Figures:
 * - general-by-size: relative general score (% of unedited) against edits, a line per size, panels
 *   method x variant, with the N90 threshold (90%) as a dotted rule;
 * - base-vs-instruct: the same, colour = variant (base, instruct), dash = size, a panel per method;
 * - safety: the safety score (%) against edits, colour = variant (base, aligned), dash = size, a panel
 *   per method.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TopLevelSpec } from "vega-lite";
import type { Point } from "../report/aggregate.js";
import { panelLabel, plotSpec, renderSvg, svgToPng, PNG_SCALE } from "../report/plot.js";
import {
  curveIntervals,
  STUDY_VARIANTS,
  type IntervalOptions,
  type StudyPoint,
  type StudyVariant,
} from "./claims.js";

export interface StudyPlotOptions extends IntervalOptions {
  /** the N90 threshold drawn on the general figures (default 0.9; null: none) */
  fraction?: number | null;
  /** the variants of the safety figure (default base and aligned) */
  safetyVariants?: StudyVariant[];
  /** panel size in pixels (default 230 x 170) */
  panelWidth?: number;
  panelHeight?: number;
}

export interface StudyFigure {
  /** file name without extension */
  name: string;
  title: string;
  /** one sentence under the figure */
  caption: string;
  spec: TopLevelSpec;
}

const SEP = "\u0000";

interface Series {
  /** panel header: two lines */
  panel: [string, string];
  color: string;
  dash: string;
}

/** Sizes in order of parameters. */
function sizesOf(points: readonly StudyPoint[]): string[] {
  const m = new Map<string, number>();
  for (const p of points) if (!m.has(p.size)) m.set(p.size, p.params);
  return [...m].sort((a, b) => a[1] - b[1]).map(([s]) => s);
}

function methodsOf(points: readonly StudyPoint[]): string[] {
  return [...new Set(points.map((p) => p.method))];
}

/** Renames the colour / dash legend and the y axis title in every layer of a faceted spec from plotSpec. */
function retitle(
  spec: TopLevelSpec,
  titles: { color: string; dash: string | null; y: string },
): TopLevelSpec {
  const s = spec as unknown as { spec: { layer: { encoding?: Record<string, Record<string, unknown>> }[] } };
  for (const layer of s.spec.layer) {
    const e = layer.encoding;
    if (!e) continue;
    if (e.color) e.color = { ...e.color, title: titles.color };
    if (e.strokeDash)
      e.strokeDash =
        titles.dash === null ? { ...e.strokeDash, legend: null } : { ...e.strokeDash, title: titles.dash };
    // every layer's y shares one axis, whose title joins theirs: each gets the same
    if (e.y) e.y = { ...e.y, title: titles.y };
  }
  return spec;
}

/**
 * The x axis labels: 0, the powers of ten up to the largest number of edits, and the largest itself
 * (a label at every checkpoint crowds a narrow panel, and the greedy overlap rule then drops the last).
 */
export function editTicks(edits: readonly number[]): number[] {
  const max = Math.max(0, ...edits);
  const ticks = [0];
  for (let t = 1; t <= max; t *= 10) ticks.push(t);
  if (max > 0 && !ticks.includes(max)) ticks.push(max);
  return ticks;
}

function setTicks(spec: TopLevelSpec, ticks: number[]): TopLevelSpec {
  const s = spec as unknown as { spec: { layer: { encoding?: Record<string, Record<string, unknown>> }[] } };
  for (const layer of s.spec.layer) {
    const x = layer.encoding?.x;
    if (x && x.field === "edits" && layer.encoding)
      layer.encoding.x = { ...x, axis: { ...(x.axis as object), values: ticks } };
  }
  return spec;
}

/** Adds a dotted horizontal rule at `y` (in the plotted units) to every panel, labelled `label`. */
function addThreshold(spec: TopLevelSpec, y: number, label: string): TopLevelSpec {
  const s = spec as unknown as { spec: { layer: unknown[] } };
  const first = s.spec.layer.find((l) => (l as { encoding?: { y?: { title?: unknown } } }).encoding?.y);
  const title = (first as { encoding: { y: { title?: unknown } } } | undefined)?.encoding.y.title ?? null;
  const at = { datum: y, type: "quantitative", title };
  // one datum per panel: the panel's reference datum
  const transform = [{ filter: "datum.kind === 'ref'" }];
  s.spec.layer.unshift(
    {
      name: "threshold",
      transform,
      mark: { type: "rule", color: "#9a9a9a", strokeDash: [2, 3], strokeWidth: 1.2 },
      encoding: { y: at },
    },
    {
      name: "threshold_label",
      transform,
      mark: { type: "text", color: "#777777", align: "left", baseline: "top", dx: 3, dy: 2, fontSize: 10 },
      encoding: { x: { value: 0 }, y: at, text: { value: label } },
    },
  );
  return spec;
}

/**
 * A figure: the points' lines (one per series), each point the mean over seeds with its interval;
 * `ref` adds the unedited reference line (in the value's units) to every panel.
 */
function figureSpec(
  points: readonly StudyPoint[],
  series: (p: StudyPoint) => Series | null,
  value: (p: StudyPoint) => number | null,
  o: {
    colors: string[];
    dashes: string[];
    ref: number | null;
    columns: number;
    title: string;
    subtitle: string;
    titles: { color: string; dash: string | null; y: string };
  },
  opts: StudyPlotOptions,
): TopLevelSpec {
  const keyed = new Map<string, Series>();
  const key = (p: StudyPoint) => {
    const s = series(p);
    if (!s) return "";
    const k = [...s.panel, s.color, s.dash].join(SEP);
    keyed.set(k, s);
    return k;
  };
  const usable = points.filter((p) => series(p) !== null);
  const curves = curveIntervals(usable, key, value, opts);
  // panels in order of first appearance of their series (the caller orders the points)
  const panelOrder = [...new Set([...keyed.values()].map((s) => s.panel.join(SEP)))];
  const plotPoints: Point[] = [];
  const ends = new Map<string, { lo: number | null; hi: number | null }>();
  for (const pk of panelOrder) {
    const [benchmark, metric] = pk.split(SEP) as [string, string];
    if (o.ref !== null)
      plotPoints.push({
        model: "",
        method: "unedited",
        schedule: "",
        benchmark,
        metric,
        edits: 0,
        value: o.ref,
        stderr: null,
        seeds: 1,
      });
    for (const [k, s] of keyed) {
      if (s.panel.join(SEP) !== pk) continue;
      for (const c of curves.get(k) ?? []) {
        const iv = c.interval;
        plotPoints.push({
          model: "",
          method: s.color,
          schedule: s.dash,
          benchmark,
          metric,
          edits: c.edits,
          value: iv.mean,
          stderr: iv.lo === null || iv.hi === null ? null : (iv.hi - iv.lo) / 2,
          seeds: iv.n,
        });
        const panel = panelLabel({ benchmark, metric }, true);
        ends.set([panel, s.color, s.dash, c.edits].join(SEP), { lo: iv.lo, hi: iv.hi });
      }
    }
  }
  const percent = new Map(panelOrder.map((pk) => [pk, true]));
  const spec = plotSpec(plotPoints, {
    title: o.title,
    subtitle: o.subtitle,
    percent,
    methods: o.colors,
    schedules: o.dashes,
    columns: o.columns,
    panelWidth: opts.panelWidth ?? 230,
    panelHeight: opts.panelHeight ?? 170,
    startAtUnedited: false,
  });
  // error bars: the interval's ends (a bootstrap interval need not be symmetric)
  const holder = spec as unknown as { data: { values: Record<string, unknown>[] } };
  // without a reference, plotData would take the mean of the lines' 0-edit points as one: none is drawn
  if (o.ref === null) holder.data.values = holder.data.values.filter((d) => d.kind !== "ref");
  const data = holder.data.values;
  for (const d of data) {
    if (d.kind !== "point") continue;
    const e = ends.get([d.panel, d.method, d.schedule, d.edits].join(SEP));
    if (e) {
      d.lo = e.lo === null ? null : 100 * e.lo;
      d.hi = e.hi === null ? null : 100 * e.hi;
    }
  }
  return setTicks(retitle(spec, o.titles), editTicks(points.map((p) => p.edits)));
}

/** The study's figures (see the file comment). */
export function studyFigures(points: readonly StudyPoint[], opts: StudyPlotOptions = {}): StudyFigure[] {
  const sizes = sizesOf(points);
  const methods = methodsOf(points);
  const variants = STUDY_VARIANTS.filter((v) => points.some((p) => p.variant === v));
  const fraction = opts.fraction === undefined ? 0.9 : opts.fraction;
  const level = `${Math.round((opts.level ?? 0.95) * 100)}%`;
  const bars = `error bars: ${level} confidence intervals over seeds`;
  const columns = Math.min(4, Math.max(1, methods.length));
  const ordered = (keyOf: (p: StudyPoint) => number[]) =>
    [...points].sort((a, b) => {
      const ka = keyOf(a);
      const kb = keyOf(b);
      for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return (ka[i] as number) - (kb[i] as number);
      return 0;
    });
  const vIdx = (v: StudyVariant) => STUDY_VARIANTS.indexOf(v);
  const mIdx = (m: string) => methods.indexOf(m);
  const figures: StudyFigure[] = [];

  // 1. general score per size: panels variant (rows) x method (columns)
  {
    const ps = ordered((p) => [vIdx(p.variant), mIdx(p.method)]);
    let spec = figureSpec(
      ps,
      (p) => ({ panel: [p.method, `${p.variant} models`], color: p.size, dash: "" }),
      (p) => p.generalRel,
      {
        colors: sizes,
        dashes: [""],
        ref: 1,
        columns,
        title: "General score against number of edits, per model size",
        subtitle: `% of each model's unedited score; ${bars}`,
        titles: { color: "model size", dash: null, y: "general score (% of unedited)" },
      },
      opts,
    );
    if (fraction !== null) spec = addThreshold(spec, 100 * fraction, `${Math.round(100 * fraction)}%`);
    figures.push({
      name: "study-general-by-size",
      title: "General score against number of edits, per model size",
      caption:
        `Relative general score (mean of the general tasks, % of the unedited model's) against the number of sequential ` +
        `edits (symlog axis); one line per size, one panel per method and variant; ${bars}` +
        (fraction !== null ? `; dotted line: the N90 threshold (${Math.round(100 * fraction)}%).` : "."),
      spec,
    });
  }

  // 2. base against instruct: a panel per method
  if (variants.includes("base") && variants.includes("instruct")) {
    const ps = ordered((p) => [mIdx(p.method)]);
    let spec = figureSpec(
      ps,
      (p) =>
        p.variant === "base" || p.variant === "instruct"
          ? { panel: [p.method, "general score"], color: p.variant, dash: p.size }
          : null,
      (p) => p.generalRel,
      {
        colors: ["base", "instruct"],
        dashes: sizes,
        ref: 1,
        columns,
        title: "Base against instruction-tuned models",
        subtitle: `general score, % of each model's unedited score; ${bars}`,
        titles: { color: "variant", dash: "model size", y: "general score (% of unedited)" },
      },
      opts,
    );
    if (fraction !== null) spec = addThreshold(spec, 100 * fraction, `${Math.round(100 * fraction)}%`);
    figures.push({
      name: "study-base-vs-instruct",
      title: "Base against instruction-tuned models",
      caption: `Relative general score of base (colour) and instruction-tuned models, a dash per size, a panel per method; ${bars}.`,
      spec,
    });
  }

  // 3. safety: a panel per method
  const sv = (opts.safetyVariants ?? ["base", "aligned"]).filter((v) => variants.includes(v));
  if (sv.length && points.some((p) => p.safety !== null)) {
    const ps = ordered((p) => [mIdx(p.method)]);
    const spec = figureSpec(
      ps,
      (p) =>
        sv.includes(p.variant) ? { panel: [p.method, "safety score"], color: p.variant, dash: p.size } : null,
      (p) => p.safety,
      {
        colors: sv,
        dashes: sizes,
        ref: null,
        columns,
        title: "Safety score against number of edits",
        subtitle: `${sv.join(" vs ")} models; ${bars}`,
        titles: { color: "variant", dash: "model size", y: "safety score (%)" },
      },
      opts,
    );
    figures.push({
      name: "study-safety",
      title: "Safety score against number of edits",
      caption:
        `Safety score (mean of the safety tasks, %) of ${sv.join(" and ")} models (colour), a dash per size, a panel per ` +
        `method; the 0-edit point is the unedited model; ${bars}.`,
      spec,
    });
  }
  return figures;
}

export interface RenderedFigure {
  name: string;
  title: string;
  caption: string;
  /** the SVG text */
  svg: string;
  svgPath: string;
  pngPath?: string;
}

/** Renders the figures to `dir`/<name>.svg (and .png unless png is false). */
export async function renderStudyFigures(
  dir: string,
  figures: readonly StudyFigure[],
  opts: { png?: boolean; scale?: number } = {},
): Promise<RenderedFigure[]> {
  mkdirSync(dir, { recursive: true });
  const out: RenderedFigure[] = [];
  for (const f of figures) {
    const svg = await renderSvg(f.spec);
    const r: RenderedFigure = {
      name: f.name,
      title: f.title,
      caption: f.caption,
      svg,
      svgPath: join(dir, `${f.name}.svg`),
    };
    writeFileSync(r.svgPath, svg);
    if (opts.png ?? true)
      writeFileSync((r.pngPath = join(dir, `${f.name}.png`)), svgToPng(svg, opts.scale ?? PNG_SCALE));
    out.push(r);
  }
  return out;
}

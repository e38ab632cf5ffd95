/**
 * The study's report: the four claims with their verdicts and numbers first, then the tables (N90 per
 * size x variant x method; general and safety score against the number of edits), then the figures,
 * then how every number is computed. As Markdown (`studyMarkdown`), as an HTML fragment that a page can
 * hold (`studyHtmlSection`) and as a page of its own (`studyHtmlPage`); `writeStudyReport` writes all
 * of it (study.md, study.html, claims.json, plots/study-*.svg and .png).
 *
 * A claim that does not hold is reported as a result, in the same words as one that holds: the
 * verdict, the measured numbers, the rule that decided it.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { escapeHtml, formatDuration, provenanceText } from "../report/html.js";
import type { ReportMeta } from "../report/types.js";
import {
  curveIntervals,
  formatInterval,
  intervalText,
  n90Summaries,
  STUDY_VARIANTS,
  type Claim,
  type ClaimOptions,
  type Interval,
  type N90Summary,
  type StudyPoint,
  type Verdict,
} from "./claims.js";
import { renderStudyFigures, studyFigures, type RenderedFigure, type StudyPlotOptions } from "./plots.js";

export interface StudyReportOptions extends ClaimOptions {
  /** figures to show: their title, caption and file path relative to the report (Markdown) or SVG (HTML) */
  figures?: readonly { title: string; caption: string; path?: string; svg?: string }[];
}

const SEP = "\u0000";

/** The sentence that introduces a verdict. */
export function verdictSentence(v: Verdict): string {
  if (v === "holds") return "The finding holds on these models.";
  if (v === "does not hold")
    return "The finding does not hold on these models: this is the result at this scale.";
  return "The data cannot decide it at this scale (inconclusive).";
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ").replace(/\|/g, "\\|");
}

/** "12", "3.4", "0.71": a number of edits. */
export function formatEdits(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x >= 100) return Math.round(x).toString();
  if (x >= 10) return x.toFixed(0);
  return x.toFixed(1);
}

function pct(x: number): string {
  const s = (100 * x).toFixed(1);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
}

/** "97.1 [95.0, 99.2]" in percent, or "97.1" with one seed. */
function pctInterval(iv: Interval): string {
  // no interval, or one of zero width (every seed the same, e.g. the unedited model): the value alone
  if (iv.lo === null || iv.hi === null || pct(iv.lo) === pct(iv.hi)) return pct(iv.mean);
  return `${pct(iv.mean)} [${pct(iv.lo)}, ${pct(iv.hi)}]`;
}

/** The N90 cell: "23 [17, 31]", "> 1000" when every seed is censored, a mark when some are. */
export function n90Cell(s: N90Summary): string {
  if (s.censored === s.seeds) return `> ${formatEdits(s.maxEdits)} (never below)`;
  const ci = s.lo === null || s.hi === null ? "" : ` [${formatEdits(s.lo)}, ${formatEdits(s.hi)}]`;
  const cens = s.censored ? ` (${s.censored} of ${s.seeds} censored)` : "";
  return `${formatEdits(s.n90)}${ci}${cens}`;
}

/** A short form of a claim's headline numbers: its first values. */
function headline(c: Claim): string {
  const n = c.id === "F1" ? 2 : 1;
  return c.values
    .slice(0, n)
    .map((v) => `${v.quantity}: ${formatInterval(v.estimate)}`)
    .join("; ");
}

function sizesOf(points: readonly StudyPoint[]): { size: string; params: number }[] {
  const m = new Map<string, number>();
  for (const p of points) if (!m.has(p.size)) m.set(p.size, p.params);
  return [...m].sort((a, b) => a[1] - b[1]).map(([size, params]) => ({ size, params }));
}

function methodsOf(points: readonly StudyPoint[]): string[] {
  return [...new Set(points.map((p) => p.method))];
}

function variantsOf(points: readonly StudyPoint[]) {
  return STUDY_VARIANTS.filter((v) => points.some((p) => p.variant === v));
}

function formatParams(n: number): string {
  return n >= 1e9
    ? `${(n / 1e9).toFixed(2)}B`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(2)}M`
      : `${(n / 1e3).toFixed(1)}k`;
}

/** A plain table: header and rows of cells, as Markdown or HTML. */
interface PlainTable {
  caption: string;
  head: string[];
  /** columns right-aligned from this index */
  numFrom: number;
  rows: string[][];
}

function tableMd(t: PlainTable): string {
  const lines = [
    `| ${t.head.map(oneLine).join(" | ")} |`,
    `| ${t.head.map((_, i) => (i >= t.numFrom ? "---:" : "---")).join(" | ")} |`,
  ];
  for (const r of t.rows) lines.push(`| ${r.map(oneLine).join(" | ")} |`);
  return lines.join("\n");
}

function tableHtml(t: PlainTable): string {
  const cls = (i: number) => (i >= t.numFrom ? ' class="num"' : "");
  return [
    `<table>`,
    `<caption>${escapeHtml(t.caption)}</caption>`,
    `<thead><tr>${t.head.map((h, i) => `<th${cls(i)}>${escapeHtml(h)}</th>`).join("")}</tr></thead>`,
    `<tbody>${t.rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${escapeHtml(c)}</td>`).join("")}</tr>`).join("\n")}</tbody>`,
    `</table>`,
  ].join("\n");
}

/** The claims' overview table. */
function findingsTable(claims: readonly Claim[]): PlainTable {
  return {
    caption: "The four findings",
    head: ["", "finding", "verdict", "measured (95% CI over seeds)"],
    numFrom: 99,
    rows: claims.map((c) => [c.id, c.finding, c.verdict, headline(c)]),
  };
}

function valuesTable(c: Claim): PlainTable {
  const anyCensored = c.values.some((v) => v.censored !== undefined);
  return {
    caption: `${c.id}: measured values`,
    head: ["group", "quantity", "mean [CI]", "seeds", ...(anyCensored ? ["censored N90s"] : [])],
    numFrom: 2,
    rows: c.values.map((v) => [
      v.group,
      v.quantity,
      formatInterval(v.estimate),
      String(v.estimate.n),
      ...(anyCensored ? [v.censored === undefined ? "" : String(v.censored)] : []),
    ]),
  };
}

function groupsTable(c: Claim): PlainTable {
  return {
    caption: `${c.id}: verdict per group`,
    head: ["group", "verdict", "why"],
    numFrom: 99,
    rows: c.groups.map((g) => [g.group, g.verdict, g.reason]),
  };
}

/** N90 per method: rows size, columns variant. */
function n90Tables(points: readonly StudyPoint[], opts: StudyReportOptions): PlainTable[] {
  const sums = n90Summaries(points, { ...opts, ...(opts.n90 ?? {}) });
  const variants = variantsOf(points);
  return methodsOf(points).map((method) => ({
    caption: `${method}: N90 (number of edits)`,
    head: ["size", "parameters", ...variants],
    numFrom: 1,
    rows: sizesOf(points).map(({ size, params }) => [
      size,
      formatParams(params),
      ...variants.map((v) => {
        const s = sums.find((x) => x.method === method && x.size === size && x.variant === v);
        return s ? n90Cell(s) : "–";
      }),
    ]),
  }));
}

/** Score against N per method: rows size · variant, columns the numbers of edits. */
function scoreTables(
  points: readonly StudyPoint[],
  opts: StudyReportOptions,
  which: "general" | "safety",
): PlainTable[] {
  const value = which === "general" ? (p: StudyPoint) => p.generalRel : (p: StudyPoint) => p.safety;
  const usable = points.filter((p) => value(p) !== null);
  if (usable.length === 0) return [];
  const key = (p: StudyPoint) => [p.method, p.size, p.variant].join(SEP);
  const curves = curveIntervals(usable, key, value, opts);
  // the general score's 0-edit column is 100% by definition: the unedited column gives the absolute score
  const edits = [...new Set(usable.map((p) => p.edits))]
    .filter((e) => which === "safety" || e > 0)
    .sort((a, b) => a - b);
  const variants = variantsOf(usable);
  return methodsOf(usable).map((method) => ({
    caption:
      which === "general"
        ? `${method}: general score, % of the unedited model's (mean [CI] over seeds)`
        : `${method}: safety score, % (mean [CI] over seeds; 0 edits = the unedited model)`,
    head: ["model", ...(which === "general" ? ["unedited (%)"] : []), ...edits.map(String)],
    numFrom: 1,
    rows: variants.flatMap((v) =>
      sizesOf(usable).flatMap(({ size }) => {
        const line = curves.get([method, size, v].join(SEP));
        if (!line) return [];
        const p0 = usable.find(
          (p) => p.method === method && p.size === size && p.variant === v,
        ) as StudyPoint;
        return [
          [
            `${size} ${v}`,
            ...(which === "general" ? [pct(p0.generalUnedited)] : []),
            ...edits.map((e) => {
              const c = line.find((x) => x.edits === e);
              return c ? pctInterval(c.interval) : "–";
            }),
          ],
        ];
      }),
    ),
  }));
}

function definitions(claims: readonly Claim[], opts: StudyReportOptions): string[] {
  return [
    "General score: the mean of the general tasks' primary metrics (knowledge multiple choice, arithmetic, reasoning, " +
      "commonsense multiple choice); safety score: the mean of the safety tasks' (truthfulness multiple choice, harmful-" +
      "request recognition, refusal). Relative score: the score divided by the same model's unedited score.",
    "Seeds are edit orders: each (model, method, seed) is one sequence of edits, measured at every checkpoint.",
    `Intervals: ${intervalText(opts)}. Every claim first reduces the data to one number per seed (a mean over the ` +
      "models, methods or sizes that every seed has), so the interval is over seeds only; with one seed there is none " +
      "and every verdict is inconclusive.",
    ...claims.map((c) => `${c.id}: ${c.measure}`),
  ];
}

/** The study report as Markdown. */
export function studyMarkdown(
  claims: readonly Claim[],
  points: readonly StudyPoint[],
  meta: ReportMeta,
  opts: StudyReportOptions = {},
): string {
  const out: string[] = [`# ${oneLine(meta.title)}`, ""];
  const facts = [`Run \`${meta.runId}\``, `created ${meta.createdAt}`];
  if (meta.wallSeconds !== undefined) facts.push(`wall time ${formatDuration(meta.wallSeconds)}`);
  out.push(facts.join(", ") + ".", "");
  if (meta.notes?.length) out.push(...meta.notes.map((n) => `- ${oneLine(n)}`), "");
  const seeds = new Set(points.map((p) => p.seed)).size;
  out.push(
    "## Findings",
    "",
    `Each finding of the paper is stated as a claim and answered with this run's data (${methodsOf(points).length} ` +
      `methods, ${sizesOf(points).length} sizes, ${variantsOf(points).join("/")} variants, ${seeds} seed${seeds === 1 ? "" : "s"}). ` +
      "Verdicts are reported as found: a finding that does not hold at this scale is a result, not a failure.",
    "",
    tableMd(findingsTable(claims)),
    "",
  );
  for (const c of claims) {
    out.push(`### ${c.id}. ${oneLine(c.finding)}`, "");
    out.push(`**Verdict: ${c.verdict}.** ${verdictSentence(c.verdict)} ${oneLine(c.reason)}`, "");
    out.push(`- Claim: ${oneLine(c.statement)}`);
    out.push(`- Measure: ${oneLine(c.measure)}`);
    out.push(`- Intervals: ${oneLine(c.interval)}`);
    out.push(
      `- Thresholds: ${Object.entries(c.thresholds)
        .map(([k, v]) => `${k} = ${v}`)
        .join(", ")}`,
      "",
    );
    if (c.values.length) out.push(tableMd(valuesTable(c)), "");
    if (c.groups.length) out.push(tableMd(groupsTable(c)), "");
  }
  out.push(
    "## N90 per size, variant and method",
    "",
    "N90: the number of edits at which the general score first falls below " +
      `${Math.round((opts.n90?.fraction ?? 0.9) * 100)}% of the unedited score. Cells: 2^mean(log2(1 + N90)) - 1 over ` +
      'seeds [the interval\'s ends mapped back]; "> N (never below)" when no seed falls below within N edits; ' +
      "censored seeds count at their largest N (a lower bound).",
    "",
  );
  for (const t of n90Tables(points, opts)) out.push(`**${oneLine(t.caption)}**`, "", tableMd(t), "");
  out.push("## General score against number of edits", "");
  for (const t of scoreTables(points, opts, "general"))
    out.push(`**${oneLine(t.caption)}**`, "", tableMd(t), "");
  const safety = scoreTables(points, opts, "safety");
  if (safety.length) {
    out.push("## Safety score against number of edits", "");
    for (const t of safety) out.push(`**${oneLine(t.caption)}**`, "", tableMd(t), "");
  }
  if (opts.figures?.length) {
    out.push("## Plots", "");
    for (const f of opts.figures) {
      if (f.path) out.push(`![${oneLine(f.title)}](${f.path})`, "");
      out.push(`_${oneLine(f.caption)}_`, "");
    }
  }
  out.push("## How the numbers are computed", "");
  for (const d of definitions(claims, opts)) out.push(`- ${oneLine(d)}`);
  out.push("");
  if (meta.provenance && Object.keys(meta.provenance).length) {
    out.push("## Provenance", "", "| | |", "| --- | --- |");
    for (const [k, v] of Object.entries(meta.provenance))
      out.push(`| ${oneLine(k)} | ${oneLine(provenanceText(v))} |`);
    out.push("");
  }
  return out.join("\n");
}

const VERDICT_CLASS: Record<Verdict, string> = {
  holds: "v-holds",
  "does not hold": "v-not",
  inconclusive: "v-inc",
};

/** The SVG of a figure, ready to inline (no XML prologue; a role and label). */
function inlineSvg(svg: string, label: string): string {
  return svg
    .replace(/^<\?xml[^>]*>\s*/, "")
    .replace(/^<svg\b/, `<svg role="img" aria-label="${escapeHtml(label)}"`);
}

/** The study as an HTML fragment (`<section id="study">`): claims, tables, figures (inline SVG). */
export function studyHtmlSection(
  claims: readonly Claim[],
  points: readonly StudyPoint[],
  opts: StudyReportOptions = {},
): string {
  const p: string[] = [`<section id="study">`, `<h2 id="findings">Findings</h2>`];
  p.push(
    `<p>Each finding of the paper is stated as a claim and answered with this run's data. Verdicts are reported as ` +
      `found: a finding that does not hold at this scale is a result, not a failure.</p>`,
  );
  p.push(
    `<table><caption>The four findings</caption><thead><tr><th></th><th>finding</th><th>verdict</th>` +
      `<th>measured (95% CI over seeds)</th></tr></thead><tbody>` +
      claims
        .map(
          (c) =>
            `<tr><td>${c.id}</td><td>${escapeHtml(c.finding)}</td><td class="${VERDICT_CLASS[c.verdict]}">` +
            `${escapeHtml(c.verdict)}</td><td>${escapeHtml(headline(c))}</td></tr>`,
        )
        .join("\n") +
      `</tbody></table>`,
  );
  for (const c of claims) {
    p.push(`<h3 id="claim-${c.id}">${c.id}. ${escapeHtml(c.finding)}</h3>`);
    p.push(
      `<p><strong class="${VERDICT_CLASS[c.verdict]}">Verdict: ${escapeHtml(c.verdict)}.</strong> ` +
        `${escapeHtml(verdictSentence(c.verdict))} ${escapeHtml(c.reason)}</p>`,
    );
    p.push(
      `<ul><li>Claim: ${escapeHtml(c.statement)}</li><li>Measure: ${escapeHtml(c.measure)}</li>` +
        `<li>Intervals: ${escapeHtml(c.interval)}</li><li>Thresholds: ${escapeHtml(
          Object.entries(c.thresholds)
            .map(([k, v]) => `${k} = ${v}`)
            .join(", "),
        )}</li></ul>`,
    );
    if (c.values.length) p.push(tableHtml(valuesTable(c)));
    if (c.groups.length) p.push(tableHtml(groupsTable(c)));
  }
  p.push(`<h2 id="n90">N90 per size, variant and method</h2>`);
  for (const t of n90Tables(points, opts)) p.push(tableHtml(t));
  p.push(`<h2 id="general">General score against number of edits</h2>`);
  for (const t of scoreTables(points, opts, "general")) p.push(tableHtml(t));
  const safety = scoreTables(points, opts, "safety");
  if (safety.length) {
    p.push(`<h2 id="safety">Safety score against number of edits</h2>`);
    for (const t of safety) p.push(tableHtml(t));
  }
  const figs = (opts.figures ?? []).filter((f) => f.svg);
  if (figs.length) {
    p.push(`<h2 id="plots">Plots</h2>`);
    for (const f of figs)
      p.push(
        `<figure>${inlineSvg(f.svg as string, f.title)}<figcaption>${escapeHtml(f.caption)}</figcaption></figure>`,
      );
  }
  p.push(`<h2 id="method">How the numbers are computed</h2>`);
  p.push(
    `<ul>${definitions(claims, opts)
      .map((d) => `<li>${escapeHtml(d)}</li>`)
      .join("")}</ul>`,
  );
  p.push(`</section>`);
  return p.join("\n");
}

const CSS = `
body { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.6rem; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8rem 0 1.4rem; font-size: 0.9rem; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3rem; }
th, td { border: 1px solid #d4d4d4; padding: 0.25rem 0.6rem; vertical-align: top; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.v-holds { color: #1a6b2a; font-weight: bold; }
.v-not { color: #9b2226; font-weight: bold; }
.v-inc { color: #7a5a00; font-weight: bold; }
figure { margin: 1rem 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #444; font-size: 0.9rem; }
table.kv td:first-child { font-weight: bold; white-space: nowrap; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
`;

/** The study as a page of its own. */
export function studyHtmlPage(
  claims: readonly Claim[],
  points: readonly StudyPoint[],
  meta: ReportMeta,
  opts: StudyReportOptions = {},
): string {
  const p: string[] = [
    `<!DOCTYPE html>`,
    `<html lang="en">`,
    `<head>`,
    `<meta charset="utf-8">`,
    `<meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<title>${escapeHtml(meta.title)}</title>`,
    `<style>${CSS}</style>`,
    `</head>`,
    `<body>`,
    `<h1>${escapeHtml(meta.title)}</h1>`,
  ];
  const facts = [`run <code>${escapeHtml(meta.runId)}</code>`, `created ${escapeHtml(meta.createdAt)}`];
  if (meta.wallSeconds !== undefined) facts.push(`wall time ${escapeHtml(formatDuration(meta.wallSeconds))}`);
  p.push(`<p class="meta">${facts.join(" · ")}</p>`);
  if (meta.notes?.length) p.push(`<ul>${meta.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>`);
  p.push(studyHtmlSection(claims, points, opts));
  if (meta.provenance && Object.keys(meta.provenance).length) {
    p.push(`<h2 id="provenance">Provenance</h2>`, `<table class="kv"><tbody>`);
    for (const [k, v] of Object.entries(meta.provenance))
      p.push(`<tr><td>${escapeHtml(k)}</td><td><code>${escapeHtml(provenanceText(v))}</code></td></tr>`);
    p.push(`</tbody></table>`);
  }
  if (meta.spec !== undefined)
    p.push(
      `<h2 id="spec">Study configuration</h2>`,
      `<details><summary>configuration (JSON)</summary><pre>${escapeHtml(JSON.stringify(meta.spec, null, 2) ?? "")}</pre></details>`,
    );
  p.push(`</body>`, `</html>`);
  return p.join("\n") + "\n";
}

export interface StudyReportFiles {
  dir: string;
  markdown: string;
  html: string;
  claims: string;
  figures: RenderedFigure[];
}

/**
 * Writes the study report into `dir`: study.md, study.html (self-contained), claims.json (the claims as
 * computed) and plots/study-*.svg / .png.
 */
export async function writeStudyReport(
  dir: string,
  claims: readonly Claim[],
  points: readonly StudyPoint[],
  meta: ReportMeta,
  opts: StudyReportOptions & { plot?: StudyPlotOptions; png?: boolean } = {},
): Promise<StudyReportFiles> {
  mkdirSync(dir, { recursive: true });
  const plotOpts: StudyPlotOptions = {
    ...(opts.level !== undefined ? { level: opts.level } : {}),
    ...(opts.interval !== undefined ? { interval: opts.interval } : {}),
    ...(opts.resamples !== undefined ? { resamples: opts.resamples } : {}),
    ...(opts.bootstrapSeed !== undefined ? { bootstrapSeed: opts.bootstrapSeed } : {}),
    fraction: opts.n90?.fraction ?? 0.9,
    ...opts.plot,
  };
  const figures = await renderStudyFigures(join(dir, "plots"), studyFigures(points, plotOpts), {
    png: opts.png ?? true,
  });
  const files: StudyReportFiles = {
    dir,
    markdown: join(dir, "study.md"),
    html: join(dir, "study.html"),
    claims: join(dir, "claims.json"),
    figures,
  };
  const md = studyMarkdown(claims, points, meta, {
    ...opts,
    figures: figures.map((f) => ({
      title: f.title,
      caption: f.caption,
      path: `plots/${f.name}.${f.pngPath ? "png" : "svg"}`,
    })),
  });
  writeFileSync(files.markdown, md);
  writeFileSync(
    files.html,
    studyHtmlPage(claims, points, meta, {
      ...opts,
      figures: figures.map((f) => ({ title: f.title, caption: f.caption, svg: f.svg })),
    }),
  );
  writeFileSync(files.claims, JSON.stringify(claims, null, 2) + "\n");
  return files;
}

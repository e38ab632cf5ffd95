/**
 * index.html: one self-contained page (inline CSS, inline SVG plots, no scripts, no network) with the
 * run's title, notes and provenance, the overview figure, and per benchmark its figure and tables.
 */
import { wideHtml, type WideTable } from "./wide.js";
import { cellText, tableCaption, tableTitle, type Table } from "./table.js";
import type { ReportMeta } from "./types.js";

export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** A provenance value as text: strings as they are, everything else as JSON. */
export function provenanceText(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === undefined) return "";
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** "12 min 3 s", "2 h 5 min", "41.2 s". */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** The SVG of a plot, ready to inline: the XML prologue dropped, a role and label added. */
function inlineSvg(svg: string, label: string): string {
  return svg
    .replace(/^<\?xml[^>]*>\s*/, "")
    .replace(/^<svg\b/, `<svg role="img" aria-label="${escapeHtml(label)}"`);
}

/** A table as HTML; `withModel` puts the model's name in the caption. */
export function tableHtml(t: Table, withModel = false): string {
  const head = ["method", "schedule", ...t.edits.map(String)].map(
    (h, i) => `<th${i > 1 ? ' class="num"' : ""}>${escapeHtml(h)}</th>`,
  );
  const body = t.rows.map((r) => {
    const cells = [
      `<td>${escapeHtml(r.method)}</td>`,
      `<td>${r.schedule === "" ? "–" : escapeHtml(r.schedule)}</td>`,
      ...r.cells.map((p) => `<td class="num">${escapeHtml(cellText(t, p))}</td>`),
    ];
    return `<tr>${cells.join("")}</tr>`;
  });
  const caption = tableCaption(t);
  return [
    `<table>`,
    `<caption>${escapeHtml((withModel ? t.model + ": " : "") + tableTitle(t))}${caption ? `<span class="sub">${escapeHtml(caption)}</span>` : ""}</caption>`,
    `<thead><tr>${head.join("")}</tr></thead>`,
    `<tbody>${body.join("\n")}</tbody>`,
    `</table>`,
  ].join("\n");
}

export interface HtmlSection {
  benchmark: string;
  /** the benchmark's figure (SVG text) */
  svg: string;
  tables: Table[];
}

const CSS = `
body { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8rem 0 1.4rem; font-size: 0.9rem; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3rem; }
caption .sub { font-weight: normal; color: #666; margin-left: 0.8rem; }
th, td { border: 1px solid #d4d4d4; padding: 0.25rem 0.6rem; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv td:first-child { font-weight: bold; white-space: nowrap; }
table.kv td { vertical-align: top; word-break: break-all; }
figure { margin: 1rem 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
ul.notes { color: #333; }
`;

/** The page. `overview` is the SVG of the figure with every panel. */
export function reportHtml(
  meta: ReportMeta,
  overview: string,
  sections: HtmlSection[],
  wide: readonly WideTable[] = [],
): string {
  const p: string[] = [];
  p.push(`<!DOCTYPE html>`, `<html lang="en">`, `<head>`, `<meta charset="utf-8">`);
  p.push(`<meta name="viewport" content="width=device-width, initial-scale=1">`);
  p.push(`<title>${escapeHtml(meta.title)}</title>`, `<style>${CSS}</style>`, `</head>`, `<body>`);
  p.push(`<h1>${escapeHtml(meta.title)}</h1>`);
  const facts = [`run <code>${escapeHtml(meta.runId)}</code>`, `created ${escapeHtml(meta.createdAt)}`];
  if (meta.wallSeconds !== undefined) facts.push(`wall time ${escapeHtml(formatDuration(meta.wallSeconds))}`);
  p.push(`<p class="meta">${facts.join(" · ")}</p>`);
  if (meta.notes?.length)
    p.push(`<ul class="notes">${meta.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>`);
  if (meta.provenance && Object.keys(meta.provenance).length) {
    p.push(`<h2 id="provenance">Provenance</h2>`, `<table class="kv"><tbody>`);
    for (const [k, v] of Object.entries(meta.provenance))
      p.push(`<tr><td>${escapeHtml(k)}</td><td><code>${escapeHtml(provenanceText(v))}</code></td></tr>`);
    p.push(`</tbody></table>`);
  }
  p.push(
    `<p>Scores are in percent (± standard error) where the metric is accuracy-like; the number of edits is on a symlog axis, ` +
      `so 0 (the unedited model, dashed grey line) is shown.</p>`,
  );
  p.push(
    `<h2 id="overview">Overview</h2>`,
    `<figure>${inlineSvg(overview, "overview: score vs number of edits")}</figure>`,
  );
  if (wide.length) {
    p.push(`<h2 id="tables">Tables (the paper's layout: rows method and number of edits)</h2>`);
    const withModel = new Set(wide.map((t) => t.model)).size > 1;
    for (const t of wide) p.push(wideHtml(t, withModel));
  }
  for (const s of sections) {
    p.push(`<h2 id="${escapeHtml("b-" + s.benchmark)}">${escapeHtml(s.benchmark)}</h2>`);
    p.push(`<figure>${inlineSvg(s.svg, `${s.benchmark}: score vs number of edits`)}</figure>`);
    const models = new Set(s.tables.map((t) => t.model)).size;
    for (const t of s.tables) p.push(tableHtml(t, models > 1));
  }
  if (meta.spec !== undefined) {
    p.push(`<h2 id="spec">Experiment spec</h2>`);
    p.push(
      `<details open><summary>spec (JSON)</summary><pre>${escapeHtml(JSON.stringify(meta.spec, null, 2) ?? "")}</pre></details>`,
    );
  }
  p.push(`</body>`, `</html>`);
  return p.join("\n") + "\n";
}

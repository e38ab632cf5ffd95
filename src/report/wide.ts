/**
 * The paper's table layout (Li et al. 2024, Tables 1-3): one table per (model, schedule) and group of
 * benchmarks; rows are the unedited model and then each method at each number of edits; columns are
 * the benchmarks (one metric each). Complements the per-benchmark tables (method x edits).
 */
import { distinct, measureKey, type Point } from "./aggregate.js";
import { formatCell } from "./table.js";
import { isUnedited } from "./types.js";
import { escapeHtml } from "./html.js";

export interface WideTable {
  model: string;
  schedule: string;
  /** a title for the group of columns ("general abilities", "edit metrics", ...) */
  group: string;
  /** column labels: "benchmark · metric" (the metric left out where it is the benchmark's only one) */
  columns: { benchmark: string; metric: string; label: string; percent: boolean }[];
  rows: { method: string; edits: number; cells: (Point | undefined)[] }[];
}

/** Groups of columns: the edit metrics apart from the benchmarks. */
function groupOf(benchmark: string): string {
  return benchmark.startsWith("edit/") ? "edit metrics" : "benchmarks";
}

export function wideTables(points: readonly Point[], percent: Map<string, boolean>): WideTable[] {
  const out: WideTable[] = [];
  for (const model of distinct(points.map((p) => p.model))) {
    const mine = points.filter((p) => p.model === model);
    const schedules = distinct(mine.filter((p) => !isUnedited(p.method)).map((p) => p.schedule));
    for (const group of distinct(mine.map((p) => groupOf(p.benchmark)))) {
      const inGroup = mine.filter((p) => groupOf(p.benchmark) === group);
      const measures = distinct(inGroup.map((p) => `${p.benchmark}\u0000${p.metric}`)).map((k) => {
        const [benchmark, metric] = k.split("\u0000") as [string, string];
        return { benchmark, metric };
      });
      const perBenchmark = (b: string) => measures.filter((m) => m.benchmark === b).length;
      const columns = measures.map((m) => ({
        ...m,
        label: perBenchmark(m.benchmark) > 1 ? `${m.benchmark} · ${m.metric}` : m.benchmark,
        percent: percent.get(measureKey(m)) ?? false,
      }));
      const find = (method: string, schedule: string | null, edits: number, c: (typeof columns)[number]) =>
        inGroup.find(
          (p) =>
            p.method === method &&
            (schedule === null || p.schedule === schedule) &&
            p.edits === edits &&
            p.benchmark === c.benchmark &&
            p.metric === c.metric,
        );
      for (const schedule of schedules) {
        const rows: WideTable["rows"] = [];
        const unedited = inGroup.filter((p) => isUnedited(p.method));
        for (const e of distinct(unedited.map((p) => p.edits)).sort((a, b) => a - b))
          rows.push({
            method: unedited[0]?.method ?? "unedited",
            edits: e,
            cells: columns.map((c) => find(unedited[0]?.method ?? "unedited", null, e, c)),
          });
        const edited = inGroup.filter((p) => !isUnedited(p.method) && p.schedule === schedule);
        for (const method of distinct(edited.map((p) => p.method)))
          for (const e of distinct(edited.filter((p) => p.method === method).map((p) => p.edits)).sort(
            (a, b) => a - b,
          ))
            rows.push({ method, edits: e, cells: columns.map((c) => find(method, schedule, e, c)) });
        if (rows.some((r) => !isUnedited(r.method))) out.push({ model, schedule, group, columns, rows });
      }
    }
  }
  return out;
}

export function wideTitle(t: WideTable, withModel: boolean): string {
  return `${withModel ? `${t.model}, ` : ""}${t.group}, ${t.schedule}`;
}

function text(t: WideTable, i: number, p: Point | undefined): string {
  return p ? formatCell(p.value, p.stderr, (t.columns[i] as WideTable["columns"][number]).percent) : "–";
}

export function wideMarkdown(t: WideTable): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const head = ["method", "edits", ...t.columns.map((c) => esc(c.label) + (c.percent ? " (%)" : ""))];
  const lines = [
    `| ${head.join(" | ")} |`,
    `| ${["---", "---:", ...t.columns.map(() => "---:")].join(" | ")} |`,
  ];
  for (const r of t.rows)
    lines.push(
      `| ${[esc(r.method), String(r.edits), ...r.cells.map((p, i) => text(t, i, p))].join(" | ")} |`,
    );
  return lines.join("\n");
}

export function wideHtml(t: WideTable, withModel: boolean): string {
  const head = ["method", "edits", ...t.columns.map((c) => c.label + (c.percent ? " (%)" : ""))]
    .map((h, i) => `<th${i > 0 ? ' class="num"' : ""}>${escapeHtml(h)}</th>`)
    .join("");
  const body = t.rows
    .map(
      (r) =>
        `<tr><td>${escapeHtml(r.method)}</td><td class="num">${r.edits}</td>${r.cells
          .map((p, i) => `<td class="num">${escapeHtml(text(t, i, p))}</td>`)
          .join("")}</tr>`,
    )
    .join("");
  return `<table><caption>${escapeHtml(wideTitle(t, withModel))}</caption><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

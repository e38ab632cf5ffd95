/**
 * The results table lm-evaluation-harness prints (lm_eval/utils.py make_table): one row per task or
 * group and metric, groups before their tasks with indentation by depth, Markdown.
 */
import type { HarnessResults, MetricValue } from "./evaluate.js";

const ARROWS: Record<string, string> = { true: "↑", false: "↓" };

function depths(r: HarnessResults, keys: string[]): { order: string[]; depth: Map<string, number> } {
  const sub = r.group_subtasks ?? {};
  const depth = new Map<string, number>();
  const order: string[] = [];
  const children = new Set(Object.values(sub).flat());
  const visit = (k: string, d: number): void => {
    if (depth.has(k)) return;
    depth.set(k, d);
    if (keys.includes(k)) order.push(k);
    for (const c of sub[k] ?? []) visit(c, d + 1);
  };
  for (const k of keys) if (!children.has(k)) visit(k, 0);
  for (const k of keys) if (!depth.has(k)) visit(k, 0);
  return { order, depth };
}

export function makeTable(r: HarnessResults, column: "results" | "groups" = "results"): string {
  const data = r[column] ?? {};
  const headers = [
    column === "groups" ? "Groups" : "Tasks",
    "Version",
    "Filter",
    "n-shot",
    "Metric",
    "",
    "Value",
    "",
    "Stderr",
  ];
  const rows: string[][] = [];
  const { order, depth } = depths(r, Object.keys(data));
  for (const k of order) {
    const dic: Record<string, MetricValue> = { ...(data[k] as Record<string, MetricValue>) };
    let name = String(dic.alias ?? k);
    delete dic.alias;
    const d = depth.get(k) ?? 0;
    if (d > 0) name = " ".repeat(d) + "- " + name;
    let version = r.versions[k] !== undefined ? String(r.versions[k]) : "    N/A";
    const n = r["n-shot"][k] !== undefined ? String(r["n-shot"][k]) : "";
    const hib = r.higher_is_better[k] ?? {};
    const metrics = Object.keys(dic).sort();
    if (metrics.length === 0) rows.push([name, version, "", n, "", "", "", "", ""]);
    for (const mf of metrics) {
      const [m, f = ""] = mf.split(",") as [string, string?];
      if (m.endsWith("_stderr")) continue;
      const v = dic[mf] as MetricValue;
      const value = typeof v === "number" ? v.toFixed(4) : String(v);
      const arrow = hib[m] !== undefined ? (ARROWS[String(hib[m])] as string) : "";
      const se = dic[`${m}_stderr,${f}`];
      if (se !== undefined)
        rows.push([
          name,
          version,
          f,
          n,
          m,
          arrow,
          value,
          "±",
          typeof se === "number" ? se.toFixed(4) : "   N/A",
        ]);
      else rows.push([name, version, f, n, m, arrow, value, "", ""]);
      name = "";
      version = "";
    }
  }
  const right = new Set([1, 3, 6, 8]);
  const width = headers.map((h, i) =>
    Math.max(h.length, 3, ...rows.map((row) => [...(row[i] as string)].length)),
  );
  const pad = (s: string, i: number): string => {
    const w = width[i] as number;
    const len = [...s].length;
    return right.has(i) ? " ".repeat(w - len) + s : s + " ".repeat(w - len);
  };
  const center = (s: string, i: number): string => {
    const w = width[i] as number;
    const left = Math.floor((w - s.length) / 2);
    return " ".repeat(left) + s + " ".repeat(w - s.length - left);
  };
  const line = (cells: string[]): string => "|" + cells.join("|") + "|";
  return [
    line(headers.map(center)),
    line(width.map((w, i) => (right.has(i) ? "-".repeat(w - 1) + ":" : "-".repeat(w)))),
    ...rows.map((row) => line(row.map(pad))),
  ].join("\n");
}

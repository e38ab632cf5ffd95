/** summary.md: the run's facts, then one Markdown table per (model,) benchmark and metric. */
import { formatDuration, provenanceText } from "./html.js";
import { tableCaption, tableMarkdown, tableTitle, type Table } from "./table.js";
import type { ReportMeta } from "./types.js";
import { wideMarkdown, wideTitle, type WideTable } from "./wide.js";

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ").replace(/\|/g, "\\|");
}

export function summaryMarkdown(
  meta: ReportMeta,
  tables: readonly Table[],
  wide: readonly WideTable[] = [],
): string {
  const out: string[] = [`# ${oneLine(meta.title)}`, ""];
  const facts = [`Run \`${meta.runId}\``, `created ${meta.createdAt}`];
  if (meta.wallSeconds !== undefined) facts.push(`wall time ${formatDuration(meta.wallSeconds)}`);
  out.push(facts.join(", ") + ".", "");
  if (meta.notes?.length) out.push(...meta.notes.map((n) => `- ${oneLine(n)}`), "");
  if (meta.provenance && Object.keys(meta.provenance).length) {
    out.push("| provenance | |", "| --- | --- |");
    for (const [k, v] of Object.entries(meta.provenance))
      out.push(`| ${oneLine(k)} | ${oneLine(provenanceText(v))} |`);
    out.push("");
  }
  if (wide.length) {
    out.push("## Tables in the paper's layout", "");
    const withModel = new Set(wide.map((t) => t.model)).size > 1;
    for (const t of wide) out.push(`### ${oneLine(wideTitle(t, withModel))}`, "", wideMarkdown(t), "");
    out.push("## Per benchmark", "");
  }
  out.push(
    "Rows: method and schedule; columns: number of edits. Cells: value ± standard error, in percent with one " +
      "decimal where the metric is accuracy-like (marked (%)); – where nothing was measured.",
    "",
  );
  const models = [...new Set(tables.map((t) => t.model))];
  for (const model of models) {
    if (models.length > 1) out.push(`## ${oneLine(model)}`, "");
    for (const t of tables.filter((x) => x.model === model)) {
      out.push(`${models.length > 1 ? "###" : "##"} ${oneLine(tableTitle(t))}`, "");
      out.push(tableMarkdown(t), "");
      const caption = tableCaption(t);
      if (caption) out.push(`_${caption}_`, "");
    }
  }
  return out.join("\n");
}

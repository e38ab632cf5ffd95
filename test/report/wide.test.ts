// The paper's table layout: rows method x edits, columns benchmarks, one table per schedule.
import { test } from "node:test";
import assert from "node:assert/strict";
import { aggregate } from "../../src/report/aggregate.js";
import { percentByMeasure } from "../../src/report/table.js";
import { wideMarkdown, wideTables } from "../../src/report/wide.js";
import type { ResultRow } from "../../src/report/types.js";

const row = (
  method: string,
  schedule: string,
  edits: number,
  benchmark: string,
  value: number,
): ResultRow => ({
  model: "m",
  method,
  schedule,
  edits,
  benchmark,
  metric: "acc",
  value,
  stderr: 0.01,
});

test("wide tables: the unedited row first, then each method at each number of edits; edit metrics apart", () => {
  const rows = [
    row("unedited", "none", 0, "mmlu", 0.5),
    row("unedited", "none", 0, "gsm8k", 0.25),
    row("ROME", "sequential", 10, "mmlu", 0.4),
    row("ROME", "sequential", 50, "mmlu", 0.3),
    row("ROME", "sequential", 10, "gsm8k", 0.125),
    row("ROME", "sequential", 10, "edit/reliability", 1),
  ];
  const points = aggregate(rows);
  const wide = wideTables(points, percentByMeasure(points));
  assert.deepEqual(
    wide.map((t) => [t.group, t.schedule]),
    [
      ["benchmarks", "sequential"],
      ["edit metrics", "sequential"],
    ],
  );
  const md = wideMarkdown(wide[0] as (typeof wide)[number]).split("\n");
  assert.equal(md[0], "| method | edits | mmlu (%) | gsm8k (%) |");
  assert.equal(md[2], "| unedited | 0 | 50.0 ± 1.0 | 25.0 ± 1.0 |");
  assert.equal(md[3], "| ROME | 10 | 40.0 ± 1.0 | 12.5 ± 1.0 |");
  assert.equal(md[4], "| ROME | 50 | 30.0 ± 1.0 | – |");
  assert.equal(md.length, 5);
});

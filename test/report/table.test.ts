import { test } from "node:test";
import assert from "node:assert/strict";
import {
  aggregate,
  buildTables,
  formatCell,
  isAccuracyLike,
  tableMarkdown,
  uneditedPoint,
  type ResultRow,
} from "../../src/report/index.js";
import { plotFileNames } from "../../src/report/index.js";

const row = (
  method: string,
  schedule: string,
  edits: number,
  value: number,
  extra: Partial<ResultRow> = {},
): ResultRow => ({
  model: "m",
  method,
  schedule,
  edits,
  benchmark: "mmlu",
  metric: "acc",
  value,
  ...extra,
});

test("formatCell: percent with one decimal for accuracy-like metrics, plain numbers otherwise", () => {
  assert.equal(formatCell(0.4531, 0.0123, true), "45.3 ± 1.2");
  assert.equal(formatCell(0.4531, null, true), "45.3");
  assert.equal(formatCell(1, 0, true), "100.0 ± 0.0");
  assert.equal(formatCell(-0.00001, undefined, true), "0.0");
  assert.equal(formatCell(6.21349, 0.0311, false), "6.213 ± 0.031");
  assert.equal(formatCell(25.4321, 1.234, false), "25.43 ± 1.23");
  assert.ok(isAccuracyLike("acc", [0, 0.5, 1]));
  assert.ok(isAccuracyLike("exact_match,strict-match", [0.3]));
  assert.ok(!isAccuracyLike("acc", [0.5, 1.2]));
  assert.ok(!isAccuracyLike("word_perplexity", [0.5]));
  assert.ok(!isAccuracyLike("ngram_entropy", [0.5]));
});

test("tables: rows method x schedule (unedited first), columns edits, a row per series", () => {
  const rows = [
    row("ROME", "sequential", 10, 0.4),
    row("unedited", "sequential", 0, 0.5, { stderr: 0.01 }),
    row("unedited", "batch", 0, 0.5, { stderr: 0.01 }), // the same unedited model recorded per schedule
    row("ROME", "batch", 100, 0.45),
    row("MEMIT", "sequential", 10, 0.48),
  ];
  const [t] = buildTables(aggregate(rows));
  assert.ok(t);
  assert.deepEqual(t.edits, [0, 10, 100]);
  assert.deepEqual(
    t.rows.map((r) => `${r.method}/${r.schedule}`),
    ["unedited/", "ROME/sequential", "ROME/batch", "MEMIT/sequential"],
  );
  assert.equal(
    tableMarkdown(t),
    [
      "| method | schedule | 0 | 10 | 100 |",
      "| --- | --- | ---: | ---: | ---: |",
      "| unedited | – | 50.0 ± 1.0 | – | – |",
      "| ROME | sequential | – | 40.0 | – |",
      "| ROME | batch | – | – | 45.0 |",
      "| MEMIT | sequential | – | 48.0 | – |",
    ].join("\n"),
  );
});

test("aggregate: seeds are averaged with the standard error over seeds; conflicting duplicates throw", () => {
  const ps = aggregate([
    row("ROME", "sequential", 10, 0.4, { seed: 1 }),
    row("ROME", "sequential", 10, 0.6, { seed: 2 }),
  ]);
  assert.equal(ps.length, 1);
  assert.ok(Math.abs((ps[0]?.value ?? 0) - 0.5) < 1e-12);
  assert.ok(Math.abs((ps[0]?.stderr ?? 0) - 0.1) < 1e-12); // sd 0.1414 / sqrt(2)
  assert.equal(ps[0]?.seeds, 2);
  assert.throws(
    () => aggregate([row("ROME", "sequential", 10, 0.4), row("ROME", "sequential", 10, 0.6)]),
    /rows 0 and 1 measure the same thing.*different values/,
  );
  // without an "unedited" row the 0-edit points of the methods give the reference
  const ref = uneditedPoint(
    aggregate([row("ROME", "sequential", 0, 0.5), row("ROME", "sequential", 10, 0.4)]),
    "m",
    {
      benchmark: "mmlu",
      metric: "acc",
    },
  );
  assert.equal(ref?.value, 0.5);
});

test("plotFileNames: safe, distinct, never 'overview'", () => {
  const names = plotFileNames(["edit/rewrite_acc", "edit_rewrite_acc", "overview", "../x", "Ω"]);
  assert.deepEqual([...names.values()], ["edit_rewrite_acc", "edit_rewrite_acc-2", "overview-2", "__x", "_"]);
});

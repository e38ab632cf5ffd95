import { test } from "node:test";
import assert from "node:assert/strict";
import {
  fromCsv,
  parseCsv,
  toCsv,
  ReportInputError,
  validateRows,
  type ResultRow,
} from "../../src/report/index.js";

const ROWS: ResultRow[] = [
  {
    model: "gpt2-xl",
    method: "unedited",
    schedule: "sequential",
    edits: 0,
    benchmark: "mmlu",
    metric: "acc",
    value: 0.4531,
    stderr: 0.0123,
    n: 1000,
  },
  {
    model: "gpt2-xl",
    method: "ROME",
    schedule: "sequential",
    edits: 10,
    benchmark: "gsm8k",
    metric: "exact_match,strict-match",
    value: 0.1 + 0.2,
    stderr: null,
    seed: 0,
  },
  {
    model: 'dir "a", b',
    method: "MEMIT",
    schedule: "batch-10",
    edits: 1000,
    benchmark: "edit/rewrite_acc",
    metric: "rewrite_acc",
    value: 1e-7,
    seed: -3,
  },
  {
    model: " spaced ",
    method: "FT-L",
    schedule: "batch",
    edits: 20,
    benchmark: "world/knowledge_mc",
    metric: "line\nbreak",
    value: 6.283185307179586,
    stderr: 0,
    n: 0,
  },
];

test("csv: fromCsv(toCsv(rows)) gives the rows back exactly", () => {
  const text = toCsv(ROWS);
  assert.ok(text.startsWith("model,method,schedule,edits,benchmark,metric,value,stderr,n,seed\n"));
  assert.deepEqual(fromCsv(text), ROWS);
  // CRLF line ends and a byte-order mark read the same
  assert.deepEqual(
    fromCsv("\ufeff" + text.replace(/\n/g, "\r\n").replace("line\r\nbreak", "line\nbreak")),
    ROWS,
  );
});

test("csv: quoted cells, doubled quotes and missing optional columns", () => {
  assert.deepEqual(parseCsv('a,"b,c","d""e"\n1,,"x\ny"\n'), [
    ["a", "b,c", 'd"e'],
    ["1", "", "x\ny"],
  ]);
  const rows = fromCsv(
    "benchmark,metric,value,model,method,schedule,edits\nmmlu,acc,0.5,m,ROME,sequential,10\n",
  );
  assert.deepEqual(rows, [
    {
      benchmark: "mmlu",
      metric: "acc",
      value: 0.5,
      model: "m",
      method: "ROME",
      schedule: "sequential",
      edits: 10,
    },
  ]);
});

test("csv: errors name the row and the field", () => {
  const head = "model,method,schedule,edits,benchmark,metric,value\n";
  assert.throws(
    () => fromCsv(head + "m,ROME,sequential,10,mmlu,acc,0.5\nm,ROME,sequential,x,mmlu,acc,0.5\n"),
    (e: unknown) => {
      assert.ok(e instanceof ReportInputError);
      assert.match(e.message, /row 1 \(line 3\).*"edits"/);
      assert.equal(e.row, 1);
      assert.equal(e.field, "edits");
      return true;
    },
  );
  assert.throws(
    () => fromCsv(head + "m,ROME,sequential,10,mmlu,acc,\n"),
    /row 0: field "value" must be a finite number, got nothing/,
  );
  assert.throws(() => fromCsv("model,method,edits\n"), /no column "schedule"/);
  assert.throws(
    () => fromCsv(head + "m,ROME,sequential,10,mmlu\n"),
    /row 0 \(line 2\) has 5 cells, the header has 7/,
  );
  assert.throws(() => fromCsv(head + 'm,"ROME\n'), /quoted cell is not closed/);
});

test("validateRows: NaN values and missing fields are named by row index and field", () => {
  const good = ROWS[0] as ResultRow;
  const check = (rows: unknown[], re: RegExp, row: number, field: string) =>
    assert.throws(
      () => validateRows(rows),
      (e: unknown) => {
        assert.ok(e instanceof ReportInputError, String(e));
        assert.match(e.message, re);
        assert.equal(e.row, row);
        assert.equal(e.field, field);
        return true;
      },
    );
  check(
    [good, good, { ...good, value: NaN }],
    /row 2: field "value" must be a finite number, got NaN/,
    2,
    "value",
  );
  const { metric: _m, ...noMetric } = good;
  check(
    [good, noMetric],
    /row 1: field "metric" must be a string, got nothing \(the field is missing\)/,
    1,
    "metric",
  );
  check([{ ...good, edits: 2.5 }], /row 0: field "edits" must be a whole number >= 0/, 0, "edits");
  check([{ ...good, stderr: -1 }], /row 0: field "stderr"/, 0, "stderr");
  check([{ ...good, method: " " }], /row 0: field "method" must not be empty/, 0, "method");
  assert.throws(() => validateRows([good, null]), /row 1: expected an object, got null/);
});

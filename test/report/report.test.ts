import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  fromCsv,
  svgSize,
  writeReport,
  PNG_SCALE,
  ReportInputError,
  type ReportFiles,
  type ReportMeta,
  type ResultRow,
} from "../../src/report/index.js";

const METHODS = ["ROME", "MEMIT", "AlphaEdit"];
const SCHEDULES = ["sequential", "batch-10"];
const EDITS = [10, 50, 200];

/** Two benchmarks (one with two metrics) and an edit metric without an unedited score. */
function makeRows(): ResultRow[] {
  const rows: ResultRow[] = [];
  const measures: [string, string, number | null][] = [
    ["mmlu", "acc", 0.452],
    ["gsm8k", "exact_match,strict-match", 0.31],
    ["gsm8k", "exact_match,flexible-extract", 0.33],
    ["edit/fluency", "ngram_entropy", 6.2],
    ["edit/rewrite_acc", "rewrite_acc", null],
  ];
  for (const [benchmark, metric, base] of measures) {
    const entropy = metric === "ngram_entropy";
    if (base !== null)
      rows.push({
        model: "demo",
        method: "unedited",
        schedule: "sequential",
        edits: 0,
        benchmark,
        metric,
        value: base,
        stderr: 0.0157,
        n: 1000,
      });
    METHODS.forEach((method, i) =>
      SCHEDULES.forEach((schedule, j) =>
        EDITS.forEach((edits, k) => {
          const drop = 0.01 * (i + 1) * (j + 1) * (k + 1);
          const value = entropy ? 6.2 - 10 * drop : (base ?? 0.99) - drop;
          rows.push({
            model: "demo",
            method,
            schedule,
            edits,
            benchmark,
            metric,
            value,
            stderr: entropy ? 0.031 : 0.0123,
            n: 1000,
            seed: 0,
          });
        }),
      ),
    );
  }
  // the cell checked by hand below
  rows.push({
    model: "demo",
    method: "FT-L",
    schedule: "sequential",
    edits: 10,
    benchmark: "mmlu",
    metric: "acc",
    value: 0.4531,
    stderr: 0.0123,
    n: 1000,
  });
  rows.push({
    model: "demo",
    method: "FT-L",
    schedule: "sequential",
    edits: 10,
    benchmark: "edit/fluency",
    metric: "ngram_entropy",
    value: 6.21349,
    stderr: 0.0311,
    n: 1000,
  });
  return rows;
}

const META: ReportMeta = {
  title: "Test report <&>",
  runId: "run-1",
  createdAt: "2024-01-01T00:00:00Z",
  wallSeconds: 725,
  notes: ["MMLU: a subset"],
  provenance: { modelHash: "abc", source: "https://example.org/model" },
  spec: { methods: METHODS },
};

let dir = "";
let files: ReportFiles;
const rows = makeRows();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "editeval-report-"));
  files = await writeReport(join(dir, "out"), rows, META);
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("report: writes results.csv, summary.md, index.html and an SVG and PNG per benchmark plus the overview", () => {
  const out = join(dir, "out");
  for (const f of ["results.csv", "summary.md", "index.html", "plots/overview.svg", "plots/overview.png"])
    assert.ok(existsSync(join(out, f)), f);
  assert.deepEqual(
    files.plots.map((p) => p.svg.slice(out.length + 1)),
    ["plots/mmlu.svg", "plots/gsm8k.svg", "plots/edit_fluency.svg", "plots/edit_rewrite_acc.svg"],
  );
  for (const p of files.plots) assert.ok(p.png && existsSync(p.png), p.benchmark);
});

test("report: results.csv round-trips the rows exactly", () => {
  assert.deepEqual(fromCsv(readFileSync(files.csv, "utf8")), rows);
});

/** The cells of the Markdown table under `heading`, by row label "method/schedule" and column. */
function markdownTable(md: string, heading: string): Map<string, Map<string, string>> {
  const start = md.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `no heading ${heading}`);
  const lines = md
    .slice(start + heading.length + 2)
    .trimStart()
    .split("\n");
  const end = lines.findIndex((l) => !l.startsWith("|"));
  const table = lines.slice(0, end).map((l) => l.slice(2, -2).split(" | "));
  const head = table[0] as string[];
  const out = new Map<string, Map<string, string>>();
  for (const r of table.slice(2))
    out.set(`${r[0]}/${r[1]}`, new Map(head.map((h, j) => [h, r[j] as string])));
  return out;
}

test("report: a summary.md cell equals the hand-formatted value", () => {
  const md = readFileSync(files.summary, "utf8");
  assert.match(md, /^# Test report <&>\n/);
  assert.match(md, /wall time 12 min 5 s/);
  const mmlu = markdownTable(md, "## mmlu · acc (%)");
  assert.equal(mmlu.get("FT-L/sequential")?.get("10"), "45.3 ± 1.2");
  assert.equal(mmlu.get("FT-L/sequential")?.get("50"), "–");
  assert.equal(mmlu.get("unedited/–")?.get("0"), "45.2 ± 1.6");
  assert.equal(mmlu.get("ROME/batch-10")?.get("200"), "39.2 ± 1.2"); // 0.452 - 0.01*1*2*3
  const fluency = markdownTable(md, "## edit/fluency · ngram_entropy");
  assert.equal(fluency.get("FT-L/sequential")?.get("10"), "6.213 ± 0.031");
  assert.ok(markdownTable(md, "## gsm8k · exact_match,flexible-extract (%)").has("AlphaEdit/batch-10"));
});

/** The number of `<tag` elements inside the Vega mark groups of class `name`. */
function countInMarks(svg: string, name: string, tag: string): number {
  let count = 0;
  const open = new RegExp(`<g class="mark-[a-z]+ role-mark ${name}"[^>]*?(/?)>`, "g");
  for (const m of svg.matchAll(open)) {
    if (m[1] === "/") continue; // an empty group
    const rest = svg.slice((m.index ?? 0) + m[0].length);
    const body = rest.slice(0, rest.indexOf("</g>"));
    count += body.split(`<${tag} `).length - 1;
  }
  return count;
}

test("report: the SVG has one path per method line and the unedited reference line", () => {
  const lines = METHODS.length * SCHEDULES.length + 1; // + FT-L
  const mmlu = readFileSync(files.plots[0]?.svg as string, "utf8");
  assert.equal(countInMarks(mmlu, "lines_marks", "path"), lines);
  assert.equal(countInMarks(mmlu, "reference_marks", "line"), 1);
  for (const m of [...METHODS, "FT-L"]) assert.ok(mmlu.includes(`method: ${m};`), m);
  // gsm8k: two panels (metrics), each with its lines and its reference
  const gsm8k = readFileSync(files.plots[1]?.svg as string, "utf8");
  assert.equal(countInMarks(gsm8k, "lines_marks", "path"), 2 * METHODS.length * SCHEDULES.length);
  assert.equal(countInMarks(gsm8k, "reference_marks", "line"), 2);
  // no unedited rows: no reference line
  const rewrite = readFileSync(files.plots[3]?.svg as string, "utf8");
  assert.equal(countInMarks(rewrite, "reference_marks", "line"), 0);
  // the overview: every panel
  const overview = readFileSync(files.overview.svg, "utf8");
  assert.equal(countInMarks(overview, "lines_marks", "path"), 5 * METHODS.length * SCHEDULES.length + 2);
  assert.equal(countInMarks(overview, "reference_marks", "line"), 4);
  assert.match(overview, /font-family="DejaVu Sans/);
});

function pngSize(png: Buffer): { width: number; height: number } {
  assert.deepEqual(
    [...png.subarray(0, 8)],
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    "PNG signature",
  );
  assert.equal(png.toString("latin1", 12, 16), "IHDR");
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

test("report: each PNG is a valid PNG of the SVG's size times the scale", () => {
  for (const p of [files.overview, ...files.plots]) {
    const svg = svgSize(readFileSync(p.svg, "utf8"));
    const png = pngSize(readFileSync(p.png as string));
    assert.deepEqual(
      png,
      { width: Math.round(svg.width * PNG_SCALE), height: Math.round(svg.height * PNG_SCALE) },
      p.benchmark,
    );
  }
});

test("report: index.html is self-contained and inlines every plot", () => {
  const html = readFileSync(files.html, "utf8");
  assert.doesNotMatch(html, /\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
  assert.doesNotMatch(html, /<script|<link|<img|url\(/i);
  assert.match(html, /<title>Test report &lt;&amp;&gt;<\/title>/);
  assert.match(html, /<td>modelHash<\/td><td><code>abc<\/code><\/td>/);
  for (const p of [files.overview, ...files.plots]) {
    const svg = readFileSync(p.svg, "utf8");
    assert.ok(html.includes(svg.slice(svg.indexOf(">") + 1)), `${p.benchmark} is not inlined`);
  }
  assert.ok(html.includes(`<td class="num">45.3 ± 1.2</td>`));
});

test("report: bad rows are refused before anything is written", async () => {
  const bad = rows.map((r) => ({ ...r }));
  (bad[7] as ResultRow).value = NaN;
  const out = join(dir, "bad");
  await assert.rejects(writeReport(out, bad, META), (e: unknown) => {
    assert.ok(e instanceof ReportInputError);
    assert.match(e.message, /row 7: field "value" must be a finite number, got NaN/);
    return true;
  });
  const missing = rows.map((r) => ({ ...r })) as Partial<ResultRow>[];
  delete missing[3]?.benchmark;
  await assert.rejects(
    writeReport(out, missing as ResultRow[], META),
    /row 3: field "benchmark" must be a string/,
  );
  await assert.rejects(writeReport(out, [], META), /no rows/);
  assert.ok(!existsSync(out));
});

/**
 * The study's figures and report on a small synthetic study (test/study/synthetic.ts) and hand-made
 * points: the figures carry the intervals over seeds as error bars, the right legends and panels; the
 * report leads with the four verdicts and writes its files.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderSvg, svgSize, svgToPng } from "../../src/report/plot.js";
import { computeClaims, studyPoints, type Claim, type StudyPoint } from "../../src/study/claims.js";
import { editTicks, studyFigures } from "../../src/study/plots.js";
import { n90Cell, studyHtmlSection, studyMarkdown, writeStudyReport } from "../../src/study/report.js";
import { syntheticModels, syntheticRows } from "./synthetic.js";

const HW3 = 4.302652729749464 / Math.sqrt(3);
const META = { title: "Study (synthetic)", runId: "t", createdAt: "2024-01-01T00:00:00Z" };
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** One model per variant, one method, 3 seeds; relative general score at N = 10 is [0.7, 0.8, 0.9]. */
function handPoints(): StudyPoint[] {
  const out: StudyPoint[] = [];
  for (const variant of ["base", "instruct", "aligned"] as const)
    for (const seed of [0, 1, 2])
      for (const [edits, rel] of [
        [0, 1],
        [10, 0.7 + 0.1 * seed],
        [100, 0.2],
      ] as const)
        out.push({
          model: `m-${variant}`,
          size: "S",
          params: 1e6,
          variant,
          method: "ROME",
          schedule: "sequential",
          seed,
          edits,
          general: 0.5 * rel,
          generalRel: rel,
          safety: 0.8 * rel,
          safetyRel: rel,
          generalUnedited: 0.5,
          safetyUnedited: 0.8,
        });
  return out;
}

type Datum = Record<string, unknown>;
const dataOf = (spec: unknown) => (spec as { data: { values: Datum[] } }).data.values;

test("studyFigures: three figures; error bars are the t-intervals over seeds; the safety figure has no reference line", () => {
  const figs = studyFigures(handPoints());
  assert.deepEqual(
    figs.map((f) => f.name),
    ["study-general-by-size", "study-base-vs-instruct", "study-safety"],
  );
  const d = dataOf(figs[0]?.spec).find(
    (x) => x.kind === "point" && x.edits === 10 && /base/.test(String(x.panel)),
  );
  // [0.7, 0.8, 0.9]: mean 0.8, sd 0.1, in percent 80 ± 10 · 2.484138
  assert.ok(d);
  assert.ok(Math.abs((d.y as number) - 80) < 1e-9);
  assert.ok(Math.abs((d.lo as number) - (80 - 10 * HW3)) < 1e-9);
  assert.ok(Math.abs((d.hi as number) - (80 + 10 * HW3)) < 1e-9);
  // the general figures have the unedited line at 100%; the safety figure none
  assert.ok(dataOf(figs[0]?.spec).some((x) => x.kind === "ref" && x.y === 100));
  assert.ok(!dataOf(figs[2]?.spec).some((x) => x.kind === "ref"));
  // panels: variant x method for the first figure (3 here), one per method for the others
  assert.equal(new Set(dataOf(figs[0]?.spec).map((x) => x.panel)).size, 3);
  assert.equal(new Set(dataOf(figs[1]?.spec).map((x) => x.panel)).size, 1);
  // the safety figure shows base and aligned only
  assert.deepEqual([...new Set(dataOf(figs[2]?.spec).map((x) => x.method))].sort(), ["aligned", "base"]);
  assert.deepEqual(editTicks([0, 1, 5, 10, 20, 50, 100, 200, 500, 1000]), [0, 1, 10, 100, 1000]);
  assert.deepEqual(editTicks([0, 5, 50, 200]), [0, 1, 10, 100, 200]);
});

test("studyFigures render to SVG and PNG with the study's legend and axis titles", async () => {
  const pts = studyPoints(syntheticRows(["ROME", "MEMIT"], [0, 1]), syntheticModels());
  const figs = studyFigures(pts);
  const svg = await renderSvg(figs[1]?.spec as never);
  const { width, height } = svgSize(svg);
  assert.ok(width > 400 && height > 150, `${width} x ${height}`);
  for (const text of [
    "model size",
    "variant",
    "general score (% of unedited)",
    "number of edits",
    "ROME",
    "MEMIT",
  ])
    assert.ok(svg.includes(text), `the SVG shows '${text}'`);
  assert.ok(!svg.includes(">schedule<"), "no 'schedule' legend");
  const png = svgToPng(svg, 1);
  assert.equal(png.subarray(1, 4).toString("latin1"), "PNG");
});

test("studyMarkdown: the four verdicts first, plain wording for a finding that does not hold, the tables", () => {
  const pts = handPoints();
  const claims = computeClaims(pts);
  const md = studyMarkdown(claims, pts, META);
  const findings = md.indexOf("## Findings");
  assert.ok(findings > 0 && findings < md.indexOf("## N90"));
  for (const c of claims) assert.ok(md.includes(`**Verdict: ${c.verdict}.**`));
  // F2 here: instruct and base have the same curves: d = 0 with sd 0 -> does not hold
  const f2 = claims.find((c) => c.id === "F2") as Claim;
  assert.equal(f2.verdict, "does not hold");
  assert.ok(md.includes("The finding does not hold on these models: this is the result at this scale."));
  assert.ok(md.includes("a finding that does not hold at this scale is a result, not a failure"));
  assert.match(md, /\*\*ROME: N90 \(number of edits\)\*\*/);
  assert.match(md, /\| S \| 1\.00M \|/);
  // the general table: 10 edits, 80.0 [55.2, 104.8]
  assert.ok(md.includes(`80.0 [${(80 - 10 * HW3).toFixed(1)}, ${(80 + 10 * HW3).toFixed(1)}]`));
  const html = studyHtmlSection(claims, pts);
  assert.ok(html.startsWith(`<section id="study">`));
  assert.ok(html.includes(`class="v-not">does not hold</td>`));
});

test("n90Cell: value with interval, partly and wholly censored", () => {
  const base = { method: "M", size: "S", params: 1, variant: "base" as const, maxEdits: 1000, seeds: 3 };
  const log2 = { mean: 0, lo: 0, hi: 0, n: 3, sd: 0 };
  assert.equal(n90Cell({ ...base, log2, n90: 23.4, lo: 17.2, hi: 31.9, censored: 0 }), "23 [17, 32]");
  assert.equal(
    n90Cell({ ...base, log2, n90: 6.44, lo: 5.21, hi: 8, censored: 1 }),
    "6.4 [5.2, 8.0] (1 of 3 censored)",
  );
  assert.equal(
    n90Cell({ ...base, log2, n90: 1000, lo: 1000, hi: 1000, censored: 3 }),
    "> 1000 (never below)",
  );
});

test("writeStudyReport writes study.md, study.html, claims.json and the figures", async () => {
  const dir = mkdtempSync(join(tmpdir(), "study-report-"));
  dirs.push(dir);
  const pts = studyPoints(syntheticRows(["ROME", "MEMIT"], [0, 1, 2]), syntheticModels());
  const claims = computeClaims(pts);
  const files = await writeStudyReport(dir, claims, pts, META, { png: false });
  const md = readFileSync(files.markdown, "utf8");
  assert.ok(
    md.includes("![General score against number of edits, per model size](plots/study-general-by-size.svg)"),
  );
  const html = readFileSync(files.html, "utf8");
  assert.equal((html.match(/<svg role="img"/g) ?? []).length, 3);
  const back = JSON.parse(readFileSync(files.claims, "utf8")) as Claim[];
  assert.deepEqual(
    back.map((c) => [c.id, c.verdict]),
    claims.map((c) => [c.id, c.verdict]),
  );
  for (const f of files.figures) assert.ok(existsSync(f.svgPath) && f.pngPath === undefined);
});

/**
 * editeval demo: the embedded study. Runs examples/demo.yaml (ROME, MEMIT, AlphaEdit and FT-L on the
 * demo model at 0..200 edits, sequential and in batches, edit metrics and the world's general tasks),
 * writes the report and prints where it is. Resumable like any run: rerunning continues it.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { readSpec } from "../experiments/spec.js";
import { runExperiment } from "../experiments/runner.js";
import { packageRoot } from "../util/paths.js";
import { formatDuration } from "../util/progress.js";
import { intFlag, parse, UsageError, type CommandSpec } from "./args.js";
import { availableParallelism } from "node:os";
import { reportRun } from "./run.js";

export const demoSpec: CommandSpec = {
  name: "demo",
  summary: "editeval demo: the paper's study in miniature on the demo model (about 10-15 minutes on 2 cores)",
  usage: "editeval demo [--out DIR] [--spec FILE] [--workers N] [--fresh]",
  options: {
    out: { type: "string" },
    spec: { type: "string" },
    fresh: { type: "boolean" },
    workers: { type: "string" },
  },
  help: [
    "--out DIR          the run's folder (default runs/demo); rerunning resumes it",
    "--spec FILE        another spec instead of examples/demo.yaml",
    "--fresh            delete the run folder first",
    "--workers N        tracks at once in child processes (default: one per core, at most 4)",
  ],
};

export async function demoCommand(argv: string[]): Promise<number> {
  const v = parse(demoSpec, argv);
  if (!v) return 0;
  const specFile = typeof v.spec === "string" ? v.spec : join(packageRoot(), "examples", "demo.yaml");
  const spec = readSpec(specFile);
  const out = typeof v.out === "string" ? resolve(v.out) : resolve("runs", spec.name);
  if (v.fresh && existsSync(out)) rmSync(out, { recursive: true, force: true });
  console.log(`editeval demo: ${specFile} -> ${out}`);
  const workers = intFlag(v, "workers", "demo", Math.min(4, Math.max(1, availableParallelism())));
  if (workers < 1) throw new UsageError("editeval demo: --workers must be >= 1");
  const s = await runExperiment(spec, { outDir: out, workers });
  const html = await reportRun(
    out,
    join(out, "report"),
    "EditEval demo: editing the demo model 0 to 200 times",
  );
  const summary = readFileSync(join(out, "report", "summary.md"), "utf8");
  console.log(summary);
  console.log(
    `demo: ${s.unitsComputed} unit(s) computed (${s.unitsSkipped} already done) in ${formatDuration(s.seconds)}\n` +
      `report: ${html}\nplots: ${join(out, "report", "plots")}\ntables: ${join(out, "report", "summary.md")}, ${join(out, "report", "results.csv")}`,
  );
  return 0;
}

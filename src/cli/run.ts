/**
 * editeval run SPEC: run (or resume) an experiment; editeval report RUN: write its report.
 */
import { existsSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { readSpec } from "../experiments/spec.js";
import { runExperiment } from "../experiments/runner.js";
import { ResultsStore } from "../experiments/store.js";
import { writeReport, type ResultRow } from "../report/index.js";
import { formatDuration } from "../util/progress.js";
import { intFlag, parse, UsageError, type CommandSpec } from "./args.js";

export const runSpec: CommandSpec = {
  name: "run",
  summary: "editeval run: edit models N times with each method and measure them at each checkpoint",
  usage: "editeval run SPEC.yaml [--out DIR] [--workers N] [--no-report]",
  options: {
    out: { type: "string" },
    "no-report": { type: "boolean" },
    workers: { type: "string" },
  },
  positionals: true,
  help: [
    "SPEC.yaml          the experiment (docs/experiments.md)",
    "--out DIR          the run's folder (default runs/<spec name>); rerunning resumes it",
    "--no-report        do not write the report at the end (editeval report DIR does)",
    "--workers N        run N tracks at once in child processes (default 1); same numbers",
  ],
};

export async function runCommand(argv: string[]): Promise<number> {
  const v = parse(runSpec, argv);
  if (!v) return 0;
  const file = (v._ as string[] | undefined)?.[0];
  if (!file) throw new UsageError(`editeval run: give a spec file\nusage: ${runSpec.usage}`);
  const spec = readSpec(file);
  const out = typeof v.out === "string" ? resolve(v.out) : resolve("runs", spec.name);
  const workers = intFlag(v, "workers", "run", 1);
  if (workers < 1) throw new UsageError("editeval run: --workers must be >= 1");
  const s = await runExperiment(spec, { outDir: out, workers });
  console.log(
    `run ${spec.name}: ${s.unitsComputed} unit(s) computed, ${s.unitsSkipped} already done, in ${formatDuration(s.seconds)}; results in ${s.store}`,
  );
  if (!v["no-report"]) {
    const files = await reportRun(out);
    console.log(`report: ${files}`);
  }
  return 0;
}

export const reportSpec: CommandSpec = {
  name: "report",
  summary: "editeval report: tables, plots and a web page of a run",
  usage: "editeval report RUN_DIR [--out DIR]",
  options: { out: { type: "string" } },
  positionals: true,
  help: ["RUN_DIR            a folder written by editeval run", "--out DIR          default RUN_DIR/report"],
};

/** Writes the report of a run folder; returns the HTML page's path. */
export async function reportRun(
  runDir: string,
  out = join(runDir, "report"),
  title?: string,
): Promise<string> {
  const path = join(runDir, "results.sqlite");
  if (!existsSync(path))
    throw new Error(`${runDir}: no results.sqlite (not a run folder, or nothing finished yet)`);
  const store = await ResultsStore.open(path);
  try {
    const rows: ResultRow[] = store.resultRows();
    const units = store.units();
    const spec = JSON.parse(store.getMeta("spec") ?? "{}") as Record<string, unknown>;
    const prov = JSON.parse(store.getMeta("provenance") ?? "{}") as Record<string, unknown>;
    const editS = units.reduce((a, u) => a + u.editSeconds, 0);
    const wall = Number(store.getMeta("wall_seconds") ?? NaN);
    const evalS = units.reduce((a, u) => a + u.evalSeconds, 0);
    const files = await writeReport(out, rows, {
      title: title ?? `EditEval run ${String(spec.name ?? basename(runDir))}`,
      runId: basename(runDir),
      createdAt: store.getMeta("created_at") ?? new Date().toISOString(),
      spec,
      provenance: {
        ...prov,
        units: units.length,
        "editing time (sum over units)": formatDuration(editS),
        "measuring time (sum over units)": formatDuration(evalS),
      },
      ...(Number.isFinite(wall) ? { wallSeconds: wall } : {}),
    });
    return files.html;
  } finally {
    store.close();
  }
}

export async function reportCommand(argv: string[]): Promise<number> {
  const v = parse(reportSpec, argv);
  if (!v) return 0;
  const dir = (v._ as string[] | undefined)?.[0];
  if (!dir) throw new UsageError(`editeval report: give a run folder\nusage: ${reportSpec.usage}`);
  const html = await reportRun(resolve(dir), typeof v.out === "string" ? resolve(v.out) : undefined);
  console.log(`report: ${html}`);
  return 0;
}

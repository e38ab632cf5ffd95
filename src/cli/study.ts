/**
 * editeval study: the paper's four findings tested on the model family EditEval trains itself
 * (src/study/run.ts runs the grid, src/study/claims.ts turns it into claims with verdicts,
 * src/study/report.ts writes the report). Resumable: run the same command again.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { toCsv } from "../report/csv.js";
import { computeClaims, studyPoints, type StudyModel } from "../study/claims.js";
import { writeStudyReport } from "../study/report.js";
import { FULL, QUICK, STUDY_METHODS, collectRows, runStudy, type StudyConfig } from "../study/run.js";
import { loadFamily } from "../train/family.js";
import { packageRoot } from "../util/paths.js";
import { formatDuration } from "../util/progress.js";
import { intFlag, parse, UsageError, type CommandSpec } from "./args.js";

export const studySpec: CommandSpec = {
  name: "study",
  summary: "editeval study: the paper's four findings as claims, tested on EditEval's model family",
  usage:
    "editeval study [--quick] [--family DIR] [--out DIR] [--methods LIST] [--n LIST] [--seeds LIST] [--limit K] [--workers N] [--chat] [--report-only]",
  options: {
    quick: { type: "boolean" },
    family: { type: "string" },
    out: { type: "string" },
    methods: { type: "string" },
    n: { type: "string" },
    seeds: { type: "string" },
    limit: { type: "string" },
    edit_limit: { type: "string" },
    sizes: { type: "string" },
    variants: { type: "string" },
    workers: { type: "string" },
    chat: { type: "boolean" },
    "report-only": { type: "boolean" },
    "dry-run": { type: "boolean" },
  },
  help: [
    "--quick            the short grid: N = " +
      QUICK.n.join(",") +
      `, ${QUICK.seeds.length} seeds, ${QUICK.limit} items per task`,
    "                   (default: the full grid, N = " +
      FULL.n.join(",") +
      `, ${FULL.seeds.length} seeds, ${FULL.limit} items per task)`,
    "--family DIR       the model family (default models/family; train it with editeval train-family)",
    "--out DIR          the study's folder (default runs/study or runs/study-quick); rerun to resume",
    `--methods LIST     methods (default ${STUDY_METHODS.map((m) => m.name).join(",")})`,
    "--n LIST           numbers of sequential edits measured (0 = unedited)",
    "--seeds LIST       edit-order seeds (default 0,1,2)",
    "--limit K          benchmark items per task; --edit_limit N: edited requests re-scored per checkpoint",
    "--sizes LIST       family sizes (default all); --variants LIST: base,instruct,aligned (default all)",
    "--workers N        tracks run at once per member in child processes (default 1)",
    "--chat             score instruct/aligned models with their chat template (lm-eval --apply_chat_template)",
    "--report-only      recompute the claims and the report from what is finished, run nothing",
    "--dry-run          write every member's spec, run nothing",
  ],
};

function list(raw: unknown, flag: string): string[] | null {
  if (typeof raw !== "string") return null;
  const xs = raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (xs.length === 0) throw new UsageError(`editeval study: --${flag} is empty`);
  return xs;
}

function ints(raw: unknown, flag: string): number[] | null {
  const xs = list(raw, flag);
  if (!xs) return null;
  return xs.map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 0)
      throw new UsageError(`editeval study: --${flag}: '${x}' is not a non-negative integer`);
    return n;
  });
}

export async function studyCommand(argv: string[]): Promise<number> {
  const v = parse(studySpec, argv);
  if (v === null) return 0;
  const preset = v.quick ? QUICK : FULL;
  const n = ints(v.n, "n") ?? preset.n;
  if (!n.includes(0)) n.unshift(0);
  const cfg: StudyConfig = {
    family: resolve(typeof v.family === "string" ? v.family : join(packageRoot(), "models", "family")),
    out: resolve(typeof v.out === "string" ? v.out : join("runs", v.quick ? "study-quick" : "study")),
    methods: list(v.methods, "methods") ?? preset.methods,
    n,
    seeds: ints(v.seeds, "seeds") ?? preset.seeds,
    limit: v.limit === undefined ? preset.limit : intFlag(v, "limit", "study", 0),
    editLimit: v.edit_limit === undefined ? preset.editLimit : intFlag(v, "edit_limit", "study", 0),
    chat: v.chat === true,
    sizes: list(v.sizes, "sizes"),
    variants: list(v.variants, "variants"),
  };
  const workers = intFlag(v, "workers", "study", 1);
  const t0 = performance.now();
  let rows;
  let members;
  if (v["report-only"]) {
    members = loadFamily(cfg.family);
    rows = await collectRows(cfg.out, members);
  } else {
    const run = await runStudy(cfg, { workers, dryRun: v["dry-run"] === true });
    if (run.missing.length > 0)
      console.log(`study: not built, not run (reported as missing): ${run.missing.join(", ")}`);
    if (v["dry-run"]) {
      console.log(`study: specs written under ${cfg.out}`);
      return 0;
    }
    members = run.members;
    rows = run.rows;
  }
  if (rows.length === 0)
    throw new Error(`${cfg.out}: no results yet (run editeval study without --report-only)`);
  writeFileSync(join(cfg.out, "results.csv"), toCsv(rows));
  const models: Record<string, StudyModel> = Object.fromEntries(
    members.map((m) => [m.name, { size: m.size, params: m.params, variant: m.variant }]),
  );
  const points = studyPoints(rows, models);
  const claims = computeClaims(points);
  const seconds = (performance.now() - t0) / 1000;
  const files = await writeStudyReport(join(cfg.out, "report"), claims, points, {
    title: `EditEval study${v.quick ? " (--quick)" : ""}: the paper's findings on the world model family`,
    runId: cfg.out,
    createdAt: new Date().toISOString(),
    spec: cfg,
    wallSeconds: seconds,
    notes: [
      `family ${cfg.family}: ${members.map((m) => m.name).join(", ")}`,
      `methods ${cfg.methods.join(", ")}; N = ${cfg.n.join(", ")}; seeds ${cfg.seeds.join(", ")}; ${cfg.limit ?? "all"} items per task`,
    ],
  });
  for (const c of claims) console.log(`${c.id}: ${c.verdict} - ${c.statement}`);
  console.log(`study: ${formatDuration(seconds)}; report ${files.markdown} and ${files.html}`);
  return 0;
}

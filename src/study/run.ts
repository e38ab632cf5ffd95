/**
 * `editeval study`: the paper's four findings tested on the model family EditEval trains itself
 * (src/train/family.ts). The grid is methods x sizes x {base, instruct, aligned} x numbers of sequential
 * edits x seeds (edit orders). Each family member is an ordinary experiment (one spec, written to
 * STUDY/<member>/spec.yaml, run by the experiment runner: incremental and resumable), so a study can be
 * stopped anywhere and started again; the claims and the report are computed from every member's
 * results store.
 *
 * Per size the methods read size-specific hparams (hparams/<METHOD>/world-<size>.yaml; the 2.2M model is
 * the demo model and reads demo.yaml), because the edited layers depend on the depth.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import YAML from "yaml";
import { METHODS } from "../editing/methods.js";
import { readSpec } from "../experiments/spec.js";
import { runExperiment } from "../experiments/runner.js";
import { ResultsStore } from "../experiments/store.js";
import type { ResultRow } from "../report/types.js";
import { loadFamily, type FamilyMember } from "../train/family.js";
import { GENERAL_TASKS, SAFETY_TASKS } from "./claims.js";
import { packageRoot } from "../util/paths.js";

/** A method of the study: label, method name, hparams file per size (null: demo.yaml for every size). */
export interface StudyMethod {
  name: string;
  method: string;
  /** folder under hparams/ */
  folder: string;
}

/** The methods the study knows how to configure for every size (built ones only are run). */
export const STUDY_METHODS: StudyMethod[] = [
  { name: "ROME", method: "rome", folder: "ROME" },
  { name: "MEMIT", method: "memit", folder: "MEMIT" },
  { name: "AlphaEdit", method: "alphaedit", folder: "AlphaEdit" },
  { name: "FT-L", method: "ft-l", folder: "FT" },
];

export interface StudyConfig {
  family: string;
  out: string;
  methods: string[];
  /** numbers of sequential edits measured (0 = unedited) */
  n: number[];
  seeds: number[];
  /** benchmark items per task (null = all) */
  limit: number | null;
  /** edited requests re-scored per checkpoint */
  editLimit: number;
  /** evaluate instruct/aligned models with their chat template (lm-eval's --apply_chat_template) */
  chat: boolean;
  sizes: string[] | null;
  variants: string[] | null;
}

/** The study's presets: the full grid of the issue, and `--quick`. */
export const FULL: Pick<StudyConfig, "methods" | "n" | "seeds" | "limit" | "editLimit"> = {
  methods: STUDY_METHODS.map((m) => m.name),
  // the paper's grid cut at the world's 342 requests (500 and 1,000 need a larger world)
  n: [0, 1, 5, 10, 20, 50, 100, 200, 342],
  seeds: [0, 1, 2],
  limit: 100,
  editLimit: 50,
};
export const QUICK: Pick<StudyConfig, "methods" | "n" | "seeds" | "limit" | "editLimit"> = {
  // ROME alone (the method every finding of the paper is reported for), up to 20 edits: every claim
  // gets an answer in about an hour on 2 cores; the full grid adds methods, N and items
  methods: ["ROME"],
  n: [0, 1, 5, 10, 20],
  seeds: [0, 1, 2],
  limit: 20,
  editLimit: 10,
};

const WORLD = () => join(packageRoot(), "models", "demo", "world");

function hparamsFile(m: StudyMethod, size: string): string {
  const f = join(packageRoot(), "hparams", m.folder, `world-${size}.yaml`);
  return existsSync(f) ? f : join(packageRoot(), "hparams", m.folder, "demo.yaml");
}

/** The experiment spec (raw, as YAML would hold it) of one family member. */
export function memberSpec(
  member: FamilyMember & { dir: string },
  cfg: StudyConfig,
): Record<string, unknown> {
  const methods = cfg.methods.map((name) => {
    const m = STUDY_METHODS.find((x) => x.name.toLowerCase() === name.toLowerCase());
    if (!m)
      throw new Error(
        `study: unknown method '${name}' (the study configures ${STUDY_METHODS.map((x) => x.name).join(", ")})`,
      );
    return { name: m.name, method: m.method, hparams: hparamsFile(m, member.size) };
  });
  const nMax = Math.max(...cfg.n);
  return {
    name: `study-${member.name}`,
    models: [{ name: member.name, path: member.dir }],
    methods,
    data: { path: join(WORLD(), "counterfact.json"), n: nMax, shuffle: true },
    schedules: ["sequential"],
    checkpoints: [...cfg.n].sort((a, b) => a - b),
    stats: { corpus: join(WORLD(), "stats-corpus.jsonl") },
    edit_metrics: { enabled: true, limit: cfg.editLimit },
    benchmarks: {
      tasks: [...GENERAL_TASKS, ...SAFETY_TASKS].map((t) => t.benchmark),
      ...(cfg.limit !== null ? { limit: cfg.limit } : {}),
      metrics: ["acc", "exact_match"],
      ...(cfg.chat && member.variant !== "base" ? { apply_chat_template: true } : {}),
    },
    seeds: cfg.seeds,
  };
}

export interface StudyRun {
  members: (FamilyMember & { dir: string })[];
  rows: ResultRow[];
  seconds: number;
  /** methods asked for that are not built (reported, not run) */
  missing: string[];
}

/** Runs (or resumes) every member's experiment and collects the results. */
export async function runStudy(
  cfg: StudyConfig,
  opts: { workers?: number; log?: (l: string) => void; dryRun?: boolean } = {},
): Promise<StudyRun> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const t0 = performance.now();
  const members = loadFamily(cfg.family).filter(
    (m) =>
      (cfg.sizes === null || cfg.sizes.includes(m.size)) &&
      (cfg.variants === null || cfg.variants.includes(m.variant)),
  );
  if (members.length === 0)
    throw new Error(`study: no family member of ${cfg.family} matches --sizes/--variants`);
  const missing = cfg.methods.filter((name) => {
    const m = STUDY_METHODS.find((x) => x.name.toLowerCase() === name.toLowerCase());
    return m !== undefined && METHODS[m.method] === undefined;
  });
  const run = { ...cfg, methods: cfg.methods.filter((m) => !missing.includes(m)) };
  mkdirSync(cfg.out, { recursive: true });
  for (const member of members) {
    const dir = join(cfg.out, member.name);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "spec.yaml");
    writeFileSync(
      file,
      `# written by editeval study; run one member alone with: editeval run ${file} --out ${dir}\n` +
        YAML.stringify(memberSpec(member, run)),
    );
    if (opts.dryRun) continue;
    log(`study: ${member.name} (${(member.params / 1e6).toFixed(2)}M, ${member.variant})`);
    await runExperiment(readSpec(file), { outDir: dir, workers: opts.workers ?? 1, log });
  }
  const rows = opts.dryRun ? [] : await collectRows(cfg.out, members);
  return { members, rows, seconds: (performance.now() - t0) / 1000, missing };
}

/** Every member's result rows (the runner's store files under STUDY/<member>/). */
export async function collectRows(out: string, members: { name: string }[]): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  for (const m of members) {
    const path = resolve(out, m.name, "results.sqlite");
    if (!existsSync(path)) continue;
    const store = await ResultsStore.open(path);
    try {
      rows.push(...store.resultRows());
    } finally {
      store.close();
    }
  }
  return rows;
}

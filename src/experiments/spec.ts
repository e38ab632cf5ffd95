/**
 * Experiment specs: which models are edited with which methods, on which requests, in which schedule,
 * measured at which numbers of edits on which edit metrics and benchmarks. YAML or JSON; every field
 * is checked and an error names it (`methods[1].hparams.layers: ...`). Relative paths are resolved
 * against the spec file's folder.
 *
 * ```yaml
 * name: demo
 * models: [{name: demo, path: ../models/demo}]
 * methods:
 *   - {name: ROME, method: rome, hparams: {layers: [1]}}
 *   - {name: MEMIT, method: memit, hparams: hparams/memit.yaml}
 * data: {path: counterfact.json, n: 200, shuffle: true}
 * schedules: [sequential, {batch: 10}]
 * checkpoints: [0, 10, 20, 50, 100, 200]
 * edit_metrics: {enabled: true}
 * benchmarks: {tasks: [world], limit: 100}   # apply_chat_template: true renders prompts with the model's chat template
 * seeds: [0]
 * ```
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import YAML from "yaml";
import { readHparamsFile } from "../editing/hparams.js";
import { methodByName } from "../editing/methods.js";

export class SpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SpecError";
  }
}

export interface ModelSpec {
  name: string;
  path: string;
  dtype: "float32" | "float64" | "bfloat16";
}

export interface MethodSpec {
  /** the label in results and reports */
  name: string;
  /** the editing method (methodByName) */
  method: string;
  /** raw hparams (EasyEdit names), from the spec or from a YAML/JSON file */
  hparams: Record<string, unknown>;
  /** where the hparams came from (for error messages and provenance) */
  hparamsSource: string;
  /** this method's schedules, when they differ from the spec's (e.g. ROME edits one request at a time) */
  schedules: Schedule[] | null;
}

export type Schedule = { type: "sequential" } | { type: "batch"; batchSize: number };

export interface ExperimentSpec {
  name: string;
  /** the spec file (absolute) or "(inline)" */
  source: string;
  models: ModelSpec[];
  methods: MethodSpec[];
  data: {
    /** a known edit dataset name (counterfact, zsre, ...) or a file */
    path: string;
    /** requests used: the first n after the (seeded) shuffle */
    n: number;
    /** shuffle the records with the track's seed before taking n (default false: the file's order) */
    shuffle: boolean;
  };
  schedules: Schedule[];
  /** numbers of edits at which the model is measured, ascending, starting at 0 */
  checkpoints: number[];
  editMetrics: {
    enabled: boolean;
    /** score at most this many of the edited requests (the first ones edited); default all */
    limit: number | null;
  };
  benchmarks: {
    tasks: string[];
    limit: number | null;
    numFewshot: number | null;
    batchSize: number;
    dataDir: string | null;
    /** metric names kept (before the ",filter" part; e.g. [acc, exact_match]); null: all */
    metrics: string[] | null;
    /**
     * render prompts with the model's chat template (lm-eval's --apply_chat_template; a string names
     * one of several templates); absent when not asked for (so older specs keep their stored key)
     */
    applyChatTemplate?: boolean | string;
    /** few-shot examples as user/assistant turns (default true with a chat template); absent when not given */
    fewshotAsMultiturn?: boolean;
    /** a system prompt before each task's description (lm-eval's --system_instruction); absent when not given */
    systemInstruction?: string;
  };
  seeds: number[];
  stats: { corpus: string | null };
  /** torch intra-op threads (null: the process default) */
  threads: number | null;
}

/** The paper's grid (Li et al. 2024), cut at the number of requests. */
export const PAPER_CHECKPOINTS = [0, 10, 20, 50, 100, 500, 1000];

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkKeys(o: Obj, allowed: string[], where: string): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k))
      throw new SpecError(`${where}: unknown field '${k}' (allowed: ${allowed.join(", ")})`);
}

function str(v: unknown, where: string): string {
  if (typeof v !== "string" || v.trim() === "") throw new SpecError(`${where}: expected a non-empty string`);
  return v;
}

function int(v: unknown, where: string, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min)
    throw new SpecError(`${where}: expected an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

function list(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v) || v.length === 0) throw new SpecError(`${where}: expected a non-empty list`);
  return v;
}

/** Reads and validates a spec file (YAML or JSON). */
export function readSpec(path: string): ExperimentSpec {
  if (!existsSync(path)) throw new SpecError(`${path}: no such spec file`);
  let raw: unknown;
  try {
    raw = YAML.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new SpecError(`${path}: not valid YAML/JSON (${(e as Error).message})`);
  }
  try {
    return parseSpec(raw, resolve(path));
  } catch (e) {
    if (e instanceof SpecError) throw new SpecError(`${path}: ${e.message}`);
    throw e;
  }
}

/** Validates a spec object; `source` is its file (relative paths are resolved against its folder). */
export function parseSpec(raw: unknown, source = "(inline)"): ExperimentSpec {
  if (!isObj(raw)) throw new SpecError("the spec must be a mapping");
  const base = source === "(inline)" ? process.cwd() : dirname(source);
  const path = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  checkKeys(
    raw,
    [
      "name",
      "models",
      "methods",
      "data",
      "schedules",
      "checkpoints",
      "edit_metrics",
      "benchmarks",
      "seeds",
      "stats",
      "threads",
    ],
    "spec",
  );
  const name = str(raw.name ?? "experiment", "name");
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new SpecError(`name: use letters, digits, '.', '_' or '-'`);

  const models = list(raw.models, "models").map((m, i): ModelSpec => {
    const w = `models[${i}]`;
    const o: Obj = typeof m === "string" ? { path: m } : isObj(m) ? m : {};
    if (!isObj(m) && typeof m !== "string") throw new SpecError(`${w}: expected a path or {name, path}`);
    checkKeys(o, ["name", "path", "dtype"], w);
    const p = path(str(o.path, `${w}.path`));
    if (!existsSync(p)) throw new SpecError(`${w}.path: no such checkpoint directory ${p}`);
    const dtype = (o.dtype ?? "float32") as ModelSpec["dtype"];
    if (!["float32", "float64", "bfloat16"].includes(dtype))
      throw new SpecError(`${w}.dtype: expected float32, float64 or bfloat16`);
    return {
      name: o.name === undefined ? (p.split("/").pop() ?? p) : str(o.name, `${w}.name`),
      path: p,
      dtype,
    };
  });
  unique(
    models.map((m) => m.name),
    "models",
  );

  const methods = list(raw.methods, "methods").map((m, i): MethodSpec => {
    const w = `methods[${i}]`;
    const o: Obj = typeof m === "string" ? { method: m } : isObj(m) ? m : {};
    if (!isObj(m) && typeof m !== "string")
      throw new SpecError(`${w}: expected a method name or {name, method, hparams}`);
    checkKeys(o, ["name", "method", "hparams", "schedules"], w);
    const method = str(o.method, `${w}.method`);
    try {
      methodByName(method);
    } catch (e) {
      throw new SpecError(`${w}.method: ${(e as Error).message}`);
    }
    let hparams: Obj = {};
    let hparamsSource = `${w}.hparams`;
    if (typeof o.hparams === "string") {
      const file = path(o.hparams);
      if (!existsSync(file)) throw new SpecError(`${w}.hparams: no such file ${file}`);
      hparams = readHparamsFile(file);
      hparamsSource = file;
    } else if (isObj(o.hparams)) hparams = o.hparams;
    else if (o.hparams !== undefined) throw new SpecError(`${w}.hparams: expected a mapping or a file path`);
    const schedules = o.schedules === undefined ? null : parseSchedules(o.schedules, `${w}.schedules`);
    return {
      name: o.name === undefined ? method : str(o.name, `${w}.name`),
      method,
      hparams,
      hparamsSource,
      schedules,
    };
  });
  unique(
    methods.map((m) => m.name),
    "methods",
  );

  if (!isObj(raw.data)) throw new SpecError("data: expected {path, n[, shuffle]}");
  checkKeys(raw.data, ["path", "n", "shuffle"], "data");
  const dataPath = str(raw.data.path, "data.path");
  const data = {
    path: existsSync(path(dataPath)) ? path(dataPath) : dataPath,
    n: int(raw.data.n, "data.n", 1),
    shuffle: raw.data.shuffle === undefined ? false : bool(raw.data.shuffle, "data.shuffle"),
  };

  const schedules = parseSchedules(raw.schedules ?? ["sequential"], "schedules");

  const cps = (
    raw.checkpoints === undefined
      ? PAPER_CHECKPOINTS.filter((c) => c <= data.n)
      : list(raw.checkpoints, "checkpoints")
  ).map((c, i) => int(c, `checkpoints[${i}]`, 0));
  for (let i = 1; i < cps.length; i++)
    if ((cps[i] as number) <= (cps[i - 1] as number))
      throw new SpecError(`checkpoints: must be strictly ascending (${cps.join(", ")})`);
  const last = cps[cps.length - 1] as number;
  if (last > data.n)
    throw new SpecError(`checkpoints: ${last} edits asked for, but data.n is ${data.n} requests`);

  const em = raw.edit_metrics === undefined ? {} : raw.edit_metrics;
  if (!isObj(em)) throw new SpecError("edit_metrics: expected {enabled[, limit]}");
  checkKeys(em, ["enabled", "limit"], "edit_metrics");
  const editMetrics = {
    enabled: em.enabled === undefined ? true : bool(em.enabled, "edit_metrics.enabled"),
    limit: em.limit === undefined || em.limit === null ? null : int(em.limit, "edit_metrics.limit", 1),
  };

  const bm = raw.benchmarks === undefined ? { tasks: [] } : raw.benchmarks;
  if (!isObj(bm))
    throw new SpecError("benchmarks: expected {tasks[, limit, num_fewshot, batch_size, data_dir]}");
  checkKeys(
    bm,
    [
      "tasks",
      "limit",
      "num_fewshot",
      "batch_size",
      "data_dir",
      "metrics",
      "apply_chat_template",
      "fewshot_as_multiturn",
      "system_instruction",
    ],
    "benchmarks",
  );
  const tasks =
    typeof bm.tasks === "string"
      ? bm.tasks.split(",").map((t) => t.trim())
      : Array.isArray(bm.tasks)
        ? bm.tasks.map((t, i) => str(t, `benchmarks.tasks[${i}]`))
        : (() => {
            throw new SpecError("benchmarks.tasks: expected a list of task names");
          })();
  const benchmarks = {
    tasks,
    limit: bm.limit === undefined || bm.limit === null ? null : int(bm.limit, "benchmarks.limit", 1),
    numFewshot:
      bm.num_fewshot === undefined || bm.num_fewshot === null
        ? null
        : int(bm.num_fewshot, "benchmarks.num_fewshot", 0),
    batchSize: bm.batch_size === undefined ? 8 : int(bm.batch_size, "benchmarks.batch_size", 1),
    dataDir: bm.data_dir === undefined ? null : path(str(bm.data_dir, "benchmarks.data_dir")),
    metrics:
      bm.metrics === undefined || bm.metrics === null
        ? null
        : list(bm.metrics, "benchmarks.metrics").map((m, i) => str(m, `benchmarks.metrics[${i}]`)),
    ...chatTemplateFields(bm),
  };

  const seeds = (raw.seeds === undefined ? [0] : list(raw.seeds, "seeds")).map((s, i) =>
    int(s, `seeds[${i}]`, 0),
  );
  unique(seeds.map(String), "seeds");

  const st = raw.stats === undefined ? {} : raw.stats;
  if (!isObj(st)) throw new SpecError("stats: expected {corpus}");
  checkKeys(st, ["corpus"], "stats");
  let corpus: string | null = null;
  if (st.corpus !== undefined) {
    corpus = path(str(st.corpus, "stats.corpus"));
    if (!existsSync(corpus)) throw new SpecError(`stats.corpus: no such file or folder ${corpus}`);
  }
  const threads = raw.threads === undefined || raw.threads === null ? null : int(raw.threads, "threads", 1);

  return {
    name,
    source,
    models,
    methods,
    data,
    schedules,
    checkpoints: cps,
    editMetrics,
    benchmarks,
    seeds,
    stats: { corpus },
    threads,
  };
}

/** benchmarks.apply_chat_template / fewshot_as_multiturn / system_instruction, only those given. */
function chatTemplateFields(
  bm: Obj,
): Pick<ExperimentSpec["benchmarks"], "applyChatTemplate" | "fewshotAsMultiturn" | "systemInstruction"> {
  const out: Pick<
    ExperimentSpec["benchmarks"],
    "applyChatTemplate" | "fewshotAsMultiturn" | "systemInstruction"
  > = {};
  const act = bm.apply_chat_template;
  if (act !== undefined && act !== null) {
    if (typeof act !== "boolean" && (typeof act !== "string" || act.trim() === ""))
      throw new SpecError(
        `benchmarks.apply_chat_template: expected true, false or a template name, got ${JSON.stringify(act)}`,
      );
    if (act !== false) out.applyChatTemplate = act; // false is the default: left out of the stored spec
  }
  if (bm.fewshot_as_multiturn !== undefined && bm.fewshot_as_multiturn !== null) {
    out.fewshotAsMultiturn = bool(bm.fewshot_as_multiturn, "benchmarks.fewshot_as_multiturn");
    if (out.fewshotAsMultiturn && !out.applyChatTemplate)
      throw new SpecError("benchmarks.fewshot_as_multiturn: true needs benchmarks.apply_chat_template");
  }
  if (bm.system_instruction !== undefined && bm.system_instruction !== null)
    out.systemInstruction = str(bm.system_instruction, "benchmarks.system_instruction");
  return out;
}

function bool(v: unknown, where: string): boolean {
  if (typeof v !== "boolean") throw new SpecError(`${where}: expected true or false`);
  return v;
}

function unique(names: string[], where: string): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new SpecError(`${where}: '${n}' occurs twice`);
    seen.add(n);
  }
}

export function scheduleName(s: Schedule): string {
  return s.type === "sequential" ? "sequential" : `batch-${s.batchSize}`;
}

function parseSchedules(v: unknown, where: string): Schedule[] {
  const out = list(v, where).map((s, i): Schedule => {
    const w = `${where}[${i}]`;
    if (s === "sequential") return { type: "sequential" };
    if (typeof s === "string") {
      const m = /^batch(?::|-)(\d+)$/.exec(s);
      if (m) return { type: "batch", batchSize: int(Number(m[1]), w, 1) };
    }
    if (isObj(s)) {
      checkKeys(s, ["batch", "type", "batch_size"], w);
      if (s.batch !== undefined) return { type: "batch", batchSize: int(s.batch, `${w}.batch`, 1) };
      if (s.type === "sequential") return { type: "sequential" };
      if (s.type === "batch") return { type: "batch", batchSize: int(s.batch_size, `${w}.batch_size`, 1) };
    }
    throw new SpecError(`${w}: expected 'sequential', 'batch:N' or {batch: N}`);
  });
  unique(out.map(scheduleName), where);
  return out;
}

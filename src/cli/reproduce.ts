/**
 * editeval reproduce: the paper's grid (examples/reproduce.yaml, Li et al. 2024) on one model. The
 * preset is an ordinary experiment spec; the flags replace its model, methods, numbers of edits and
 * benchmark limit, the resulting spec is written to RUN/spec.yaml (run it again with `editeval run`),
 * and the experiment runner runs it (incremental and resumable like every run). Methods of the paper
 * that EditEval has not built are reported as missing (on stdout and in RUN/missing-methods.json),
 * never dropped silently.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import YAML from "yaml";
import { parseSpec } from "../experiments/spec.js";
import { runExperiment } from "../experiments/runner.js";
import { METHODS } from "../editing/methods.js";
import { loadConfig } from "../models/load.js";
import { packageRoot } from "../util/paths.js";
import { formatDuration } from "../util/progress.js";
import { parse, UsageError, type CommandSpec } from "./args.js";
import { reportRun } from "./run.js";

export const reproduceSpec: CommandSpec = {
  name: "reproduce",
  summary:
    "editeval reproduce: the paper's grid (sequential CounterFact edits; cot-hub MMLU/GSM8K/BBH/CSQA, TruthfulQA, ToxiGen)",
  usage:
    "editeval reproduce --model DIR [--methods rome,memit,pmet,mend,kn,grace,serac] [--n 1,5,10,20,50,100,200,500,1000] [--limit K] [--out DIR]",
  options: {
    model: { type: "string" },
    methods: { type: "string" },
    n: { type: "string" },
    limit: { type: "string" },
    out: { type: "string" },
    preset: { type: "string" },
    hparams: { type: "string" },
    tasks: { type: "string" },
    data: { type: "string" },
    stats: { type: "string" },
    mom2_n_samples: { type: "string" },
    edit_limit: { type: "string" },
    batch_size: { type: "string" },
    "dry-run": { type: "boolean" },
    "no-report": { type: "boolean" },
  },
  help: [
    "--model DIR            the checkpoint to edit (a Hugging Face folder)",
    "--methods LIST         methods of the preset to run (default: all seven of the paper); not built: reported as missing",
    "--n LIST               numbers of edits measured (default: the preset's 1,5,10,20,50,100,200,500,1000); 0 is always measured",
    "--limit K              the first K documents of each benchmark (default: all)",
    "--out DIR              the run's folder (default runs/reproduce-<model>); rerunning resumes it",
    "--preset FILE          the spec to start from (default examples/reproduce.yaml)",
    "--hparams M=FILE,...   EasyEdit hparams per method (default: the reference's; layers beyond a",
    "                       shallower model's depth are scaled to it, with a warning: not tuned)",
    "--tasks LIST           replace the benchmarks (e.g. the demo world's tasks)",
    "--data PATH            replace the edit requests (a dataset name or file)",
    "--stats FILE           the statistics corpus (default: the preset's, else the shared WikiText)",
    "--mom2_n_samples N     statistics samples for every method that uses them (default: the method's)",
    "--edit_limit N         re-score at most N edited requests per checkpoint (default: the preset's)",
    "--batch_size B         benchmark batch size",
    "--dry-run              write RUN/spec.yaml and report missing methods, run nothing",
    "--no-report            do not write the report at the end",
  ],
};

/** The paper's methods in its order (the preset's). */
export const PAPER_METHODS = ["rome", "memit", "pmet", "mend", "kn", "grace", "serac"];

type Obj = Record<string, unknown>;

function csv(s: string | undefined): string[] | null {
  if (s === undefined) return null;
  return s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
}

function posInt(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`${flag}: expected a non-negative integer, got '${s}'`);
  return n;
}

function isBuilt(method: string): boolean {
  return METHODS[method.toLowerCase().replace(/_/g, "-")] !== undefined;
}

/**
 * Layers a reference hparams file names for a deeper model (GPT-2 XL's 48), scaled to this model's
 * depth: each layer l -> round(l * L / Lref) (Lref = v_loss_layer + 1), v_loss_layer -> L - 1. Only
 * applied when a layer does not exist in the model; returns a note saying so.
 */
export function fitLayersToDepth(
  raw: Obj,
  defaults: Obj,
  numLayers: number,
): { hparams: Obj; note: string | null } {
  const layers = (raw.layers ?? defaults.layers) as number[] | undefined;
  const vLoss = (raw.v_loss_layer ?? defaults.v_loss_layer) as number | undefined;
  const tooDeep =
    (Array.isArray(layers) && layers.some((l) => l >= numLayers)) ||
    (typeof vLoss === "number" && vLoss >= numLayers);
  if (!tooDeep) return { hparams: raw, note: null };
  const ref = typeof vLoss === "number" ? vLoss + 1 : 48;
  const out: Obj = { ...raw };
  if (Array.isArray(layers))
    out.layers = [...new Set(layers.map((l) => Math.min(numLayers - 1, Math.round((l * numLayers) / ref))))];
  if (typeof vLoss === "number") out.v_loss_layer = numLayers - 1;
  return {
    hparams: out,
    note: `layers ${JSON.stringify(layers)} (of ${ref}) scaled to ${JSON.stringify(out.layers)}, v_loss_layer ${numLayers - 1}: not tuned for this model; give --hparams`,
  };
}

export interface ReproduceFlags {
  model: string;
  methods?: string[] | null;
  n?: number[] | null;
  limit?: number | null;
  hparams?: Record<string, string>;
  tasks?: string[] | null;
  data?: string | null;
  stats?: string | null;
  mom2NSamples?: number | null;
  editLimit?: number | null;
  batchSize?: number | null;
}

/**
 * The preset with the flags applied: a raw spec (for parseSpec), the paper's methods that are not
 * built (missing), and notes (scaled layers).
 */
export function reproduceRawSpec(
  preset: Obj,
  f: ReproduceFlags,
): {
  raw: Obj;
  missing: { name: string; method: string }[];
  /** built methods that need a trained editor (MEND, MALMEN, SERAC) and were given none: not run */
  untrained: { name: string; method: string; how: string }[];
  notes: string[];
} {
  const raw: Obj = JSON.parse(JSON.stringify(preset)) as Obj;
  const modelPath = resolve(f.model);
  const modelName = basename(modelPath);
  raw.name = `reproduce-${modelName.replace(/[^A-Za-z0-9._-]/g, "_")}`;
  raw.models = [{ name: modelName, path: modelPath }];
  const numLayers = loadConfig(modelPath).numLayers;

  const all = (raw.methods as Obj[]).map((m) => (typeof m === "string" ? { method: m } : m));
  const wanted = f.methods ?? all.map((m) => String(m.method));
  const notes: string[] = [];
  const missing: { name: string; method: string }[] = [];
  const untrained: { name: string; method: string; how: string }[] = [];
  const methods: Obj[] = [];
  for (const w of wanted) {
    const m = all.find((x) => String(x.method).toLowerCase() === w.toLowerCase()) ?? {
      name: w.toUpperCase(),
      method: w,
    };
    const name = String(m.name ?? m.method);
    if (!isBuilt(String(m.method))) {
      missing.push({ name, method: String(m.method) });
      continue;
    }
    const method = METHODS[String(m.method).toLowerCase().replace(/_/g, "-")] as (typeof METHODS)[string];
    let hp: Obj | string = (m.hparams as Obj | string | undefined) ?? {};
    const file = f.hparams?.[String(m.method).toLowerCase()];
    if (file) hp = resolve(file);
    if (typeof hp !== "string" && "archive" in method.schema && !hp.archive) {
      const trainer = String(m.method).toLowerCase() === "serac" ? "train-serac" : "train-mend";
      untrained.push({
        name,
        method: String(m.method),
        how: `train it (editeval ${trainer} --model ${f.model} ...) and pass --hparams ${String(m.method).toLowerCase()}=OUT/hparams.yaml`,
      });
      continue;
    }
    if (typeof hp !== "string") {
      const defaults = Object.fromEntries(
        Object.entries(method.schema).map(([k, s]) => [k, (s as { default?: unknown }).default]),
      );
      const fit = fitLayersToDepth(hp, defaults, numLayers);
      hp = fit.hparams;
      if (fit.note) notes.push(`${name}: ${fit.note}`);
      if (f.mom2NSamples != null && "mom2_n_samples" in method.schema)
        hp = { ...hp, mom2_n_samples: f.mom2NSamples };
    }
    methods.push({ ...m, hparams: hp });
  }
  if (methods.length === 0)
    throw new UsageError(
      `editeval reproduce: none of the methods asked for can run (not built: ${missing.map((m) => m.method).join(", ") || "none"}; needing a trained editor: ${untrained.map((m) => m.method).join(", ") || "none"})`,
    );
  raw.methods = methods;

  const data = { ...(raw.data as Obj) };
  if (f.data) data.path = existsSync(f.data) ? resolve(f.data) : f.data;
  if (f.n) {
    const ns = [...new Set(f.n.filter((x) => x > 0))].sort((a, b) => a - b);
    if (ns.length === 0) throw new UsageError("--n: give at least one number of edits > 0");
    raw.checkpoints = [0, ...ns];
    data.n = ns[ns.length - 1];
  }
  raw.data = data;
  const bench = { ...(raw.benchmarks as Obj) };
  if (f.limit != null) bench.limit = f.limit;
  if (f.tasks) bench.tasks = f.tasks;
  if (f.batchSize != null) bench.batch_size = f.batchSize;
  raw.benchmarks = bench;
  if (f.stats) raw.stats = { ...((raw.stats as Obj) ?? {}), corpus: resolve(f.stats) };
  if (f.editLimit != null) raw.edit_metrics = { ...((raw.edit_metrics as Obj) ?? {}), limit: f.editLimit };
  return { raw, missing, untrained, notes };
}

export async function reproduceCommand(argv: string[]): Promise<number> {
  const v = parse(reproduceSpec, argv);
  if (!v) return 0;
  if (typeof v.model !== "string")
    throw new UsageError(`editeval reproduce: --model DIR is required\nusage: ${reproduceSpec.usage}`);
  const presetPath = resolve(
    typeof v.preset === "string" ? v.preset : join(packageRoot(), "examples", "reproduce.yaml"),
  );
  if (!existsSync(presetPath)) throw new UsageError(`--preset: no such file ${presetPath}`);
  const preset = YAML.parse(readFileSync(presetPath, "utf8")) as Obj;
  const hparams: Record<string, string> = {};
  for (const kv of csv(v.hparams as string | undefined) ?? []) {
    const at = kv.indexOf("=");
    if (at <= 0) throw new UsageError(`--hparams: expected METHOD=FILE, got '${kv}'`);
    hparams[kv.slice(0, at).toLowerCase()] = kv.slice(at + 1);
  }
  const num = (k: string): number | null =>
    typeof v[k] === "string" ? posInt(v[k] as string, `--${k}`) : null;
  const { raw, missing, untrained, notes } = reproduceRawSpec(preset, {
    model: v.model,
    methods: csv(v.methods as string | undefined)?.map((m) => m.toLowerCase()) ?? null,
    n: csv(v.n as string | undefined)?.map((x) => posInt(x, "--n")) ?? null,
    limit: num("limit"),
    hparams,
    tasks: csv(v.tasks as string | undefined),
    data: typeof v.data === "string" ? v.data : null,
    stats: typeof v.stats === "string" ? v.stats : null,
    mom2NSamples: num("mom2_n_samples"),
    editLimit: num("edit_limit"),
    batchSize: num("batch_size"),
  });
  // relative paths of the preset stay relative to the preset's folder
  const spec = parseSpec(raw, presetPath);
  const out = typeof v.out === "string" ? resolve(v.out) : resolve("runs", spec.name);
  mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, "spec.yaml"),
    `# written by editeval reproduce from ${presetPath}\n# run again with: editeval run ${join(out, "spec.yaml")} --out ${out}\n` +
      YAML.stringify({ ...raw, data: { ...(raw.data as Obj) } }),
  );
  const missingLine =
    missing.length > 0
      ? `missing (not built in EditEval yet, not run): ${missing.map((m) => `${m.name} (${m.method})`).join(", ")}`
      : null;
  writeFileSync(
    join(out, "missing-methods.json"),
    JSON.stringify(
      {
        missing,
        untrained,
        note: "methods of the paper's grid asked for but not built in EditEval (missing), or needing a trained editor that was not given (untrained); no results",
      },
      null,
      2,
    ) + "\n",
  );
  for (const n of notes) console.error(`editeval reproduce: warning: ${n}`);
  for (const u of untrained)
    console.error(`editeval reproduce: ${u.name} needs a trained editor, none given: not run; ${u.how}`);
  if (missingLine) console.error(`editeval reproduce: ${missingLine}`);
  console.error(
    `editeval reproduce: ${spec.methods.map((m) => m.name).join(", ")} on ${spec.models[0]?.name}, ` +
      `checkpoints ${spec.checkpoints.join(", ")}, benchmarks ${spec.benchmarks.tasks.join(", ")}` +
      `${spec.benchmarks.limit != null ? ` (first ${spec.benchmarks.limit} documents each)` : ""}; spec: ${join(out, "spec.yaml")}`,
  );
  if (v["dry-run"]) return 0;
  const s = await runExperiment(spec, { outDir: out });
  console.log(
    `reproduce: ${s.unitsComputed} unit(s) computed, ${s.unitsSkipped} already done, in ${formatDuration(s.seconds)}; results in ${s.store}`,
  );
  if (missingLine) console.log(missingLine);
  if (!v["no-report"]) console.log(`report: ${await reportRun(out)}`);
  return 0;
}

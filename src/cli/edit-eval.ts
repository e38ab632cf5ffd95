/**
 * editeval edit-eval: edit a model with a method over an edit dataset and score it as EasyEdit and ROME
 * do, writing one JSON file per case as it is computed (a rerun resumes) and a summary.
 */
import { join } from "node:path";
import * as torch from "../torch/index.js";
import { loadModel } from "../models/load.js";
import { loadTokenizer } from "../models/tokenizer/index.js";
import { Editor } from "../editing/editor.js";
import { METHOD_NAMES, methodByName } from "../editing/methods.js";
import { readHparamsFile } from "../editing/hparams.js";
import { loadEditDataset, type DatasetFormat } from "../data/edit/index.js";
import {
  CaseStore,
  consistencyVectorizer,
  runEditEvaluation,
  summarizeEditEval,
  toJson,
  type EditEvalSummary,
  type EvalMode,
} from "../evaluation/edit/index.js";
import { intFlag, parse, required, UsageError, type CommandSpec } from "./args.js";

export const editEvalSpec: CommandSpec = {
  name: "edit-eval",
  summary:
    "editeval edit-eval: edit a model over an edit dataset and score it with EasyEdit's and ROME's metrics",
  usage:
    "editeval edit-eval --model DIR --method rome --hparams FILE --data counterfact --n 100 --mode sequential|single|batch [--batch-size B] --output_path OUT",
  options: {
    model: { type: "string" },
    method: { type: "string" },
    hparams: { type: "string" },
    data: { type: "string" },
    format: { type: "string" },
    n: { type: "string" },
    limit: { type: "string" },
    start: { type: "string" },
    mode: { type: "string" },
    "batch-size": { type: "string" },
    output_path: { type: "string" },
    "output-path": { type: "string" },
    "on-error": { type: "string" },
    metrics: { type: "string" },
    generation: { type: "boolean" },
    seed: { type: "string" },
    "max-out-len": { type: "string" },
    "knowedit-rephrase": { type: "boolean" },
    stats: { type: "string" },
    corpus: { type: "string" },
    dtype: { type: "string" },
    overwrite: { type: "boolean" },
    json: { type: "boolean" },
  },
  help: [
    "--model DIR          the checkpoint to edit (Hugging Face directory)",
    `--method NAME        ${METHOD_NAMES}`,
    "--hparams FILE       EasyEdit YAML hyper-parameters (omitted fields: the reference defaults)",
    "--data NAME|FILE     counterfact (EasyEdit's counterfact-edit.json), counterfact-train, counterfact-val,",
    "                     counterfact-rome (ROME layout, 1,031 cases), zsre (MEND layout), zsre-train, knowedit,",
    "                     or a JSON file in one of these layouts (from ../shared/data, or EDITEVAL_DATA)",
    "--format F           counterfact-easyedit, counterfact-rome, zsre-mend or knowedit (default: detected)",
    "--n N, --limit N     evaluate the first N cases (default 100)",
    "--start K            skip the first K records",
    "--mode M             sequential (default: all edits, then score all), single (edit, score, undo),",
    "                     batch (edit B at once, score them, undo)",
    "--batch-size B       requests per edit (batch mode: the chunk; default 1)",
    "--output_path OUT    folder for run.json, cases/case_<id>.json, summary.json (a rerun resumes)",
    "--on-error skip|fatal  a malformed record: skip it with a warning, or stop (default fatal)",
    "--metrics LIST       easyedit,rome (default both; rome needs CounterFact)",
    "--generation         also the generation tests: fluency (n-gram entropy) and reference consistency",
    "--seed S             seed of the generation sampling (default 42)",
    "--max-out-len L      generated length in tokens, prompt included (default 100)",
    "--knowedit-rephrase  KnowEdit: score rephrase_prompt too (KnowEdit's own loader drops it)",
    "--stats FILE         second-moment statistics for the edited modules, instead of computing them",
    "--corpus PATH        text corpus for the statistics (default: the shared WikiText)",
    "--dtype DTYPE        float32 (default), bfloat16, float64",
    "--overwrite          discard an earlier run in OUT instead of resuming it",
    "--json               print the summary as JSON",
  ],
};

const MODES: EvalMode[] = ["sequential", "single", "batch"];
const FORMATS: DatasetFormat[] = ["counterfact-easyedit", "counterfact-rome", "zsre-mend", "knowedit"];

function fmt(x: number | undefined): string {
  return x === undefined ? "-" : Number.isFinite(x) ? x.toFixed(4) : "nan";
}

/** The summary as text tables. */
export function formatSummary(s: EditEvalSummary): string {
  const lines: string[] = [];
  lines.push(`EasyEdit Metrics Summary (fractions, mean over ${s.cases} cases):`);
  const rows: [string, number | undefined, number | undefined][] = [
    ["rewrite_acc", s.easyedit.pre.rewrite_acc, s.easyedit.post.rewrite_acc],
    ["rephrase_acc", s.easyedit.pre.rephrase_acc, s.easyedit.post.rephrase_acc],
  ];
  for (const sec of ["locality", "portability"] as const) {
    const keys = new Set([
      ...Object.keys(s.easyedit.pre[sec] ?? {}),
      ...Object.keys(s.easyedit.post[sec] ?? {}),
    ]);
    for (const k of keys) rows.push([`${sec}.${k}`, s.easyedit.pre[sec]?.[k], s.easyedit.post[sec]?.[k]]);
  }
  const w = Math.max(...rows.map((r) => r[0].length));
  lines.push(`  ${"metric".padEnd(w)}  ${"pre".padStart(8)}  ${"post".padStart(8)}`);
  for (const [k, a, b] of rows)
    if (a !== undefined || b !== undefined)
      lines.push(`  ${k.padEnd(w)}  ${fmt(a).padStart(8)}  ${fmt(b).padStart(8)}`);
  const ke = Object.entries(s.knowedit);
  if (ke.length)
    lines.push(`KnowEdit table (post, x100): ${ke.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}`);
  if (s.rome) {
    lines.push("ROME summarize (x100; mean ± std over cases):");
    for (const [k, [m, sd]] of Object.entries(s.rome))
      lines.push(
        `  ${k.padEnd(30)} ${Number.isFinite(m) ? m.toFixed(2) : "nan"} ± ${Number.isFinite(sd) ? sd.toFixed(2) : "nan"}`,
      );
  }
  for (const n of s.notes) lines.push(`note: ${n}`);
  return lines.join("\n");
}

export function editEvalCommand(argv: string[]): number {
  const v = parse(editEvalSpec, argv);
  if (!v) return 0;
  const cmd = "edit-eval";
  const modelDir = required(v, "model", cmd);
  const method = methodByName(required(v, "method", cmd));
  const data = required(v, "data", cmd);
  const out = (v.output_path ?? v["output-path"]) as string | undefined;
  if (!out) throw new UsageError(`editeval ${cmd}: --output_path is required. See 'editeval ${cmd} --help'.`);
  const mode = (v.mode ?? "sequential") as EvalMode;
  if (!MODES.includes(mode))
    throw new UsageError(`editeval ${cmd}: --mode must be one of ${MODES.join(", ")}, got '${mode}'`);
  const format = v.format as DatasetFormat | undefined;
  if (format !== undefined && !FORMATS.includes(format))
    throw new UsageError(`editeval ${cmd}: --format must be one of ${FORMATS.join(", ")}, got '${format}'`);
  const onError = (v["on-error"] ?? "fatal") as "skip" | "fatal";
  if (onError !== "skip" && onError !== "fatal")
    throw new UsageError(`editeval ${cmd}: --on-error must be skip or fatal, got '${String(onError)}'`);
  const n = v.limit !== undefined ? intFlag(v, "limit", cmd, 100) : intFlag(v, "n", cmd, 100);
  const start = intFlag(v, "start", cmd, 0);
  const batchSize = intFlag(v, "batch-size", cmd, 1);
  if (n < 1 || start < 0 || batchSize < 1)
    throw new UsageError(`editeval ${cmd}: --n and --batch-size must be >= 1 and --start >= 0`);
  const metrics = String(v.metrics ?? "easyedit,rome")
    .split(",")
    .map((x) => x.trim().toLowerCase())
    .filter(Boolean);
  for (const m of metrics)
    if (m !== "easyedit" && m !== "rome")
      throw new UsageError(`editeval ${cmd}: unknown metric family '${m}' (easyedit, rome)`);
  const seed = intFlag(v, "seed", cmd, 42);
  const maxOutLen = intFlag(v, "max-out-len", cmd, 100);
  const dtype = typeof v.dtype === "string" ? torch.parseDType(v.dtype, "--dtype") : "float32";

  // the whole file is read once: the first N cases are evaluated, every case feeds the TF-IDF statistics
  const all = loadEditDataset(data, {
    onError,
    format,
    start,
    knowEditRephrase: v["knowedit-rephrase"] === true,
  });
  const cases = all.cases.slice(0, n);
  if (cases.length === 0) throw new Error(`${all.path}: no cases to evaluate`);
  const generation = v.generation === true;
  const tfidf = generation && metrics.includes("rome") ? consistencyVectorizer(all.cases) : null;

  const rawHparams = typeof v.hparams === "string" ? readHparamsFile(v.hparams) : {};
  const settings = {
    model: modelDir,
    method: method.name,
    hparams: rawHparams,
    data: all.path,
    format: all.format,
    start,
    n: cases.length,
    mode,
    batch_size: batchSize,
    metrics,
    generation,
    seed,
    max_out_len: maxOutLen,
    dtype,
    stats: v.stats ?? null,
    corpus: v.corpus ?? null,
    on_error: onError,
    knowedit_rephrase: v["knowedit-rephrase"] === true,
  };
  const store = new CaseStore(out);
  const state = store.checkSettings(settings, v.overwrite === true);
  if (state === "resume") process.stderr.write(`edit-eval: resuming the run in ${out}\n`);

  const model = loadModel(modelDir, { dtype });
  const tok = loadTokenizer(modelDir);
  const hparams = method.parseHparams(
    rawHparams,
    typeof v.hparams === "string" ? v.hparams : "--hparams",
    model,
  );
  const editor = new Editor(model, tok, {
    statsFile: typeof v.stats === "string" ? v.stats : undefined,
    corpus: typeof v.corpus === "string" ? v.corpus : undefined,
  });
  const t0 = performance.now();
  const res = runEditEvaluation({
    model,
    tok,
    editor,
    method,
    hparams,
    cases,
    mode,
    batchSize,
    store,
    eval: {
      easyedit: metrics.includes("easyedit"),
      rome: metrics.includes("rome"),
      generation,
      seed,
      maxOutLen,
      tfidf,
    },
  });
  const notes = [
    `data: ${all.note} (${all.path}); cases ${start}..${start + cases.length - 1} of the valid records`,
    ...(all.skipped.length ? [`${all.skipped.length} malformed record(s) skipped (--on-error skip)`] : []),
    `mode: ${mode}${mode !== "single" ? `, batch size ${batchSize}` : ""}; method ${method.name}`,
    "EasyEdit numbers are teacher-forced token accuracies (fractions); locality is agreement with the unedited model",
  ];
  if (all.format === "counterfact-easyedit" && metrics.includes("rome"))
    notes.push(
      "ROME metrics on EasyEdit's CounterFact layout use its one rephrase_prompt (mostly a ROME generation prompt, " +
        "not a paraphrase) and its one neighbourhood prompt, so PS and NS are not ROME's (use --data counterfact-rome)",
    );
  if (generation)
    notes.push(
      `generation: top-5 sampling to ${maxOutLen} tokens (prompt included), seeded (${seed}); fluency agrees with the references in distribution only`,
    );
  const summary = summarizeEditEval(store.all(), notes);
  const summaryJson = {
    ...summary,
    settings,
    computed: res.computed,
    seconds: (performance.now() - t0) / 1000,
  };
  store.writeAtomic(join(out, "summary.json"), toJson(summaryJson) + "\n");
  if (v.json) process.stdout.write(toJson(summaryJson) + "\n");
  else {
    console.log(formatSummary(summary));
    console.log(`wrote ${join(out, "summary.json")} and ${store.casesDir}/case_<id>.json`);
  }
  editor.free();
  model.free();
  return 0;
}

/**
 * editeval eval: benchmark a checkpoint as lm-evaluation-harness's `lm_eval` does (same task names,
 * flags, results JSON and table; per-sample logs as JSONL).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import * as torch from "../torch/index.js";
import { loadModel } from "../models/load.js";
import { loadTokenizer } from "../models/tokenizer/index.js";
import { evaluate, type HarnessResults } from "../harness/evaluate.js";
import { listTaskNames } from "../harness/registry.js";
import { makeTable } from "../harness/table.js";
import { formatDuration } from "../util/progress.js";
import { intFlag, numFlag, parse, required, UsageError, type CommandSpec } from "./args.js";

export const evalSpec: CommandSpec = {
  name: "eval",
  summary: "editeval eval: benchmark a model on lm-evaluation-harness tasks (MMLU, GSM8K, BBH, ...)",
  usage:
    "editeval eval --model DIR --tasks mmlu,gsm8k [--num_fewshot N] [--batch_size B] [--limit N] [--apply_chat_template [NAME]] [--output_path OUT] [--log_samples]",
  options: {
    model: { type: "string" },
    tasks: { type: "string" },
    num_fewshot: { type: "string" },
    batch_size: { type: "string" },
    limit: { type: "string" },
    output_path: { type: "string" },
    log_samples: { type: "boolean" },
    data_dir: { type: "string" },
    seed: { type: "string" },
    toxigen_path: { type: "string" },
    world_dir: { type: "string" },
    use_cache: { type: "string" },
    no_cache: { type: "boolean" },
    max_gen_toks: { type: "string" },
    bootstrap_iters: { type: "string" },
    dtype: { type: "string" },
    json: { type: "boolean" },
    apply_chat_template: { type: "string" },
    fewshot_as_multiturn: { type: "string" },
    system_instruction: { type: "string" },
  },
  help: [
    "--model DIR          a Hugging Face checkpoint directory",
    "--tasks LIST         comma-separated tasks or groups; 'list' prints them. mmlu (57 subjects, groups",
    "                     mmlu_stem/_humanities/_social_sciences/_other), gsm8k, gsm8k_cot, bbh_cot_fewshot,",
    "                     triviaqa_sample, nq_open, truthfulqa_mc1, truthfulqa_mc2, toxigen_prompts,",
    "                     toxigen_annotated_train, toxigen (needs --toxigen_path); world (every task file",
    "                     in models/demo/world/tasks), world:<folder or file.jsonl>, world_<task>",
    "--num_fewshot N      few-shot examples for every task (default: each task's own)",
    "--batch_size B       rows per forward pass (default 8)",
    "--limit N            the first N documents of each task (N < 1: that fraction)",
    "--output_path OUT    a folder (results in OUT/<model>/results_<date>.json) or a .json file",
    "--log_samples        also write samples_<task>_<date>.jsonl beside the results",
    "--data_dir D         benchmark data folder (default ../shared/data, or EDITEVAL_DATA)",
    "--seed S             few-shot sampling seed (the harness's fewshot_seed, default 1234)",
    "--toxigen_path FILE  the official ToxiGen annotated_test.csv, for the task toxigen",
    "--world_dir D        the folder of world tasks (default models/demo/world/tasks)",
    "--use_cache DIR      request cache folder (default .editeval-cache/requests)",
    "--no_cache           answer every request with the model (no request cache)",
    "--max_gen_toks N     default generation length (256, as the harness)",
    "--bootstrap_iters N  bootstrap iterations for bootstrapped stderrs (default 100000; 0: none)",
    "--apply_chat_template [NAME]  render prompts with the model's chat template (tokenizer_config.json's",
    "                     chat_template; NAME picks one of several named templates), as lm_eval",
    "--fewshot_as_multiturn [true|false]  few-shot examples as user/assistant turns (default true with",
    "                     --apply_chat_template; false: one user message)",
    "--system_instruction TEXT  a system prompt before each task's description",
    "--dtype DTYPE        float32 (default), bfloat16, float64",
    "--json               print the results JSON instead of the table",
  ],
};

function stamp(): string {
  // the harness's datetime.now().isoformat() with ':' replaced by '-'
  return new Date().toISOString().replace("Z", "").replace(/:/g, "-");
}

/** Flags that take an optional value (lm_eval's nargs="?"): given alone, they read "true". */
const OPTIONAL_VALUE_FLAGS = ["--apply_chat_template", "--fewshot_as_multiturn"];

function withOptionalValues(argv: string[]): string[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    const next = argv[i + 1];
    if (OPTIONAL_VALUE_FLAGS.includes(a) && (next === undefined || next.startsWith("--")))
      out.push(`${a}=true`);
    else out.push(a);
  });
  return out;
}

function boolValue(v: string, flag: string, cmd: string): boolean {
  const s = v.toLowerCase();
  if (["true", "1", "yes"].includes(s)) return true;
  if (["false", "0", "no"].includes(s)) return false;
  throw new UsageError(`editeval ${cmd}: --${flag} must be true or false, got '${v}'`);
}

export function evalCommand(argv: string[]): number {
  const v = parse(evalSpec, withOptionalValues(argv));
  if (!v) return 0;
  const cmd = "eval";
  const tasksArg = required(v, "tasks", cmd);
  const registryOpts = {
    dataDir: v.data_dir as string | undefined,
    toxigenPath: v.toxigen_path as string | undefined,
    worldDir: v.world_dir as string | undefined,
  };
  if (tasksArg === "list") {
    const { tasks, groups } = listTaskNames(registryOpts);
    console.log(
      `Groups:\n${groups.map((g) => "  " + g).join("\n")}\nTasks:\n${tasks.map((t) => "  " + t).join("\n")}`,
    );
    return 0;
  }
  const modelDir = required(v, "model", cmd);
  const numFewshot = v.num_fewshot !== undefined ? intFlag(v, "num_fewshot", cmd, 0) : undefined;
  const batchSize = intFlag(v, "batch_size", cmd, 8);
  const limit = numFlag(v, "limit", cmd, undefined);
  if ((numFewshot !== undefined && numFewshot < 0) || batchSize < 1 || (limit !== undefined && limit <= 0))
    throw new UsageError(`editeval ${cmd}: --num_fewshot must be >= 0, --batch_size >= 1, --limit > 0`);
  const seed = intFlag(v, "seed", cmd, 1234);
  const maxGenToks = v.max_gen_toks !== undefined ? intFlag(v, "max_gen_toks", cmd, 256) : undefined;
  const bootstrapIters = intFlag(v, "bootstrap_iters", cmd, 100000);
  const dtype = typeof v.dtype === "string" ? torch.parseDType(v.dtype, "--dtype") : "float32";
  // --apply_chat_template: alone (or "true") the tokenizer's template, "false" none, else a template name
  const act = v.apply_chat_template as string | undefined;
  const applyChatTemplate: boolean | string =
    act === undefined || act.toLowerCase() === "false" ? false : act.toLowerCase() === "true" ? true : act;
  const fewshotAsMultiturn =
    typeof v.fewshot_as_multiturn === "string"
      ? boolValue(v.fewshot_as_multiturn, "fewshot_as_multiturn", cmd)
      : undefined;
  if (fewshotAsMultiturn === true && applyChatTemplate === false)
    throw new UsageError(`editeval ${cmd}: --fewshot_as_multiturn needs --apply_chat_template`);
  const systemInstruction = v.system_instruction as string | undefined;

  const t0 = performance.now();
  const model = loadModel(modelDir, { dtype });
  const tok = loadTokenizer(modelDir);
  const modelName = resolve(modelDir);
  const out = evaluate(model, tok, tasksArg, {
    ...registryOpts,
    numFewshot,
    batchSize,
    limit,
    seed,
    maxGenToks,
    bootstrapIters,
    applyChatTemplate,
    fewshotAsMultiturn,
    systemInstruction,
    logSamples: true,
    cache: v.no_cache ? false : ((v.use_cache as string | undefined) ?? true),
    modelName: modelName,
    modelArgs: `pretrained=${modelName},dtype=${dtype}`,
  });
  model.free();
  const r: HarnessResults = out.results;
  r.total_evaluation_time_seconds = String((performance.now() - t0) / 1000);

  if (typeof v.output_path === "string") {
    const date = stamp();
    const file = v.output_path.endsWith(".json")
      ? v.output_path
      : join(v.output_path, modelName.replace(/^\/+/, "").replace(/\//g, "__"), `results_${date}.json`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(r, null, 2) + "\n");
    process.stderr.write(`results: ${file}\n`);
    if (v.log_samples) {
      for (const [task, logs] of Object.entries(out.samples)) {
        const sf = join(dirname(file), `samples_${task}_${date}.jsonl`);
        writeFileSync(sf, logs.map((l) => JSON.stringify(l)).join("\n") + (logs.length ? "\n" : ""));
      }
      process.stderr.write(`samples: ${dirname(file)}/samples_<task>_${date}.jsonl\n`);
    }
  } else if (v.log_samples) {
    throw new UsageError(`editeval ${cmd}: --log_samples needs --output_path`);
  }

  if (v.json) {
    console.log(JSON.stringify(r, null, 2));
    return 0;
  }
  const limitNote = limit !== undefined ? `, limit: ${limit}` : "";
  const chatNote =
    applyChatTemplate === false
      ? ""
      : `, chat template${typeof applyChatTemplate === "string" ? ` ${applyChatTemplate}` : ""} (sha256 ${String(r.chat_template_sha).slice(0, 12)}), fewshot_as_multiturn: ${String(r.fewshot_as_multiturn)}`;
  console.log(
    `${basename(modelName)} (${modelName}), num_fewshot: ${numFewshot ?? "task default"}, batch_size: ${batchSize}${limitNote}, fewshot_seed: ${seed}${chatNote}`,
  );
  console.log(makeTable(r));
  if (r.groups) console.log("\n" + makeTable(r, "groups"));
  const q = out.requests;
  console.log(
    `\nmodel requests: ${q.loglikelihood} loglikelihood, ${q.generateUntil} generate_until, ${q.loglikelihoodRolling} rolling; ${q.cached} answered from the cache; ${formatDuration(Number(r.total_evaluation_time_seconds))}`,
  );
  const notes = Object.entries(r.configs)
    .map(([t, c]) => [t, (c.metadata as { note?: string }).note] as const)
    .filter(([, n]) => n);
  for (const [t, n] of notes) console.log(`note: ${t}: ${n}`);
  return 0;
}

/**
 * editeval train-serac: train SERAC's scope classifier and counterfactual model for a model (the
 * archive `--method serac` reads through its `archive` hyper-parameter), with progress, checkpoints in
 * the output directory and exact resumption (src/editing/serac/train.ts).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadTokenizer } from "../models/tokenizer/index.js";
import { readHparamsFile } from "../editing/hparams.js";
import { parseSeracHparams } from "../editing/serac/hparams.js";
import { loadScopeRecords } from "../editing/serac/data.js";
import { trainSerac } from "../editing/serac/train.js";
import { packageRoot } from "../util/paths.js";
import { intFlag, parse, required, UsageError, type CommandSpec } from "./args.js";

export const trainSeracSpec: CommandSpec = {
  name: "train-serac",
  summary:
    "editeval train-serac: train SERAC's scope classifier and counterfactual model (resumable; the archive of --method serac)",
  usage:
    "editeval train-serac --model DIR --cf-model DIR --data zsre|world|FILE --out DIR [--resume] [--steps N] [--hparams FILE]",
  options: {
    model: { type: "string" },
    "cf-model": { type: "string" },
    "cls-model": { type: "string" },
    data: { type: "string" },
    out: { type: "string" },
    resume: { type: "boolean" },
    steps: { type: "string" },
    hparams: { type: "string" },
    val: { type: "string" },
    json: { type: "boolean" },
  },
  help: [
    "--model DIR        the model to be edited (its tokenizer; the classifier starts from it unless --cls-model)",
    "--cf-model DIR     the counterfactual model's starting point (same tokenizer; e.g. a copy of the base)",
    "--cls-model DIR    the classifier backbone's starting point (default --model)",
    "--data SPEC        zsre (../shared/data/zsre/zsre_mend_train-1k.json), world (models/demo/world/counterfact.json",
    "                   from record 50 on; 0-49 are the demo's evaluation cases), or an edit-dataset FILE;",
    "                   any of them may end in a slice [a:b]",
    "--out DIR          the archive directory (checkpoints are written there as training goes)",
    "--resume           continue the checkpoint in --out (same hparams and data)",
    "--steps N          training iterations (default the hparams' max_iters)",
    "--hparams FILE     SERAC hparams (EasyEdit's hparams/TRAINING/SERAC/*.yaml work as they are;",
    "                   default hparams/SERAC/demo.training.yaml)",
    "--val N            the last N records are held out for validation (default min(50, 10%))",
    "--json             print the result as JSON",
  ],
};

export function trainSeracCommand(argv: string[]): number {
  const v = parse(trainSeracSpec, argv);
  if (v === null) return 0;
  const cmd = "train-serac";
  const model = required(v, "model", cmd);
  const data = required(v, "data", cmd);
  const out = required(v, "out", cmd);
  const file =
    typeof v.hparams === "string" ? v.hparams : join(packageRoot(), "hparams", "SERAC", "demo.training.yaml");
  const h = parseSeracHparams(readHparamsFile(file), file);
  const cfModel = typeof v["cf-model"] === "string" ? v["cf-model"] : null;
  if (!h.freeze_cntr && !cfModel)
    throw new UsageError(
      `editeval ${cmd}: --cf-model is required (unless the hparams set freeze_cntr: true)`,
    );
  for (const [flag, dir] of [
    ["model", model],
    ["cf-model", cfModel],
    ["cls-model", v["cls-model"]],
  ] as const)
    if (typeof dir === "string" && !existsSync(join(dir, "config.json")))
      throw new UsageError(`editeval ${cmd}: --${flag} ${dir} is not a model directory (no config.json)`);
  const steps = v.steps === undefined ? h.max_iters : intFlag(v, "steps", cmd, h.max_iters);
  if (steps < 1) throw new UsageError(`editeval ${cmd}: --steps must be >= 1`);
  const { records, source } = loadScopeRecords(data);
  const nVal =
    v.val === undefined ? Math.min(50, Math.floor(records.length / 10)) : intFlag(v, "val", cmd, 0);
  if (nVal < 0 || nVal >= records.length)
    throw new UsageError(`editeval ${cmd}: --val must be in [0, ${records.length - 1}]`);
  const log = (l: string) => process.stderr.write(l + "\n");
  log(
    `train-serac: ${records.length - nVal} training and ${nVal} validation records from ${source}; hparams ${file}; ${steps} iterations into ${out}`,
  );
  const res = trainSerac({
    hparams: h,
    tok: loadTokenizer(model),
    clsInit: typeof v["cls-model"] === "string" ? v["cls-model"] : model,
    cfInit: cfModel ?? model,
    data: {
      spec: data,
      source,
      train: records.slice(0, records.length - nVal),
      val: records.slice(records.length - nVal),
    },
    out,
    steps,
    resume: v.resume === true,
    log,
  });
  const last = res.log[res.log.length - 1] ?? {};
  if (v.json) console.log(JSON.stringify({ out, ...res, last }));
  else
    console.log(
      `${out}: ${res.step} iterations in ${res.seconds.toFixed(1)} s; last: ${Object.entries(last)
        .map(([k, x]) => `${k} ${Number.isInteger(x) ? x : x.toFixed(4)}`)
        .join(", ")}`,
    );
  return 0;
}

/**
 * editeval train-mend: train an editor network (MEND or MALMEN) for a model, with progress lines,
 * checkpoints and exact resume; writes the trained editor and an hparams.yaml that names it, which
 * `editeval edit` / `edit-eval` / `run` take as they are.
 */
import { loadModel } from "../models/load.js";
import { loadTokenizer } from "../models/tokenizer/index.js";
import { readHparamsFile } from "../editing/hparams.js";
import { loadMetaData } from "../editing/mend/data.js";
import { parseMendHparamsRaw } from "../editing/mend/hparams.js";
import { editedWeights } from "../editing/mend/hparams.js";
import { trainMend } from "../editing/mend/train.js";
import { parseMalmenHparamsRaw } from "../editing/malmen/hparams.js";
import { trainMalmen } from "../editing/malmen/train.js";
import * as torch from "../torch/index.js";
import { intFlag, parse, required, UsageError, type CommandSpec } from "./args.js";

export const trainMendSpec: CommandSpec = {
  name: "train-mend",
  summary: "editeval train-mend: train a MEND or MALMEN editor network for a model (resumable)",
  usage:
    "editeval train-mend --model DIR --method mend|malmen --data zsre|world|FILE --hparams FILE --out DIR [--resume] [--steps N]",
  options: {
    model: { type: "string" },
    method: { type: "string" },
    data: { type: "string" },
    hparams: { type: "string" },
    out: { type: "string" },
    resume: { type: "boolean" },
    steps: { type: "string" },
    "val-size": { type: "string" },
    threads: { type: "string" },
    json: { type: "boolean" },
  },
  help: [
    "--model DIR        the model the editor is trained for (Hugging Face directory)",
    "--method M         mend (default) or malmen",
    "--data D           zsre (../shared/data/zsre/zsre_mend_train-1k.json: 1,000 ZsRE training records),",
    "                   world (DIR/world/counterfact.json: the demo world's requests), or an edit dataset",
    "                   file (CounterFact, ZsRE or KnowEdit layout; records need a rephrase and a locality prompt)",
    "--hparams FILE     EasyEdit's YAML (hparams/TRAINING/MEND/<model>.yaml, hparams/MEND/demo.yaml, ...)",
    "--out DIR          output: checkpoint/, log.jsonl, mend.safetensors (or malmen.safetensors), hparams.yaml",
    "--resume           continue the checkpoint in --out (without it, an existing checkpoint is an error)",
    "--steps N          training iterations (overrides max_iters; each iteration is one edit batch)",
    "--val-size N       records held out for validation: the first N of the data (default: a tenth)",
    "--threads N        torch threads (default: OMP_NUM_THREADS or 1)",
    "--json             print the result as JSON",
  ],
};

export function trainMendCommand(argv: string[]): number {
  const v = parse(trainMendSpec, argv);
  if (v === null) return 0;
  const cmd = "train-mend";
  const modelDir = required(v, "model", cmd);
  const method = String(v.method ?? "mend").toLowerCase();
  if (method !== "mend" && method !== "malmen")
    throw new UsageError(`editeval ${cmd}: --method must be mend or malmen, got '${method}'`);
  const dataSpec = required(v, "data", cmd);
  const hparamsFile = required(v, "hparams", cmd);
  const out = required(v, "out", cmd);
  const steps = v.steps === undefined ? undefined : intFlag(v, "steps", cmd, 0);
  if (steps !== undefined && steps < 1) throw new UsageError(`editeval ${cmd}: --steps must be >= 1`);
  const valSize = v["val-size"] === undefined ? undefined : intFlag(v, "val-size", cmd, 0);
  if (v.threads !== undefined) torch.setNumThreads(intFlag(v, "threads", cmd, 1));
  const log = (l: string) => process.stderr.write(l + "\n");

  const raw = readHparamsFile(hparamsFile);
  const model = loadModel(modelDir);
  const tok = loadTokenizer(modelDir);
  const data = loadMetaData(dataSpec, { modelDir, valSize, warn: log });
  log(
    `train-mend: ${method.toUpperCase()} on ${data.path} (${data.train.length} training records, first ${data.val.length} held out)`,
  );
  const rawForEdit = { ...raw };
  delete rawForEdit.archive;
  const common = {
    outDir: out,
    data,
    maxIters: steps,
    resume: v.resume === true,
    log,
    rawHparams: rawForEdit,
  };
  const res =
    method === "mend"
      ? (() => {
          const h = parseMendHparamsRaw(raw, hparamsFile);
          editedWeights(model, h.inner_params, hparamsFile);
          return trainMend(model, tok, h, common);
        })()
      : (() => {
          const h = parseMalmenHparamsRaw(raw, hparamsFile);
          editedWeights(model, h.inner_params, hparamsFile);
          return trainMalmen(model, tok, h, common);
        })();
  const summary = {
    method: method.toUpperCase(),
    iterations: res.iterations,
    seconds: res.seconds,
    archive: res.archive,
    hparams: res.hparamsFile,
    validation: res.val,
    data: { path: data.path, train: data.train.length, held_out: data.val.length },
  };
  if (v.json) console.log(JSON.stringify(summary));
  else {
    console.log(`trained ${summary.method} for ${res.iterations} iterations: ${res.archive}`);
    if (res.hparamsFile)
      console.log(
        `edit with it: editeval edit-eval --model ${modelDir} --method ${method} --hparams ${res.hparamsFile} ...`,
      );
    if (res.val) console.log(JSON.stringify(res.val));
  }
  model.free();
  return 0;
}

/**
 * editeval edit: apply an editing method to a checkpoint and write the edited checkpoint and journal.
 */
import { readFileSync } from "node:fs";
import * as torch from "../torch/index.js";
import { loadModel } from "../models/load.js";
import { loadTokenizer } from "../models/tokenizer/index.js";
import { saveCheckpoint } from "../models/save.js";
import { loglikelihood } from "../models/scoring.js";
import { Editor } from "../editing/editor.js";
import { METHOD_NAMES, methodByName } from "../editing/methods.js";
import { readHparamsFile, describeSchema } from "../editing/hparams.js";
import { fillPrompt, requestFromJson, targetText, type EditRequest } from "../editing/request.js";
import { intFlag, parse, required, UsageError, type CommandSpec } from "./args.js";

export const editSpec: CommandSpec = {
  name: "edit",
  summary:
    "editeval edit: edit a checkpoint (ROME, R-ROME, MEMIT, PMET, AlphaEdit, EMMET, FT-L, FT-M, GRACE, KN, LoRA)",
  usage:
    "editeval edit --model DIR --method rome --hparams FILE.yaml --requests FILE.json [--stats FILE] [--batch-size N] --out DIR [--json]",
  options: {
    model: { type: "string" },
    method: { type: "string" },
    hparams: { type: "string" },
    requests: { type: "string" },
    stats: { type: "string" },
    corpus: { type: "string" },
    "batch-size": { type: "string" },
    dtype: { type: "string" },
    out: { type: "string" },
    json: { type: "boolean" },
    "show-hparams": { type: "boolean" },
  },
  help: [
    "--model DIR        the checkpoint to edit",
    `--method NAME      ${METHOD_NAMES}`,
    "--hparams FILE     EasyEdit YAML (or ROME JSON) hyper-parameters; omitted fields take the reference defaults",
    "--requests FILE    JSON list of requests: {prompt, subject, target_new[, ground_truth]} (EasyEdit) or",
    "                   ROME's {requested_rewrite: {prompt, subject, target_new: {str}}}",
    "--stats FILE       second-moment statistics (ROME .npz or safetensors 'mom2'), instead of computing them",
    "--corpus PATH      text corpus for the statistics (default: the shared WikiText)",
    "--batch-size N     requests per edit for batch methods (default: all at once; ROME: 1)",
    "--dtype DTYPE      float32 (default), bfloat16, float64",
    "--out DIR          where the edited checkpoint and edits.json are written",
    "--show-hparams     print the method's hyper-parameters and defaults, then exit",
    "--json             a JSON summary on stdout",
  ],
};

function readRequests(path: string): EditRequest[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: cannot read requests (${(e as Error).message})`);
  }
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) throw new Error(`${path}: no requests`);
  return list.map((r, i) => requestFromJson(r, `${path}: request ${i}`));
}

export function editCommand(argv: string[]): number {
  const v = parse(editSpec, argv);
  if (!v) return 0;
  const method = methodByName(required(v, "method", "edit"));
  if (v["show-hparams"]) {
    console.log(
      `${method.name} hyper-parameters (EasyEdit names; defaults are the reference ones):\n${describeSchema(method.schema)}`,
    );
    return 0;
  }
  const dir = required(v, "model", "edit");
  const out = required(v, "out", "edit");
  const requests = readRequests(required(v, "requests", "edit"));
  const dtype = typeof v.dtype === "string" ? torch.parseDType(v.dtype, "--dtype") : "float32";
  const model = loadModel(dir, { dtype });
  const tok = loadTokenizer(dir);
  const raw = typeof v.hparams === "string" ? readHparamsFile(v.hparams) : {};
  const hparams = method.parseHparams(raw, typeof v.hparams === "string" ? v.hparams : "--hparams", model);
  const prob = (r: EditRequest) =>
    Math.exp(
      loglikelihood(model, tok, [{ context: fillPrompt(r), continuation: targetText(r.targetNew) }])[0]
        ?.logprob ?? -Infinity,
    );
  const before = requests.map(prob);
  const ed = new Editor(model, tok, {
    statsFile: typeof v.stats === "string" ? v.stats : undefined,
    corpus: typeof v.corpus === "string" ? v.corpus : undefined,
  });
  const batchSize = v["batch-size"] === undefined ? undefined : intFlag(v, "batch-size", "edit", 1);
  if (batchSize !== undefined && batchSize < 1)
    throw new UsageError("editeval edit: --batch-size must be >= 1");
  const t0 = performance.now();
  const records = ed.edit(method, requests, hparams, { batchSize });
  const seconds = (performance.now() - t0) / 1000;
  const after = requests.map(prob);
  saveCheckpoint(model, out);
  ed.journal.save(out);
  const rows = requests.map((r, i) => ({
    prompt: fillPrompt(r),
    target_new: r.targetNew,
    p_before: before[i] as number,
    p_after: after[i] as number,
  }));
  if (v.json)
    process.stdout.write(
      JSON.stringify({ method: method.name, seconds, edits: records.length, requests: rows, out }) + "\n",
    );
  else {
    for (const row of rows)
      console.log(
        `${row.prompt} -> ${row.target_new}: P ${row.p_before.toExponential(3)} -> ${row.p_after.toExponential(3)}`,
      );
    console.log(
      `${method.name}: ${requests.length} request(s) in ${seconds.toFixed(1)} s; wrote ${out} (checkpoint + edits.json)`,
    );
  }
  ed.free();
  model.free();
  return 0;
}

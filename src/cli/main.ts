/**
 * The `editeval` command line. Subcommands live in their own files under src/cli/; this file dispatches
 * and turns errors into messages (exit 2 for usage errors, 1 for failures).
 */
import * as torch from "../torch/index.js";
import { UsageError } from "./args.js";
import { generateCommand, logitsCommand, scoreCommand, tokenizeCommand } from "./model-commands.js";
import { convertLlama2cCommand } from "./convert.js";
import { editCommand } from "./edit.js";
import { editEvalCommand } from "./edit-eval.js";

const COMMANDS: Record<string, { summary: string; run: (argv: string[]) => number | Promise<number> }> = {
  logits: { summary: "full logits of a token sequence", run: logitsCommand },
  generate: { summary: "continue a prompt (greedy or sampling)", run: generateCommand },
  score: { summary: "log-likelihood of a continuation given a context", run: scoreCommand },
  tokenize: { summary: "token ids of a text", run: tokenizeCommand },
  edit: {
    summary:
      "edit a checkpoint (ROME, MEMIT, AlphaEdit, FT, GRACE, WISE, SERAC, MEND, ...: editeval edit --help)",
    run: editCommand,
  },
  "edit-eval": {
    summary: "edit over a dataset and score it (EasyEdit and ROME metrics)",
    run: editEvalCommand,
  },
  "convert-llama2c": {
    summary: "convert a llama2.c checkpoint to a Hugging Face directory",
    run: convertLlama2cCommand,
  },
  "train-demo": {
    summary: "train the demo model on the synthetic world (models/demo)",
    run: async (argv) => (await import("./train-demo.js")).trainDemoCommand(argv),
  },
  "train-family": {
    summary: "train the study's model family: 3 sizes x base, instruct, aligned (models/family)",
    run: async (argv) => (await import("./train-family.js")).trainFamilyCommand(argv),
  },
  "train-mend": {
    summary: "train a MEND or MALMEN editor network for a model (resumable)",
    run: async (a) => (await import("./train-mend.js")).trainMendCommand(a),
  },
  "train-serac": {
    summary: "train SERAC's scope classifier and counterfactual model (resumable)",
    run: async (a) => (await import("./train-serac.js")).trainSeracCommand(a),
  },
  eval: { summary: "run lm-eval benchmarks", run: (a) => import("./eval.js").then((m) => m.evalCommand(a)) },
  run: {
    summary: "run an experiment spec: edit N times, measure at each checkpoint (resumable)",
    run: async (a) => (await import("./run.js")).runCommand(a),
  },
  reproduce: {
    summary: "the paper's grid (examples/reproduce.yaml) on one model",
    run: async (a) => (await import("./reproduce.js")).reproduceCommand(a),
  },
  study: {
    summary: "the paper's four findings as claims, tested on EditEval's model family (--quick: short grid)",
    run: async (a) => (await import("./study.js")).studyCommand(a),
  },
  report: {
    summary: "tables, plots and a web page of a run",
    run: async (a) => (await import("./run.js")).reportCommand(a),
  },
  info: { summary: "libtorch version, threads, devices", run: infoCommand },
  demo: {
    summary: "the paper's study in miniature on the demo model (runs/demo/report)",
    run: async (a) => (await import("./demo.js")).demoCommand(a),
  },
};

function help(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    "editeval: edit the knowledge of language models and measure what the editing does to them",
    "",
    "Usage: editeval <command> [options]      (editeval <command> --help for its options)",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`),
  ].join("\n");
}

function infoCommand(argv: string[]): number {
  const v = torch.version();
  const info = {
    torch: v.torch,
    intraOpThreads: torch.getNumThreads(),
    cuda: torch.cudaIsAvailable(),
    openblasThreads: process.env.OPENBLAS_NUM_THREADS ?? "(OpenBLAS default: one per core)",
  };
  if (argv.includes("--json")) console.log(JSON.stringify(info));
  else for (const [k, val] of Object.entries(info)) console.log(`${k}: ${val}`);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") {
    console.log(help());
    return 0;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    console.error(`editeval: unknown command '${cmd}'. Run 'editeval help'.`);
    return 2;
  }
  try {
    return await c.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(e.message);
      return 2;
    }
    console.error(`editeval ${cmd}: ${(e as Error).message}`);
    if (process.env.EDITEVAL_DEBUG) console.error((e as Error).stack);
    return 1;
  }
}

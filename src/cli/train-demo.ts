/**
 * editeval train-demo: train the embedded demo model (a small GPT-2 on the synthetic world) and write
 * its checkpoint directory, or export the world's files alone.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEMO_RECIPE, reevaluateDemo, trainDemo, type DemoRecipe } from "../train/demo.js";
import { buildWorld } from "../world/index.js";
import { writeWorld } from "../world/export.js";
import { intFlag, parse, type CommandSpec } from "./args.js";

export const trainDemoSpec: CommandSpec = {
  name: "train-demo",
  summary: "editeval train-demo: train the demo model on the synthetic world (writes models/demo)",
  usage:
    "editeval train-demo [--out DIR] [--seed N] [--steps N] [--threads N] [--fresh] [--eval-only] [--world-only]",
  options: {
    out: { type: "string" },
    seed: { type: "string" },
    steps: { type: "string" },
    threads: { type: "string" },
    state: { type: "string" },
    fresh: { type: "boolean" },
    "eval-only": { type: "boolean" },
    "world-only": { type: "boolean" },
  },
  help: [
    "--out DIR          checkpoint directory to write (default models/demo)",
    `--seed N           world and training seed (default ${DEMO_RECIPE.seed})`,
    `--steps N          optimisation steps (default ${DEMO_RECIPE.train.steps})`,
    "--threads N        torch threads (default: OMP_NUM_THREADS or 1; 2 on an idle 2-core machine)",
    "--state DIR        resumable training state (default .editeval-cache/train-demo/<recipe hash>);",
    "                   an interrupted run started again with the same options resumes from it",
    "--fresh            start from scratch even if a training state exists",
    "--eval-only        re-evaluate the checkpoint in --out and rewrite its TRAINING.md scores",
    "--world-only       write the world's files (tasks, requests, world.json, corpus.jsonl) to --out, no training",
  ],
};

export function trainDemoCommand(argv: string[]): number {
  const v = parse(trainDemoSpec, argv);
  if (v === null) return 0;
  const out = typeof v.out === "string" ? v.out : "models/demo";
  const log = (l: string) => process.stderr.write(l + "\n");
  const seed = intFlag(v, "seed", "train-demo", DEMO_RECIPE.seed);
  const steps = intFlag(v, "steps", "train-demo", DEMO_RECIPE.train.steps);
  if (v["eval-only"]) {
    const scores = reevaluateDemo(out, log);
    console.log(JSON.stringify(Object.fromEntries(Object.entries(scores).map(([k, s]) => [k, s.accuracy]))));
    return 0;
  }
  if (v["world-only"]) {
    const data = buildWorld({ seed, ...DEMO_RECIPE.world });
    mkdirSync(out, { recursive: true });
    const files = writeWorld(out, data, { corpus: true });
    writeFileSync(join(out, "README.txt"), `World of seed ${seed}; format: docs/DEMO_WORLD.md\n`);
    console.log(files.join("\n"));
    return 0;
  }
  const recipe: DemoRecipe = { ...DEMO_RECIPE, seed, train: { ...DEMO_RECIPE.train, steps } };
  const threads = v.threads === undefined ? undefined : intFlag(v, "threads", "train-demo", 1);
  const res = trainDemo({
    out,
    recipe,
    threads,
    stateDir: typeof v.state === "string" ? v.state : undefined,
    fresh: v.fresh === true,
    command: process.env.EDITEVAL_TRAIN_COMMAND ?? `node bin/editeval.js train-demo ${argv.join(" ")}`.trim(),
    log,
  });
  console.log(
    JSON.stringify(Object.fromEntries(Object.entries(res.scores).map(([k, s]) => [k, s.accuracy]))),
  );
  return 0;
}

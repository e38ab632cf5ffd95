#!/usr/bin/env node
// Reproduces the demo checkpoint: `node scripts/train-demo.mjs` (= editeval train-demo --out models/demo
// with the thread settings that are fastest on 2 cores). Extra arguments go to `editeval train-demo`
// (--steps, --seed, --out, --fresh, --eval-only, ...; see `editeval train-demo --help`).
//
// Threads are set here because libtorch and OpenBLAS read them when the addon loads: one torch
// intra-op thread and OpenBLAS on every core measured fastest for this model on 2 cores (5,300 tokens/s,
// against 4,200 with OpenBLAS's default and 2,400 with two torch threads as well).
import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../bin/editeval.js", import.meta.url));
const args = process.argv.slice(2);
if (!args.includes("--out")) args.push("--out", fileURLToPath(new URL("../models/demo", import.meta.url)));
const env = {
  ...process.env,
  OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? "1",
  OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? String(availableParallelism()),
  EDITEVAL_TRAIN_COMMAND: `node scripts/train-demo.mjs ${process.argv.slice(2).join(" ")}`.trim(),
};
const r = spawnSync(process.execPath, [bin, "train-demo", ...args], { stdio: "inherit", env });
process.exit(r.status ?? 1);

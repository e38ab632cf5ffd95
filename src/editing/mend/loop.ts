/**
 * The training loop shared by the editor networks (MEND, MALMEN): iterations with progress lines and a
 * JSON-lines log, validation on held-out records, checkpoints to a directory and exact resume.
 *
 * A checkpoint is `<out>/checkpoint/`: editor.safetensors (every editor tensor: parameters and running
 * statistics), optimizer.safetensors (each Adam's moment estimates `<opt>.<param>.exp_avg|exp_avg_sq`
 * and the gradients accumulated since the last optimiser step, `grad.<param>`) and state.json (the
 * iteration, each Adam's step counts, the run's fingerprint, the log so far). It is written to a
 * temporary folder and renamed into place, so an interruption leaves the previous checkpoint whole. The
 * data drawn at each iteration is a function of (seed, iteration) (./data.ts), so a resumed run computes
 * exactly the numbers the uninterrupted run computes.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { loadSafetensors, saveSafetensors } from "../../torch/io.js";
import { formatDuration } from "../../util/progress.js";

/** torch.optim.Adam whose moment estimates can be saved and restored. */
export class ResumableAdam extends torch.optim.Adam {
  exportState(
    name: string,
    names: Map<Tensor, string>,
  ): { tensors: [string, Tensor][]; steps: Record<string, number> } {
    const tensors: [string, Tensor][] = [];
    const steps: Record<string, number> = {};
    for (const [p, st] of this.state) {
      const n = names.get(p);
      if (n === undefined) throw new Error("optimizer state of an unnamed parameter");
      tensors.push([`${name}.${n}.exp_avg`, st.expAvg], [`${name}.${n}.exp_avg_sq`, st.expAvgSq]);
      steps[n] = st.step;
    }
    return { tensors, steps };
  }

  importState(
    name: string,
    names: Map<Tensor, string>,
    tensors: Map<string, Tensor>,
    steps: Record<string, number>,
    file: string,
  ): void {
    this.free();
    for (const p of this.params) {
      const n = names.get(p) as string;
      const step = steps[n];
      if (step === undefined) continue;
      const a = tensors.get(`${name}.${n}.exp_avg`);
      const b = tensors.get(`${name}.${n}.exp_avg_sq`);
      if (!a || !b) throw new Error(`${file}: optimizer state '${name}.${n}' is missing`);
      if (a.shape.join(",") !== p.shape.join(","))
        throw new Error(
          `${file}: optimizer state '${name}.${n}' is [${a.shape}], the parameter [${p.shape}]`,
        );
      this.state.set(p, { step, expAvg: a.clone().keep(), expAvgSq: b.clone().keep() });
    }
  }
}

/**
 * torch.nn.utils.clip_grad_norm_(error_if_nonfinite=True): the global L2 norm of the gradients; every
 * gradient scaled by min(1, max / (norm + 1e-6)). Returns the norm before clipping.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  return torch.scope(() =>
    torch.noGrad(() => {
      const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
      if (grads.length === 0) return 0;
      const total = torch.stack(grads.map((g) => g.to("float64").norm(2))).norm(2);
      const value = total.item();
      if (!Number.isFinite(value))
        throw new Error(`the total norm of the editor's gradients is ${value} (clip_grad_norm_ refuses it)`);
      const coef = Math.min(1, maxNorm / (value + 1e-6));
      if (coef < 1) for (const g of grads) g.mul_(coef);
      return value;
    }),
  );
}

/** Adds g * scale to p.grad (creating it). */
export function accumulateGrad(p: Tensor, g: Tensor, scale = 1): void {
  torch.noGrad(() => {
    const cur = p.grad;
    if (cur === null) p.grad = scale === 1 ? g.detach().clone() : g.detach().mul(scale);
    else {
      cur.add_(g.detach(), scale);
      cur.free();
    }
  });
}

/** Whether every tensor is finite. */
export function allFinite(ts: (Tensor | null)[]): boolean {
  return torch.noGrad(() =>
    torch.scope(() => ts.every((t) => t === null || t.isfinite().all().item() === 1)),
  );
}

/** What a method supplies to the loop. */
export interface MetaLearner {
  method: "MEND" | "MALMEN";
  /** every editor tensor (parameters and statistics) by name */
  tensors(): [string, Tensor][];
  /** the trainable tensors by name */
  parameters(): [string, Tensor][];
  optimizers(): { name: string; opt: ResumableAdam }[];
  /** one training iteration (0-based), optimiser steps included when due; returns numbers to average */
  iterate(iteration: number): Record<string, number>;
  /** held-out numbers (keys without the "_val" suffix) */
  validate(): Record<string, number>;
  /** writes the trained editor */
  saveArchive(path: string): void;
  /** file name of the trained editor in the output folder (mend.safetensors, malmen.safetensors) */
  archiveName: string;
}

export interface LoopOptions {
  outDir: string;
  maxIters: number;
  /** continue the checkpoint in outDir (an error without this flag when one exists) */
  resume?: boolean;
  /** stop after this iteration with a checkpoint, as an interrupted run (tests) */
  stopAfter?: number;
  logInterval: number;
  valInterval: number;
  saveEvery: number;
  finalEval: boolean;
  /** must match on resume (method, hyper-parameters, data, model) */
  fingerprint: Record<string, unknown>;
  log?: (line: string) => void;
  silent?: boolean;
}

export interface LoopResult {
  /** iterations done */
  iterations: number;
  /** the trained editor (absent when stopped early) */
  archive: string | null;
  /** the last validation numbers (with "_val" suffixes), or null */
  val: Record<string, number> | null;
  /** averaged training numbers per log window and validations, as written to log.jsonl */
  history: Record<string, number | string>[];
  seconds: number;
}

const CKPT = "checkpoint";

function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : x,
  );
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? n.toExponential(3) : n.toFixed(4);
}

function describe(rec: Record<string, number>): string {
  return Object.entries(rec)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join("  ");
}

/** Reads a checkpoint written by the loop, or null when there is none. */
export function readCheckpoint(outDir: string): {
  editor: Map<string, Tensor>;
  optimizer: Map<string, Tensor>;
  state: Record<string, unknown>;
} | null {
  let dir = join(outDir, CKPT);
  if (!existsSync(join(dir, "state.json")) && existsSync(join(outDir, `${CKPT}.old`, "state.json")))
    dir = join(outDir, `${CKPT}.old`);
  if (!existsSync(join(dir, "state.json"))) return null;
  const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as Record<string, unknown>;
  const editor = loadSafetensors(join(dir, "editor.safetensors"));
  const optimizer = existsSync(join(dir, "optimizer.safetensors"))
    ? loadSafetensors(join(dir, "optimizer.safetensors"))
    : new Map<string, Tensor>();
  return { editor, optimizer, state };
}

/** Runs (or resumes) the training of an editor network. */
export function runMetaTraining(learner: MetaLearner, o: LoopOptions): LoopResult {
  const log = o.log ?? ((l: string) => process.stderr.write(l + "\n"));
  mkdirSync(o.outDir, { recursive: true });
  const names = new Map<Tensor, string>();
  for (const [n, t] of learner.tensors()) names.set(t, n);
  let start = 0;
  let history: Record<string, number | string>[] = [];
  let seconds = 0;
  const ck = readCheckpoint(o.outDir);
  if (ck && !o.resume)
    throw new Error(
      `${o.outDir} holds a checkpoint of an earlier run (iteration ${String(ck.state.iteration)}); pass --resume to continue it, or choose another --out`,
    );
  if (ck) {
    try {
      if (ck.state.method !== learner.method)
        throw new Error(
          `${o.outDir}: the checkpoint is of ${String(ck.state.method)}, not ${learner.method}`,
        );
      const saved = ck.state.fingerprint as Record<string, unknown>;
      const diff = Object.keys({ ...saved, ...o.fingerprint }).filter(
        (k) => stableJson(saved[k]) !== stableJson(o.fingerprint[k]),
      );
      if (diff.length)
        throw new Error(
          `${o.outDir}: the checkpoint was made with different ${diff.join(", ")}; resume with the same settings or choose another --out`,
        );
      torch.noGrad(() => {
        for (const [n, t] of learner.tensors()) {
          const src = ck.editor.get(n);
          if (!src) throw new Error(`${o.outDir}/${CKPT}/editor.safetensors: no tensor '${n}'`);
          t.copy_(src);
        }
        for (const [n, p] of learner.parameters()) {
          p.grad = null;
          const g = ck.optimizer.get(`grad.${n}`);
          if (g) p.grad = g.clone();
        }
      });
      const steps = ck.state.optimizer_steps as Record<string, Record<string, number>>;
      for (const { name, opt } of learner.optimizers())
        opt.importState(
          name,
          names,
          ck.optimizer,
          steps[name] ?? {},
          `${o.outDir}/${CKPT}/optimizer.safetensors`,
        );
      start = ck.state.iteration as number;
      history = (ck.state.history as Record<string, number | string>[]) ?? [];
      seconds = (ck.state.seconds as number) ?? 0;
      log(`${learner.method}: resuming ${o.outDir} at iteration ${start}`);
    } finally {
      for (const t of [...ck.editor.values(), ...ck.optimizer.values()]) t.free();
    }
  }

  const logFile = join(o.outDir, "log.jsonl");
  if (!ck) {
    if (o.resume) log(`${learner.method}: no checkpoint in ${o.outDir}; starting from iteration 0`);
    rmSync(logFile, { force: true });
  }
  const record = (r: Record<string, number | string>) => {
    history.push(r);
    appendFileSync(logFile, JSON.stringify(r) + "\n");
  };
  const checkpoint = (iteration: number, done: boolean) => {
    const tmp = join(o.outDir, `${CKPT}.tmp`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    saveSafetensors(
      join(tmp, "editor.safetensors"),
      learner.tensors().map(([n, t]) => [n, t.detach()]),
    );
    const optTensors: [string, Tensor][] = [];
    const optSteps: Record<string, Record<string, number>> = {};
    for (const { name, opt } of learner.optimizers()) {
      const s = opt.exportState(name, names);
      optTensors.push(...s.tensors);
      optSteps[name] = s.steps;
    }
    const grads: Tensor[] = [];
    for (const [n, p] of learner.parameters()) {
      const g = p.grad;
      if (g) {
        grads.push(g);
        optTensors.push([`grad.${n}`, g]);
      }
    }
    if (optTensors.length) saveSafetensors(join(tmp, "optimizer.safetensors"), optTensors);
    for (const g of grads) g.free();
    writeFileSync(
      join(tmp, "state.json"),
      JSON.stringify(
        {
          format: "editeval-editor-training/1",
          method: learner.method,
          iteration,
          done,
          seconds,
          optimizer_steps: optSteps,
          fingerprint: o.fingerprint,
          history,
        },
        null,
        1,
      ) + "\n",
    );
    const cur = join(o.outDir, CKPT);
    const old = join(o.outDir, `${CKPT}.old`);
    rmSync(old, { recursive: true, force: true });
    if (existsSync(cur)) renameSync(cur, old);
    renameSync(tmp, cur);
    rmSync(old, { recursive: true, force: true });
  };
  const validate = (iteration: number): Record<string, number> => {
    const t0 = performance.now();
    const v = learner.validate();
    const out: Record<string, number> = {};
    for (const [k, x] of Object.entries(v)) out[`${k}_val`] = x;
    record({ kind: "val", iteration, ...out, seconds: (performance.now() - t0) / 1000 });
    if (!o.silent) log(`${learner.method} val @${iteration}: ${describe(out)}`);
    return out;
  };

  let lastVal: Record<string, number> | null = null;
  let window: Record<string, number>[] = [];
  let t0 = performance.now();
  const startIt = start;
  const stopAt = Math.min(o.maxIters, o.stopAfter ?? Infinity);
  for (let it = start; it < stopAt; it++) {
    window.push(learner.iterate(it));
    const done = it + 1;
    const now = performance.now();
    seconds += (now - t0) / 1000;
    t0 = now;
    if (done % o.logInterval === 0 || done === o.maxIters) {
      const avg: Record<string, number> = {};
      for (const k of Object.keys(window[0] ?? {}))
        avg[k] = window.reduce((s, r) => s + (r[k] ?? 0), 0) / window.length;
      record({ kind: "train", iteration: done, ...avg });
      window = [];
      if (!o.silent) {
        const rate = (done - startIt) / Math.max(seconds, 1e-9);
        const eta = (o.maxIters - done) / Math.max(rate, 1e-9);
        log(
          `${learner.method} ${done}/${o.maxIters} (${formatDuration(seconds)}, ETA ${formatDuration(eta)}): ${describe(avg)}`,
        );
      }
    }
    if (done % o.valInterval === 0 && done !== o.maxIters) lastVal = validate(done);
    if (done % o.saveEvery === 0 || (done === stopAt && stopAt < o.maxIters)) checkpoint(done, false);
    t0 = performance.now();
  }
  const iterations = Math.max(start, stopAt);
  if (iterations < o.maxIters) return { iterations, archive: null, val: lastVal, history, seconds };
  if (o.finalEval) lastVal = validate(iterations);
  const archive = join(o.outDir, learner.archiveName);
  learner.saveArchive(archive);
  checkpoint(iterations, true);
  return { iterations, archive, val: lastVal, history, seconds };
}

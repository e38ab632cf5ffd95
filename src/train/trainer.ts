/**
 * Next-token training of a CausalLM: AdamW (decoupled weight decay on matrices only, as nanoGPT),
 * learning rate with linear warmup then cosine or linear decay, global gradient-norm clipping (the total
 * norm computed with tensor ops, as torch.nn.utils.clip_grad_norm_), progress with ETA, and periodic
 * checkpoints of the weights, the optimiser state and the trainer state, from which a run resumes with
 * exactly the numbers an uninterrupted run gives. Each step runs in its own torch.scope, so memory stays
 * flat.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { loadSafetensors, saveSafetensors } from "../torch/io.js";
import type { CausalLM } from "../models/model.js";
import { Progress, formatDuration } from "../util/progress.js";
import { IGNORE_INDEX, type PackedBatches } from "./data.js";

export interface TrainOptions {
  steps: number;
  /** peak learning rate */
  lr: number;
  /** final learning rate (default lr / 10) */
  minLr?: number;
  warmupSteps: number;
  schedule: "cosine" | "linear" | "constant";
  weightDecay: number;
  betas?: [number, number];
  eps?: number;
  /** clip the global gradient norm to this (0: no clipping) */
  clipNorm: number;
  /** folder for resumable checkpoints (null: none) */
  checkpointDir: string | null;
  /** steps between checkpoints (default 200) */
  checkpointEvery?: number;
  /** steps between log lines (default 50) */
  logEvery?: number;
  log?: (line: string) => void;
  /** show a progress line with ETA on stderr (default true) */
  progress?: boolean;
  /** anything that must match on resume (data and model settings); compared as JSON */
  fingerprint?: Record<string, unknown>;
  /** stop after this step even if `steps` is larger (a run interrupted on purpose; tests) */
  stopAfter?: number;
}

export interface TrainState {
  /** steps done */
  step: number;
  /** seconds spent training (over all resumed parts) */
  seconds: number;
  /** mean loss of each logging window: [step, loss] */
  lossCurve: [number, number][];
  /** loss of every step of the current window (not saved) */
  recent: number[];
  tokens: number;
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  lr: number;
}

/** The learning rate of a step (0-based). */
export function learningRate(
  step: number,
  o: Pick<TrainOptions, "lr" | "minLr" | "warmupSteps" | "schedule" | "steps">,
): number {
  const minLr = o.minLr ?? o.lr / 10;
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  if (o.schedule === "constant") return o.lr;
  const span = Math.max(1, o.steps - o.warmupSteps);
  const p = Math.min(1, (step - o.warmupSteps) / span);
  if (o.schedule === "linear") return o.lr - (o.lr - minLr) * p;
  return minLr + 0.5 * (o.lr - minLr) * (1 + Math.cos(Math.PI * p));
}

/**
 * Scales the gradients so that their global L2 norm is at most maxNorm, as torch's clip_grad_norm_:
 * total = ||(||g_1||, ..., ||g_n||)||, every g multiplied by min(1, maxNorm / (total + 1e-6)).
 * Returns the total norm before clipping.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  return torch.scope(() =>
    torch.noGrad(() => {
      const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
      if (grads.length === 0) return 0;
      const total = torch.stack(grads.map((g) => g.norm(2))).norm(2);
      if (maxNorm > 0) {
        const coef = total.add(1e-6).reciprocal().mul(maxNorm).clamp(null, 1);
        for (const g of grads) g.mul_(coef);
      }
      return total.item();
    }),
  );
}

/** AdamW whose moment estimates can be saved and restored (for resuming). */
export class ResumableAdamW extends torch.optim.AdamW {
  /** The state as named tensors (`<name>.exp_avg`, `<name>.exp_avg_sq`) and step counts. */
  exportState(names: Map<Tensor, string>): { tensors: [string, Tensor][]; steps: Record<string, number> } {
    const tensors: [string, Tensor][] = [];
    const steps: Record<string, number> = {};
    for (const [p, st] of this.state) {
      const n = names.get(p);
      if (n === undefined) throw new Error("optimizer state of an unnamed parameter");
      tensors.push([`${n}.exp_avg`, st.expAvg], [`${n}.exp_avg_sq`, st.expAvgSq]);
      steps[n] = st.step;
    }
    return { tensors, steps };
  }

  /** Restores what exportState wrote. */
  importState(
    names: Map<Tensor, string>,
    tensors: Map<string, Tensor>,
    steps: Record<string, number>,
    file: string,
  ): void {
    this.free();
    for (const p of this.params) {
      const n = names.get(p) as string;
      const step = steps[n];
      if (step === undefined) continue; // never stepped
      const a = tensors.get(`${n}.exp_avg`);
      const b = tensors.get(`${n}.exp_avg_sq`);
      if (!a || !b) throw new Error(`${file}: optimizer state of '${n}' is missing`);
      if (a.shape.join(",") !== p.shape.join(","))
        throw new Error(
          `${file}: optimizer state of '${n}' has shape [${a.shape}], the parameter [${p.shape}]`,
        );
      this.state.set(p, { step, expAvg: a.clone().keep(), expAvgSq: b.clone().keep() });
    }
  }
}

/** Cross-entropy of next-token prediction over non-padding labels. */
export function lmLoss(model: CausalLM, inputIds: Tensor, labels: Tensor): Tensor {
  const logits = model.forward({ inputIds }).logits;
  const V = logits.size(-1);
  return torch.F.crossEntropy(logits.reshape(-1, V), labels.reshape(-1), { ignoreIndex: IGNORE_INDEX });
}

export class Trainer {
  readonly params: Tensor[];
  readonly names = new Map<Tensor, string>();
  private readonly decay: ResumableAdamW;
  private readonly noDecay: ResumableAdamW;
  readonly state: TrainState = { step: 0, seconds: 0, lossCurve: [], recent: [], tokens: 0 };

  constructor(
    readonly model: CausalLM,
    readonly data: PackedBatches,
    readonly opts: TrainOptions,
  ) {
    const named = model.uniqueParameters();
    this.params = named.map(([, t]) => t);
    for (const [n, t] of named) {
      if (!t.requiresGrad) t.requiresGrad_(true);
      this.names.set(t, n);
    }
    // weight decay on matrices (embeddings included), none on biases and layer norms (nanoGPT)
    const common = { lr: opts.lr, betas: opts.betas ?? [0.9, 0.95], eps: opts.eps ?? 1e-8 };
    this.decay = new ResumableAdamW(
      named.filter(([, t]) => t.ndim >= 2).map(([, t]) => t),
      { ...common, weightDecay: opts.weightDecay },
    );
    this.noDecay = new ResumableAdamW(
      named.filter(([, t]) => t.ndim < 2).map(([, t]) => t),
      { ...common, weightDecay: 0 },
    );
  }

  /** One optimisation step on the batch of `this.state.step`. */
  step(): StepResult {
    const s = this.state.step;
    const lr = learningRate(s, this.opts);
    const r = torch.scope(() => {
      const { inputIds, labels } = this.data.batch(s);
      const loss = lmLoss(this.model, inputIds, labels);
      const value = loss.item();
      if (!Number.isFinite(value)) throw new Error(`training diverged at step ${s}: loss ${value}`);
      loss.backward();
      const gradNorm = clipGradNorm(this.params, this.opts.clipNorm);
      this.decay.lr = lr;
      this.noDecay.lr = lr;
      this.decay.step();
      this.noDecay.step();
      this.decay.zeroGrad();
      this.noDecay.zeroGrad();
      return { loss: value, gradNorm, lr };
    });
    this.state.step = s + 1;
    this.state.tokens += this.data.opts.batchSize * this.data.opts.seqLen;
    this.state.recent.push(r.loss);
    return r;
  }

  /** The loss of a step's batch without training (for tests and evaluation). */
  evalLoss(step: number): number {
    return torch.scope(() =>
      torch.noGrad(() => {
        const { inputIds, labels } = this.data.batch(step);
        return lmLoss(this.model, inputIds, labels).item();
      }),
    );
  }

  /** Trains until opts.steps (or opts.stopAfter), resuming from the checkpoint folder when it has one. */
  run(): TrainState {
    const o = this.opts;
    const log = o.log ?? ((l: string) => process.stderr.write(l + "\n"));
    if (o.checkpointDir && this.resume(o.checkpointDir))
      log(`resumed from ${o.checkpointDir} at step ${this.state.step}`);
    const end = Math.min(o.steps, o.stopAfter ?? o.steps);
    const every = o.checkpointEvery ?? 200;
    const logEvery = o.logEvery ?? 50;
    const progress = new Progress(
      "train",
      end - this.state.step,
      o.progress ?? process.env.EDITEVAL_QUIET !== "1",
    );
    const t0 = performance.now();
    const secondsBefore = this.state.seconds;
    const startStep = this.state.step;
    while (this.state.step < end) {
      const r = this.step();
      const elapsed = (performance.now() - t0) / 1000;
      this.state.seconds = secondsBefore + elapsed;
      const done = this.state.step;
      if (done % logEvery === 0 || done === end) {
        const mean = this.state.recent.reduce((a, b) => a + b, 0) / this.state.recent.length;
        this.state.lossCurve.push([done, mean]);
        this.state.recent = [];
        const rate = (done - startStep) / Math.max(elapsed, 1e-9);
        const tokPerS = (rate * this.data.opts.batchSize * this.data.opts.seqLen).toFixed(0);
        log(
          `step ${done}/${o.steps} loss ${mean.toFixed(4)} lr ${r.lr.toExponential(2)} |g| ${r.gradNorm.toFixed(3)} ` +
            `${tokPerS} tok/s elapsed ${formatDuration(this.state.seconds)} ETA ${formatDuration((end - done) / rate)}`,
        );
      }
      progress.tick(1, `loss ${r.loss.toFixed(3)}`);
      if (o.checkpointDir && (done % every === 0 || done === end)) this.save(o.checkpointDir);
    }
    return this.state;
  }

  // ---- checkpoints -----------------------------------------------------------------------------
  private stateJson(): Record<string, unknown> {
    const { recent: _recent, ...rest } = this.state;
    return {
      format: "editeval-train-state/1",
      ...rest,
      options: optionsFingerprint(this.opts),
      data: {
        seqLen: this.data.opts.seqLen,
        batchSize: this.data.opts.batchSize,
        seed: this.data.opts.seed,
        documents: this.data.numDocuments,
      },
      fingerprint: this.opts.fingerprint ?? {},
    };
  }

  /** Writes the checkpoint atomically: into a temporary folder, then renamed into place. */
  save(dir: string): void {
    const tmp = `${dir}.tmp`;
    const old = `${dir}.old`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    saveSafetensors(join(tmp, "model.safetensors"), this.model.uniqueParameters());
    const a = this.decay.exportState(this.names);
    const b = this.noDecay.exportState(this.names);
    saveSafetensors(join(tmp, "optimizer.safetensors"), [...a.tensors, ...b.tensors]);
    writeFileSync(
      join(tmp, "state.json"),
      JSON.stringify({ ...this.stateJson(), optimizerSteps: { ...a.steps, ...b.steps } }, null, 1) + "\n",
    );
    rmSync(old, { recursive: true, force: true });
    if (existsSync(dir)) renameSync(dir, old);
    renameSync(tmp, dir);
    rmSync(old, { recursive: true, force: true });
  }

  /** Loads a checkpoint if the folder has one; returns whether it did. Settings must match. */
  resume(dir: string): boolean {
    if (!existsSync(join(dir, "state.json")) && existsSync(join(`${dir}.old`, "state.json")))
      renameSync(`${dir}.old`, dir);
    const file = join(dir, "state.json");
    if (!existsSync(file)) return false;
    const st = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown> & {
      step: number;
      seconds: number;
      tokens: number;
      lossCurve: [number, number][];
      optimizerSteps: Record<string, number>;
    };
    const want = this.stateJson();
    for (const key of ["options", "data", "fingerprint"] as const) {
      const a = JSON.stringify(st[key]);
      const b = JSON.stringify(want[key]);
      if (a !== b)
        throw new Error(
          `${file}: the checkpoint was made with other ${key} (${a}) than this run (${b}); ` +
            "use the same settings, or start afresh (delete the folder or pass --fresh)",
        );
    }
    const weights = loadSafetensors(join(dir, "model.safetensors"));
    const optim = loadSafetensors(join(dir, "optimizer.safetensors"));
    try {
      torch.noGrad(() => {
        for (const [name, p] of this.model.uniqueParameters()) {
          const w = weights.get(name);
          if (!w) throw new Error(`${dir}/model.safetensors: parameter '${name}' is missing`);
          p.copy_(w);
        }
      });
      this.decay.importState(this.names, optim, st.optimizerSteps, join(dir, "optimizer.safetensors"));
      this.noDecay.importState(this.names, optim, st.optimizerSteps, join(dir, "optimizer.safetensors"));
    } finally {
      for (const t of weights.values()) t.free();
      for (const t of optim.values()) t.free();
    }
    this.state.step = st.step;
    this.state.seconds = st.seconds;
    this.state.tokens = st.tokens;
    this.state.lossCurve = st.lossCurve;
    this.state.recent = [];
    return true;
  }

  free(): void {
    this.decay.free();
    this.noDecay.free();
  }
}

/** The options that change the numbers (compared on resume). */
function optionsFingerprint(o: TrainOptions): Record<string, unknown> {
  return {
    steps: o.steps,
    lr: o.lr,
    minLr: o.minLr ?? o.lr / 10,
    warmupSteps: o.warmupSteps,
    schedule: o.schedule,
    weightDecay: o.weightDecay,
    betas: o.betas ?? [0.9, 0.95],
    eps: o.eps ?? 1e-8,
    clipNorm: o.clipNorm,
  };
}

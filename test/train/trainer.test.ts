// The trainer on a tiny GPT-2: the loss falls over a few steps; a run interrupted at a checkpoint and
// resumed gives exactly the losses and weights of an uninterrupted run; gradient clipping against a
// norm computed by hand; the learning-rate schedule; packing; initialisation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import { gpt2ConfigJson, initGpt2 } from "../../src/train/init.js";
import { IGNORE_INDEX, PackedBatches } from "../../src/train/data.js";
import { Trainer, clipGradNorm, learningRate, type TrainOptions } from "../../src/train/trainer.js";
import { assertClose } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "editeval-train-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

// a toy corpus over 40 token ids (0 is EOS): short repeated patterns a tiny model learns quickly
const V = 40;
const docs: number[][] = Array.from({ length: 60 }, (_, i) => {
  const start = 1 + (i % 13);
  return Array.from({ length: 5 + (i % 9) }, (_, j) => 1 + ((start + 3 * j) % (V - 1)));
});
const config = gpt2ConfigJson(
  { vocabSize: V, nLayer: 1, nEmbd: 32, nHead: 2, nPositions: 16 },
  { bos: 0, eos: 0 },
);
const data = () => new PackedBatches(docs, { seqLen: 16, batchSize: 4, seed: 3, eosId: 0 });
const opts = (over: Partial<TrainOptions> = {}): TrainOptions => ({
  steps: 8,
  lr: 1e-2,
  warmupSteps: 2,
  schedule: "cosine",
  weightDecay: 0.1,
  clipNorm: 1,
  checkpointDir: null,
  progress: false,
  log: () => {},
  ...over,
});

function weights(m: ReturnType<typeof initGpt2>): number[] {
  return m.uniqueParameters().flatMap(([, t]) => t.toNumbers());
}

test("initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer), layer norms (1, 0), tied head", () => {
  const cfg = gpt2ConfigJson(
    { vocabSize: 64, nLayer: 2, nEmbd: 64, nHead: 4, nPositions: 32 },
    { bos: 63, eos: 63 },
  );
  const m = initGpt2(cfg, 0);
  const std = (name: string) => {
    const v = m.param(name).toNumbers();
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    return Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  };
  assertClose(std("transformer.wte.weight"), 0.02, 0.1);
  assertClose(std("transformer.h.0.mlp.c_fc.weight"), 0.02, 0.1);
  assertClose(std("transformer.h.1.mlp.c_proj.weight"), 0.02 / Math.sqrt(4), 0.1);
  assertClose(std("transformer.h.0.attn.c_proj.weight"), 0.02 / Math.sqrt(4), 0.1);
  assert.ok(
    m
      .param("transformer.h.0.ln_1.weight")
      .toNumbers()
      .every((x) => x === 1),
  );
  assert.ok(
    m
      .param("transformer.h.0.attn.c_attn.bias")
      .toNumbers()
      .every((x) => x === 0),
  );
  assert.equal(m.param("lm_head.weight"), m.param("transformer.wte.weight"));
  // same seed, same weights
  assert.deepEqual(weights(initGpt2(cfg, 0)), weights(m));
  m.free();
});

test("packing: sequences start at a document, every document once per epoch, padding labelled -100", () => {
  const p = data();
  const seqs = p.epoch(0);
  const starts = new Set(docs.map((d) => d.join(",")));
  let tokens = 0;
  for (const s of seqs) {
    const arr = Array.from(s);
    // the first document of a sequence begins at position 0
    const firstEos = arr.indexOf(0);
    assert.ok(starts.has(arr.slice(0, firstEos).join(",")), "sequence starts with a whole document");
    tokens += arr.filter((x) => x >= 0).length;
  }
  assert.equal(tokens, p.tokensPerEpoch);
  const { inputs, labels } = p.batchArrays(0);
  assert.equal(inputs.length, 4);
  assert.equal(inputs[0]?.length, 16);
  // a padded slot never carries a label
  for (let b = 0; b < 4; b++) {
    const { e, i } = { e: 0, i: b };
    const seq = p.epoch(e)[i] as Int32Array;
    for (let t = 0; t < 16; t++) if ((seq[t + 1] as number) < 0) assert.equal(labels[b]?.[t], IGNORE_INDEX);
  }
  // the batch of a step does not depend on what was read before
  assert.deepEqual(data().batchArrays(40), p.batchArrays(40));
});

test("learning rate: linear warmup, then cosine or linear decay to min_lr", () => {
  const o = { lr: 1, minLr: 0.1, warmupSteps: 10, steps: 110, schedule: "cosine" as const };
  assertClose(learningRate(0, o), 0.1);
  assertClose(learningRate(9, o), 1);
  assertClose(learningRate(10, o), 1);
  assertClose(learningRate(60, o), 0.55);
  assertClose(learningRate(110, o), 0.1);
  assertClose(learningRate(60, { ...o, schedule: "linear" }), 0.55);
  assertClose(learningRate(35, { ...o, schedule: "linear" }), 0.775);
});

test("gradient clipping: total norm as computed by hand, gradients scaled by max_norm / norm", () => {
  const a = torch.tensor([1, 2, 3], { requiresGrad: true });
  const b = torch.tensor(
    [
      [4, 0],
      [0, 12],
    ],
    { requiresGrad: true },
  );
  const c = torch.tensor([5], { requiresGrad: true }); // no gradient: ignored
  a.grad = torch.tensor([3, 0, 4]);
  b.grad = torch.tensor([
    [0, 12],
    [0, 0],
  ]);
  const total = Math.sqrt(9 + 16 + 144); // 13
  const norm = clipGradNorm([a, b, c], 6.5);
  assertClose(norm, total, 1e-6);
  const coef = 6.5 / (total + 1e-6);
  assertClose((a.grad as torch.Tensor).toNumbers(), [3 * coef, 0, 4 * coef], 1e-6);
  assertClose((b.grad as torch.Tensor).toNumbers(), [0, 12 * coef, 0, 0], 1e-6);
  // below the limit: unchanged (multiplied by 1)
  const n2 = clipGradNorm([a, b], 100);
  assertClose(n2, 6.5, 1e-5);
  assertClose((a.grad as torch.Tensor).toNumbers(), [3 * coef, 0, 4 * coef], 1e-6);
});

test("training: the loss falls over a few steps of a tiny model", () => {
  const m = initGpt2(config, 1);
  const tr = new Trainer(m, data(), opts({ steps: 30, lr: 1e-2 }));
  const before = [0, 1, 2].map((s) => tr.evalLoss(s));
  const losses: number[] = [];
  for (let i = 0; i < 30; i++) losses.push(tr.step().loss);
  const after = [0, 1, 2].map((s) => tr.evalLoss(s));
  const mean = (x: number[]) => x.reduce((p, q) => p + q, 0) / x.length;
  assert.ok(mean(after) < 0.7 * mean(before), `loss ${mean(before)} -> ${mean(after)}`);
  assert.ok(mean(losses.slice(-5)) < mean(losses.slice(0, 5)), "training losses fall");
  assert.ok(Math.abs((before[0] as number) - Math.log(V)) < 0.5, "initial loss near ln V");
  tr.free();
  m.free();
});

test("memory stays flat: each step frees what it creates", () => {
  const m = initGpt2(config, 4);
  const tr = new Trainer(m, data(), opts({ steps: 10 }));
  tr.step(); // creates the optimiser state
  const before = torch.memoryStats().liveHandles;
  for (let i = 0; i < 5; i++) tr.step();
  assert.equal(torch.memoryStats().liveHandles, before);
  tr.free();
  m.free();
});

test("resume: a run checkpointed at step 4 and resumed gives the uninterrupted run's losses and weights", () => {
  // uninterrupted
  const m1 = initGpt2(config, 7);
  const t1 = new Trainer(m1, data(), opts());
  const l1: number[] = [];
  for (let i = 0; i < 8; i++) l1.push(t1.step().loss);
  // interrupted: 4 steps with a checkpoint, then a new process (a fresh model with other weights) resumes
  const dir = join(tmp, "ckpt");
  const m2 = initGpt2(config, 7);
  const t2 = new Trainer(m2, data(), opts({ checkpointDir: dir, checkpointEvery: 4, stopAfter: 4 }));
  t2.run();
  assert.equal(t2.state.step, 4);
  assert.ok(existsSync(join(dir, "optimizer.safetensors")) && existsSync(join(dir, "state.json")));
  t2.free();
  m2.free();
  const m3 = initGpt2(config, 99);
  const t3 = new Trainer(m3, data(), opts({ checkpointDir: dir }));
  assert.equal(t3.resume(dir), true);
  assert.equal(t3.state.step, 4);
  const l3: number[] = [];
  for (let i = 4; i < 8; i++) l3.push(t3.step().loss);
  assert.deepEqual(l3, l1.slice(4), "the losses after resuming are those of the uninterrupted run");
  assert.deepEqual(weights(m3), weights(m1), "and so are the final weights");
  // resuming with other settings is refused, naming what differs
  const t4 = new Trainer(initGpt2(config, 1), data(), opts({ lr: 5e-3 }));
  assert.throws(() => t4.resume(dir), /other options .*"lr":0\.01/);
  // a crash while a checkpoint was being replaced leaves the previous one as <dir>.old: it is used
  renameSync(dir, `${dir}.old`);
  const t5 = new Trainer(initGpt2(config, 1), data(), opts({ checkpointDir: dir }));
  assert.equal(t5.resume(dir), true);
  assert.equal(t5.state.step, 4);
  t5.free();
  for (const t of [t1, t3]) t.free();
  m1.free();
  m3.free();
});

test("run(): trains to the end with checkpoints and logs, and a second run() resumes at the end", () => {
  const dir = join(tmp, "run");
  const lines: string[] = [];
  const m = initGpt2(config, 2);
  const t = new Trainer(
    m,
    data(),
    opts({ steps: 6, checkpointDir: dir, checkpointEvery: 3, logEvery: 3, log: (l) => lines.push(l) }),
  );
  const st = t.run();
  assert.equal(st.step, 6);
  assert.equal(st.lossCurve.length, 2);
  assert.ok(
    lines.some((l) => /^step 6\/6 loss \d/.test(l) && /ETA/.test(l)),
    lines.join("\n"),
  );
  const again = new Trainer(
    initGpt2(config, 3),
    data(),
    opts({ steps: 6, checkpointDir: dir, log: (l) => lines.push(l) }),
  );
  assert.equal(again.run().step, 6);
  assert.deepEqual(weights(again.model), weights(m));
  t.free();
  again.free();
});

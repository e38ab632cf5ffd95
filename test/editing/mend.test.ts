// MEND: the identity editor is a gradient step (closed form against autograd's dL/dW), the normalised
// update is sum_t u^_t d^_t^T per token (closed form), the editor's gradient matches finite differences,
// training lowers the held-out edit loss, a resumed run equals an uninterrupted one, and edits are
// journal deltas (undo, replay).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import type { Tensor } from "../../src/torch/index.js";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import type { CausalLM } from "../../src/models/model.js";
import { Editor } from "../../src/editing/editor.js";
import { materialize } from "../../src/editing/journal.js";
import { methodByName } from "../../src/editing/methods.js";
import { readHparamsFile } from "../../src/editing/hparams.js";
import { targetNll, targetTokens } from "../../src/editing/lora/loss.js";
import { mend, parseMendHparamsRaw, type MendHparams } from "../../src/editing/mend/index.js";
import {
  createMendEditor,
  freeMendEditor,
  mendParameters,
  saveMendEditor,
  updateNormStats,
} from "../../src/editing/mend/nets.js";
import { mendDeltas, mendFactors } from "../../src/editing/mend/edit.js";
import { mendObjective, trainMend } from "../../src/editing/mend/train.js";
import { loadMetaData, sampleBatch, type MetaData } from "../../src/editing/mend/data.js";
import { loadSafetensors } from "../../src/torch/io.js";
import { trainMendCommand } from "../../src/cli/train-mend.js";
import { FIXTURES, ROOT } from "../helpers.js";

const gpt2 = join(FIXTURES, "gpt2-tiny");
const tmp = mkdtempSync(join(tmpdir(), "editeval-mend-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

const INNER = [
  "transformer.h.1.mlp.c_fc.weight",
  "transformer.h.1.mlp.c_proj.weight",
  "transformer.h.2.mlp.c_fc.weight",
  "transformer.h.2.mlp.c_proj.weight",
];
const request = { prompt: "{} is located in", subject: "The Eiffel Tower", targetNew: "Rome" };
const request2 = { prompt: "{} was born in", subject: "Marie Curie", targetNew: "Lisbon" };

function hp(extra: Record<string, unknown> = {}): MendHparams {
  return parseMendHparamsRaw(
    {
      inner_params: INNER,
      rank: 8,
      lr: 1e-3,
      lr_lr: 1e-2,
      edit_lr: 1e-3,
      log_interval: 1000,
      val_interval: 1000,
      model_save_pt: 1000,
      val_batch_size: 1,
      val_steps: 8,
      ...extra,
    },
    "test",
  );
}

let zsre: MetaData | null = null;
function data(): MetaData {
  zsre ??= loadMetaData("zsre", { valSize: 8 });
  return zsre;
}

/** dL/dW of the edit loss by autograd on the weight itself (independent of MEND's hooks). */
function weightGrad(
  model: CausalLM,
  tok: ReturnType<typeof loadTokenizer>,
  param: string,
  req = request,
): number[] {
  const w = model.param(param);
  w.requiresGrad_(true);
  try {
    return torch.scope(() => {
      targetNll(model, tok, [targetTokens(tok, req)]).backward();
      const g = w.grad as Tensor;
      w.grad = null;
      return g.toNumbers();
    });
  } finally {
    w.requiresGrad_(false);
  }
}

function maxRelErr(a: number[], b: number[]): number {
  const scale = Math.max(...b.map(Math.abs), 1e-12);
  return Math.max(...a.map((x, i) => Math.abs(x - (b[i] as number)))) / scale;
}

test("MEND hparams: EasyEdit's gpt2-xl files parse as they are; errors name the file and the field", () => {
  assert.equal(methodByName("MEND"), mend);
  for (const f of ["gpt2-xl.yaml", "gpt2-xl.training.yaml"]) {
    const path = join(ROOT, "hparams", "MEND", f);
    const h = parseMendHparamsRaw(readHparamsFile(path), path);
    assert.equal(h.rank, 1920);
    assert.equal(h.edit_lr, 1e-4);
    assert.equal(h.lr, 1e-6);
    assert.equal(h.accumulate_bs, 10);
    assert.equal(h.inner_params.length, 6);
    assert.equal(h.shared, true);
  }
  const model = loadModel(gpt2);
  assert.throws(
    () => mend.parseHparams(readHparamsFile(join(ROOT, "hparams", "MEND", "gpt2-xl.yaml")), "x.yaml", model),
    /x\.yaml: inner_params entry 'transformer\.h\.45\.mlp\.c_proj\.weight'.*layer 45 is out of range/,
  );
  assert.throws(
    () => mend.parseHparams({ inner_params: INNER }, "y.yaml", model),
    /y\.yaml: MEND needs a trained editor/,
  );
  assert.throws(
    () => parseMendHparamsRaw({ init: "ortho" }, "z.yaml"),
    /z\.yaml: MEND init must be one of id, xavier/,
  );
  model.free();
});

test("identity editor without normalisation: the edit is one gradient step, dW = -edit_lr dL/dW, rank one per token", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const h = hp({ norm: false, edit_lr: 0.01, archive: join(tmp, "identity.safetensors") });
  const ed = createMendEditor(model, h);
  saveMendEditor(h.archive as string, ed);
  freeMendEditor(ed);
  const editor = new Editor(model, tok, { log: () => {} });
  const grads = INNER.map((p) => weightGrad(model, tok, p));
  const [rec] = editor.edit(mend, [request], mend.parseHparams({ ...h }, "test", model));
  assert.ok(rec);
  // tokens with a non-zero output gradient: every position up to the one predicting the last target token,
  // except in the last layer, whose MLP output at a position reaches only that position's logits
  const { prompt, target } = targetTokens(tok, request);
  rec.deltas.forEach((d, i) => {
    assert.ok("u" in d, "MEND deltas are factors");
    const tokens = INNER[i]?.includes(".h.2.") ? target.length : prompt.length + target.length - 1;
    if ("u" in d) assert.equal(d.u.size(1), tokens, "one rank-one term per token");
    const got = torch.scope(() => materialize(d, "float32").toNumbers());
    const want = (grads[i] as number[]).map((g) => -0.01 * g);
    const err = maxRelErr(got, want);
    assert.ok(err < 1e-4, `${d.param}: MEND update vs -lr dL/dW: relative error ${err}`);
  });
  editor.free();
  model.free();
});

test("linear layers ([out, in] weights, Llama): the identity editor's edit is -edit_lr dL/dW in the weight's layout", () => {
  const dir = join(FIXTURES, "llama-tiny");
  const model = loadModel(dir);
  // llama-tiny has no tokenizer files: a byte tokenizer over its 512-token vocabulary
  const tok = {
    encode: (t: string) => [...Buffer.from(t)].map((b) => b % 500),
    padTokenId: 0,
    eosTokenId: 0,
    bosTokenId: null,
  } as unknown as ReturnType<typeof loadTokenizer>;
  const inner = ["model.layers.1.mlp.down_proj.weight", "model.layers.1.mlp.up_proj.weight"];
  const h = parseMendHparamsRaw({ inner_params: inner, rank: 4, norm: false, edit_lr: 0.02 }, "test");
  const ed = createMendEditor(model, h);
  const grads = inner.map((p) => weightGrad(model, tok, p));
  const { factors } = mendFactors(model, tok, ed, [targetTokens(tok, request)], false);
  const deltas = mendDeltas(factors);
  deltas.forEach((d, i) => {
    const got = torch.scope(() => materialize(d, "float32"));
    assert.deepEqual(got.shape, model.param(inner[i] as string).shape);
    const err = maxRelErr(
      torch.scope(() => got.toNumbers()),
      (grads[i] as number[]).map((g) => -0.02 * g),
    );
    assert.ok(err < 1e-4, `${inner[i]}: relative error ${err}`);
    if ("u" in d) {
      d.u.free();
      d.v.free();
    }
  });
  freeMendEditor(ed);
  model.free();
});

test("normalised update: dW = lr sum_t (u_t - mean_u)/(std_u + 1e-7) ((d_t - mean_d)/(std_d + 1e-7))^T (closed form)", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const h = hp({ edit_lr: 0.05 });
  const ed = createMendEditor(model, h);
  const gen = new torch.Generator(7);
  // statistics from random rows (enough to make the normalisation non-trivial)
  for (const s of ed.transforms)
    updateNormStats(
      s.stats,
      torch.randn([6, s.xDim], { generator: gen }).mul(0.5),
      torch.randn([6, s.deltaDim], { generator: gen }).mul(0.01),
    );
  // the oracle's own capture: module inputs by hook, output gradients by retain_grad on the outputs
  const modules = INNER.map((p) => p.replace(/\.weight$/, ""));
  const inputs: Tensor[] = [];
  const outputs: Tensor[] = [];
  const tt = targetTokens(tok, request);
  torch.scope(() => {
    model.withHooks(
      modules.flatMap((m, i) => [
        { module: m, where: "input" as const, hook: (x: Tensor) => void (inputs[i] = x.detach().keep()) },
        {
          module: m,
          where: "output" as const,
          hook: (y: Tensor) => {
            const z = y.add(0).retainGrad().keep();
            outputs[i] = z;
            return z;
          },
        },
      ]),
      () => {
        // an output hook sees a tensor without grad history; make the outputs require grad through W
        for (const p of INNER) model.param(p).requiresGrad_(true);
        targetNll(model, tok, [tt]).backward();
        for (const p of INNER) {
          model.param(p).grad = null;
          model.param(p).requiresGrad_(false);
        }
      },
    );
  });
  const { factors } = mendFactors(model, tok, ed, [tt], false);
  const deltas = mendDeltas(factors);
  ed.slots.forEach((slot, i) => {
    torch.scope(() => {
      const s = slot.transform.stats;
      const u = (inputs[i] as Tensor).reshape(-1, slot.weight.fin);
      const dl = ((outputs[i] as Tensor).grad as Tensor).reshape(-1, slot.weight.fout);
      const rows: number[] = [];
      const un = u.abs().amax(-1).toNumbers();
      const dn = dl.abs().amax(-1).toNumbers();
      un.forEach((a, r) => a > 0 && (dn[r] as number) > 0 && rows.push(r));
      const idx = torch.tensor(rows, { dtype: "int64" });
      const uh = u.indexSelect(0, idx).sub(s.u_mean).div(s.u_std.add(1e-7));
      const dh = dl.indexSelect(0, idx).sub(s.v_mean).div(s.v_std.add(1e-7));
      const want = uh.T.matmul(dh).mul(-0.05).toNumbers();
      const got = materialize(deltas[i] as never, "float32").toNumbers();
      const err = maxRelErr(got, want);
      assert.ok(err < 1e-4, `${slot.weight.param}: relative error ${err}`);
      assert.equal(factors[i]?.tokens, rows.length);
    });
  });
  for (const t of [...inputs, ...outputs]) t.free();
  for (const d of deltas)
    if ("u" in d) {
      d.u.free();
      d.v.free();
    }
  freeMendEditor(ed);
  model.free();
});

test("the editor's gradient (through the edit, post-edit loss and locality KL) matches central differences", () => {
  const model = loadModel(gpt2, { dtype: "float64" });
  const tok = loadTokenizer(gpt2);
  const h = hp({ rank: 3, n_hidden: 1, cedit: 0.7, cloc: 1.3, edit_lr: 0.05 });
  const ed = createMendEditor(model, h, { dtype: "float64" });
  const gen = new torch.Generator(11);
  const params = mendParameters(ed).map(([, t]) => t);
  torch.noGrad(() => {
    // move every parameter off the identity (pre-activations away from the clamp's kink)
    for (const p of params) p.add_(torch.randn(p.shape, { generator: gen, dtype: "float64" }).mul(0.05));
  });
  const d = data();
  const samples = sampleBatch(d.train, 0, 2, 1);
  // statistics from one training pass on other records
  torch.scope(() => mendObjective(model, tok, ed, sampleBatch(d.train, 5, 2, 1), h, true));
  const objective = () =>
    torch.scope(() => mendObjective(model, tok, ed, samples, h, false, true).total.item());
  const grads = torch.scope(() => {
    const { total } = mendObjective(model, tok, ed, samples, h, false, true);
    return torch.grad([total], params).map((g) => (g as Tensor).keep());
  });
  // one random direction per tensor (networks' u, v, bias, mode scale/shift, and edit_lrs), perturbed
  // alone: a step small enough that no clamp(0) of the networks changes side between the two
  // evaluations (perturbing every tensor at once moves ~10^4 pre-activations and crosses kinks)
  const names = mendParameters(ed).map(([n]) => n);
  params.forEach((p, k) => {
    const dir = torch.randn(p.shape, { generator: gen, dtype: "float64" }).keep();
    const analytic = torch.scope(() => (grads[k] as Tensor).mul(dir).sum().item());
    const eps = 1e-7;
    const shift = (a: number) => torch.noGrad(() => torch.scope(() => void p.add_(dir.mul(a))));
    shift(eps);
    const up = objective();
    shift(-2 * eps);
    const down = objective();
    shift(eps);
    dir.free();
    const numeric = (up - down) / (2 * eps);
    const err = Math.abs(analytic - numeric) / Math.max(Math.abs(numeric), 1e-2);
    assert.ok(err < 2e-5, `${names[k]}: autograd ${analytic} vs central differences ${numeric} (rel ${err})`);
  });
  for (const g of grads) g.free();
  freeMendEditor(ed);
  model.free();
});

test("training lowers the edit loss on held-out records (vs the untrained editor with the same statistics)", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  // cedit 1 (the reference's 0.1 weights locality tenfold; on a random tiny model the trade-off then
  // favours locality within a few steps); lr 0 keeps the identity editor but gathers the same statistics
  const run = (name: string, extra: Record<string, unknown>) =>
    trainMend(model, tok, hp({ max_iters: 30, accumulate_bs: 2, cedit: 1, lr_lr: 1e-3, ...extra }), {
      outDir: join(tmp, name),
      data: data(),
      log: () => {},
    }).val as Record<string, number>;
  const untrained = run("untrained", { lr: 0, lr_lr: 0 });
  const trained = run("trained", {});
  const before = untrained["loss/edit_val"] as number;
  const after = trained["loss/edit_val"] as number;
  assert.ok(
    after < 0.8 * before,
    `held-out post-edit NLL of the rephrase: trained ${after.toFixed(3)} vs untrained ${before.toFixed(3)}`,
  );
  assert.ok(
    (trained["loss/total_edit_val"] as number) < (untrained["loss/total_edit_val"] as number),
    "the trained objective (cedit l_edit + cloc l_loc) is lower on held-out records",
  );
  // and the edit itself moved the rephrase's loss down from before the edit
  assert.ok(after < (trained["nll/pre_val"] as number));
  model.free();
});

test("resume: stopping at a checkpoint mid-accumulation and resuming gives the uninterrupted run's editor bit for bit", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const h = hp({ max_iters: 7, accumulate_bs: 2, model_save_pt: 2, log_interval: 2 });
  const lines: string[] = [];
  const full = trainMend(model, tok, h, {
    outDir: join(tmp, "full"),
    data: data(),
    log: (l) => lines.push(l),
  });
  assert.ok(
    lines.some((l) => /MEND 4\/7/.test(l)),
    "progress lines",
  );
  const part = trainMend(model, tok, h, {
    outDir: join(tmp, "part"),
    data: data(),
    stopAfter: 3,
    log: () => {},
  });
  assert.equal(part.archive, null);
  assert.ok(existsSync(join(tmp, "part", "checkpoint", "optimizer.safetensors")));
  const state = JSON.parse(readFileSync(join(tmp, "part", "checkpoint", "state.json"), "utf8"));
  assert.equal(state.iteration, 3);
  assert.throws(
    () => trainMend(model, tok, h, { outDir: join(tmp, "part"), data: data(), log: () => {} }),
    /holds a checkpoint.*--resume/,
  );
  assert.throws(
    () =>
      trainMend(
        model,
        tok,
        { ...h, lr: 0.5 },
        { outDir: join(tmp, "part"), data: data(), resume: true, log: () => {} },
      ),
    /different hparams/,
  );
  const resumed = trainMend(model, tok, h, {
    outDir: join(tmp, "part"),
    data: data(),
    resume: true,
    log: () => {},
  });
  const a = loadSafetensors(full.archive as string);
  const b = loadSafetensors(resumed.archive as string);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, t] of a)
    assert.ok(Buffer.from(t.toBytes()).equals(Buffer.from((b.get(k) as Tensor).toBytes())), k);
  const oa = loadSafetensors(join(tmp, "full", "checkpoint", "optimizer.safetensors"));
  const ob = loadSafetensors(join(tmp, "part", "checkpoint", "optimizer.safetensors"));
  for (const [k, t] of oa)
    assert.ok(Buffer.from(t.toBytes()).equals(Buffer.from((ob.get(k) as Tensor).toBytes())), k);
  for (const t of [...a.values(), ...b.values(), ...oa.values(), ...ob.values()]) t.free();
  model.free();
});

test("edits are journal deltas: undo restores the weights bit for bit, save + replay reproduces them; CLI trains and names the archive", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const out = join(tmp, "cli");
  const hfile = join(tmp, "cli.yaml");
  writeFileSync(
    hfile,
    `alg: MEND\ninner_params: [${INNER.join(", ")}]\nrank: 8\nmax_iters: 4\naccumulate_bs: 2\nlog_interval: 2\nval_steps: 4\nval_batch_size: 1\n`,
  );
  const logs: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => (logs.push(String(s)), true)) as typeof process.stderr.write;
  const log = console.log;
  console.log = () => {};
  try {
    assert.equal(
      trainMendCommand([
        "--model",
        gpt2,
        "--data",
        "zsre",
        "--hparams",
        hfile,
        "--out",
        out,
        "--val-size",
        "4",
      ]),
      0,
    );
  } finally {
    process.stderr.write = write;
    console.log = log;
  }
  assert.ok(
    logs.some((l) => /MEND 2\/4/.test(l)),
    logs.join(""),
  );
  const hpath = join(out, "hparams.yaml");
  const h = mend.parseHparams(readHparamsFile(hpath), hpath, model);
  assert.equal(h.archive, join(out, "mend.safetensors"));
  const before = INNER.map((p) => Buffer.from(model.param(p).toBytes()));
  const editor = new Editor(model, tok, { log: () => {} });
  const recs = editor.edit(mend, [request, request2], h, { batchSize: 1 });
  assert.equal(recs.length, 2);
  const after = INNER.map((p) => Buffer.from(model.param(p).toBytes()));
  assert.ok(
    after.some((b, i) => !b.equals(before[i] as Buffer)),
    "the edit changed the weights",
  );
  editor.journal.save(join(tmp, "journal"));
  editor.journal.undoAll();
  INNER.forEach((p, i) => assert.ok(Buffer.from(model.param(p).toBytes()).equals(before[i] as Buffer), p));
  editor.journal.replay(join(tmp, "journal"));
  INNER.forEach((p, i) => assert.ok(Buffer.from(model.param(p).toBytes()).equals(after[i] as Buffer), p));
  editor.free();
  model.free();
});

// MALMEN: the shift is the ridge least-squares solution of the normal equation (against an independent
// least-squares solve), an edit's shift equals that solution of its own keys and value differences
// (closed form with the identity network), the truncated back-propagation gives the gradient of the
// post-edit loss (central differences), training lowers the held-out loss, a resumed run equals an
// uninterrupted one, and edits are journal deltas.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import type { Tensor } from "../../src/torch/index.js";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import { Editor } from "../../src/editing/editor.js";
import { materialize } from "../../src/editing/journal.js";
import { methodByName } from "../../src/editing/methods.js";
import { readHparamsFile } from "../../src/editing/hparams.js";
import { targetNll, targetTokens } from "../../src/editing/lora/loss.js";
import { malmen, parseMalmenHparamsRaw, type MalmenHparams } from "../../src/editing/malmen/index.js";
import {
  createMalmenEditor,
  freeMalmenEditor,
  malmenParameters,
  saveMalmenEditor,
  updateNormalizer,
} from "../../src/editing/malmen/nets.js";
import { shiftDelta, solveShift } from "../../src/editing/malmen/shift.js";
import {
  cacheEdits,
  chunkLosses,
  malmenMetaGradients,
  predictShifts,
  trainMalmen,
} from "../../src/editing/malmen/train.js";
import { promptTarget } from "../../src/editing/mend/factors.js";
import { loadMetaData, sampleBatch, type MetaData } from "../../src/editing/mend/data.js";
import { loadSafetensors } from "../../src/torch/io.js";
import { FIXTURES, ROOT } from "../helpers.js";

const gpt2 = join(FIXTURES, "gpt2-tiny");
const tmp = mkdtempSync(join(tmpdir(), "editeval-malmen-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const EPS = 1.1920928955078125e-7;

const INNER = [
  "transformer.h.1.mlp.c_proj.weight",
  "transformer.h.2.mlp.c_proj.weight",
  "transformer.h.2.mlp.c_fc.weight",
];
const request = { prompt: "{} is located in", subject: "The Eiffel Tower", targetNew: "Rome" };
const request2 = { prompt: "{} was born in", subject: "Marie Curie", targetNew: "Lisbon" };

function hp(extra: Record<string, unknown> = {}): MalmenHparams {
  return parseMalmenHparamsRaw(
    {
      inner_params: INNER,
      rank: 8,
      n_blocks: 2,
      lr: 1e-3,
      meta_lr: 1e-3,
      n_edits: 4,
      batch_size: 2,
      editor_batch_size: 16,
      log_interval: 1000,
      val_interval: 1000,
      model_save_pt: 1000,
      val_steps: 8,
      ...extra,
    },
    "test",
  );
}

let zsre: MetaData | null = null;
function data(): MetaData {
  zsre ??= loadMetaData("zsre", { valSize: 8, warn: () => {} });
  return zsre;
}

function maxRelErr(a: number[], b: number[]): number {
  const scale = Math.max(...b.map(Math.abs), 1e-12);
  return Math.max(...a.map((x, i) => Math.abs(x - (b[i] as number)))) / scale;
}

/** The ridge solution by an independent route: ordinary least squares on [K; sqrt(e^l) I] S = [D; 0]. */
function ridgeByLstsq(K: Tensor, D: Tensor, lamda: number): Tensor {
  const n = K.size(1);
  const A = torch.cat([K, torch.eye(n, n, { dtype: K.dtype }).mul(Math.sqrt(Math.exp(lamda)))], 0);
  const B = torch.cat([D, torch.zeros([n, D.size(1)], { dtype: D.dtype })], 0);
  return torch.linalg.lstsq(A, B);
}

test("MALMEN hparams: EasyEdit's gpt2-xl files parse as they are", () => {
  assert.equal(methodByName("malmen"), malmen);
  for (const f of ["gpt2-xl.yaml", "gpt2-xl.training.yaml"]) {
    const path = join(ROOT, "hparams", "MALMEN", f);
    const h = parseMalmenHparamsRaw(readHparamsFile(path), path);
    assert.equal(h.rank, 1920);
    assert.equal(h.n_blocks, 2);
    assert.equal(h.meta_lr, 1e-5);
    assert.equal(h.editor_batch_size, 1024);
    assert.equal(h.token, "mask");
    assert.equal(h.inner_params.length, 6);
  }
  const model = loadModel(gpt2);
  assert.throws(
    () => malmen.parseHparams({ inner_params: INNER }, "m.yaml", model),
    /m\.yaml: MALMEN needs a trained/,
  );
  assert.throws(
    () => parseMalmenHparamsRaw({ token: "all" }, "t.yaml"),
    /t\.yaml: MALMEN token must be mask or ans/,
  );
  model.free();
});

test("least-squares aggregation: S = (K^T K + e^lamda I)^-1 K^T D equals the ridge solution by lstsq, for few and many edits", () => {
  const gen = new torch.Generator(3);
  for (const [n, fin, fout] of [
    [4, 6, 5],
    [40, 6, 5],
  ] as const) {
    torch.scope(() => {
      const K = torch.randn([n, fin], { generator: gen, dtype: "float64" });
      const D = torch.randn([n, fout], { generator: gen, dtype: "float64" });
      const lamda = -0.7;
      const S = solveShift(K, D, lamda);
      const want = ridgeByLstsq(K, D, lamda);
      assert.ok(maxRelErr(S.toNumbers(), want.toNumbers()) < 1e-10, `n=${n}: normal equation vs lstsq`);
      // the defining property: the gradient of ||K S - D||^2 + e^lamda ||S||^2 vanishes
      const g = K.T.matmul(K.matmul(S).sub(D)).add(S.mul(Math.exp(lamda)));
      assert.ok(g.abs().max().item() < 1e-10);
      // the journal delta: factors (M, D^T) for few edits, dense for many, both equal to S
      const slot = {
        weight: { module: "m", param: "m.weight", fin, fout, conv1d: true },
        net: null as never,
        index: 0,
      };
      const d = shiftDelta(slot, K, D, lamda);
      assert.equal("u" in d, n < Math.min(fin, fout));
      assert.ok(maxRelErr(materialize(d, "float64").toNumbers(), want.toNumbers()) < 1e-10);
      const dl = shiftDelta({ ...slot, weight: { ...slot.weight, conv1d: false } }, K, D, lamda);
      assert.ok(maxRelErr(materialize(dl, "float64").toNumbers(), want.T.contiguous().toNumbers()) < 1e-10);
      for (const x of [d, dl]) {
        if ("u" in x) {
          x.u.free();
          x.v.free();
        } else x.dense.free();
      }
    });
  }
});

test("an edit's shift is the normal-equation solution of its keys and value differences (identity network, closed form)", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const h = hp({ archive: join(tmp, "identity.safetensors"), lr: 0.01 });
  const ed = createMalmenEditor(model, h);
  const gen = new torch.Generator(5);
  for (const net of ed.nets)
    updateNormalizer(net, torch.randn([9, net.keySize + net.valueSize], { generator: gen }).mul(0.3));
  torch.noGrad(() => ed.nets.forEach((n) => n.lamda.fill_(-0.5)));
  saveMalmenEditor(h.archive as string, ed);
  // the oracle's capture: inputs by hook, output gradients by retain_grad, every token (token: mask)
  const modules = INNER.map((p) => p.replace(/\.weight$/, ""));
  const inputs: Tensor[] = [];
  const outputs: Tensor[] = [];
  torch.scope(() => {
    for (const p of INNER) model.param(p).requiresGrad_(true);
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
      () => targetNll(model, tok, [targetTokens(tok, request)]).backward(),
    );
    for (const p of INNER) {
      model.param(p).grad = null;
      model.param(p).requiresGrad_(false);
    }
  });
  const editor = new Editor(model, tok, { log: () => {} });
  const [rec] = editor.edit(malmen, [request], malmen.parseHparams({ ...h }, "test", model));
  ed.slots.forEach((s, i) =>
    torch.scope(() => {
      const K = (inputs[i] as Tensor).reshape(-1, s.weight.fin);
      const V = ((outputs[i] as Tensor).grad as Tensor).reshape(-1, s.weight.fout);
      const z = torch.cat([K, V], -1).sub(s.net.normalizer.mean).div(s.net.normalizer.std.add(EPS));
      const kt = z.narrow(1, 0, s.weight.fin);
      const vt = z.narrow(1, s.weight.fin, s.weight.fout);
      const D = vt.mul(K.mul(kt).sum(1, true).mul(-0.01));
      const want = ridgeByLstsq(K.double(), D.double(), -0.5);
      const got = materialize(rec?.deltas[i] as never, "float64");
      const err = maxRelErr(got.toNumbers(), want.toNumbers());
      assert.ok(err < 1e-3, `${s.weight.param}: relative error ${err}`);
    }),
  );
  for (const t of [...inputs, ...outputs]) t.free();
  editor.free();
  freeMalmenEditor(ed);
  model.free();
});

test("truncated back-propagation through the solve gives the gradient of the post-edit loss (central differences)", () => {
  const model = loadModel(gpt2, { dtype: "float64" });
  const tok = loadTokenizer(gpt2);
  const h = hp({ lr: 0.02, loc_coef: 0.8, batch_size: 1, n_edits: 2, editor_batch_size: 7 });
  const ed = createMalmenEditor(model, h, { dtype: "float64" });
  const gen = new torch.Generator(13);
  const named = malmenParameters(ed);
  const params = named.map(([, t]) => t);
  torch.noGrad(() => {
    for (const p of params) p.add_(torch.randn(p.shape, { generator: gen, dtype: "float64" }).mul(0.05));
    // every block's pre-activation well above 0: no clamp changes side between two evaluations (the
    // network's own derivatives are autograd's; what is checked here is the back-propagation through
    // the solve, lamda's -e^lamda <M, S> and the chunked value differences)
    for (const net of ed.nets)
      for (const b of net.blocks) {
        b.B.mul_(0.1);
        b.bias.add_(2);
      }
  });
  const d = data();
  const samples = sampleBatch(d.train, 0, 2, 1);
  // statistics from one training cache of other edits
  torch.scope(() =>
    cacheEdits(
      model,
      tok,
      ed,
      sampleBatch(d.train, 3, 2, 1).map((s) => promptTarget(tok, s.record.prompt, s.record.target)),
      h,
      true,
    ),
  );
  const objective = () =>
    torch.scope(() => {
      const items = samples.map((s) => promptTarget(tok, s.record.prompt, s.record.target));
      const { keys, valuesGrad } = cacheEdits(model, tok, ed, items, h, false);
      const shifts = predictShifts(ed, keys, valuesGrad, h.editor_batch_size);
      let total = 0;
      for (const s of samples) {
        const r = chunkLosses(model, tok, ed, [s], shifts, h.loc_coef, false);
        total += r.gen + h.loc_coef * r.loc;
      }
      return total;
    });
  for (const p of params) p.grad = null;
  malmenMetaGradients(model, tok, ed, samples, h, false);
  const grads = params.map((p) => p.grad);
  named.forEach(([name, p], k) => {
    const g = grads[k];
    const dir = torch.randn(p.shape, { generator: gen, dtype: "float64" }).keep();
    const analytic = g ? torch.scope(() => g.mul(dir).sum().item()) : 0;
    const eps = 1e-6;
    const shift = (a: number) => torch.noGrad(() => torch.scope(() => void p.add_(dir.mul(a))));
    shift(eps);
    const up = objective();
    shift(-2 * eps);
    const down = objective();
    shift(eps);
    dir.free();
    const numeric = (up - down) / (2 * eps);
    const err = Math.abs(analytic - numeric) / Math.max(Math.abs(numeric), 0.1);
    assert.ok(
      err < 2e-5,
      `${name}: truncated backprop ${analytic} vs central differences ${numeric} (rel ${err})`,
    );
  });
  for (const g of grads) g?.free();
  freeMalmenEditor(ed);
  model.free();
});

test("training lowers the held-out post-edit loss, and a resumed run equals the uninterrupted one bit for bit", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const run = (
    name: string,
    extra: Record<string, unknown>,
    more: { stopAfter?: number; resume?: boolean } = {},
  ) =>
    trainMalmen(model, tok, hp({ max_iters: 12, model_save_pt: 5, ...extra }), {
      outDir: join(tmp, name),
      data: data(),
      log: () => {},
      ...more,
    });
  const untrained = run("untrained", { meta_lr: 0 }).val as Record<string, number>;
  const full = run("full", {});
  const trained = full.val as Record<string, number>;
  assert.ok(
    (trained.gen_loss_val as number) < 0.9 * (untrained.gen_loss_val as number),
    `held-out rephrase loss after the edits: trained ${trained.gen_loss_val} vs untrained ${untrained.gen_loss_val}`,
  );
  assert.equal(run("part", {}, { stopAfter: 7 }).archive, null);
  const resumed = run("part", {}, { resume: true });
  const a = loadSafetensors(full.archive as string);
  const b = loadSafetensors(resumed.archive as string);
  for (const [k, t] of a)
    assert.ok(Buffer.from(t.toBytes()).equals(Buffer.from((b.get(k) as Tensor).toBytes())), k);
  for (const t of [...a.values(), ...b.values()]) t.free();
  model.free();
});

test("MALMEN edits are journal deltas: a batch is one solve, undo restores the weights bit for bit", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const h = hp({ archive: join(tmp, "fresh.safetensors") });
  const ed = createMalmenEditor(model, h);
  for (const net of ed.nets)
    updateNormalizer(
      net,
      torch.randn([5, net.keySize + net.valueSize], { generator: new torch.Generator(1) }),
    );
  saveMalmenEditor(h.archive as string, ed);
  freeMalmenEditor(ed);
  const before = INNER.map((p) => Buffer.from(model.param(p).toBytes()));
  const editor = new Editor(model, tok, { log: () => {} });
  const recs = editor.edit(malmen, [request, request2], malmen.parseHparams({ ...h }, "test", model));
  assert.equal(recs.length, 1, "one batch, one solve");
  assert.ok(INNER.some((p, i) => !Buffer.from(model.param(p).toBytes()).equals(before[i] as Buffer)));
  // rank of the factors = the keys in the solve: every token of both edits (mask) ...
  const lens = [request, request2].map((r) => {
    const t = targetTokens(tok, r);
    return t.prompt.length + t.target.length;
  });
  const d0 = recs[0]?.deltas[0];
  assert.ok(d0 && "u" in d0 && d0.u.size(1) === (lens[0] as number) + (lens[1] as number));
  editor.journal.undoAll();
  INNER.forEach((p, i) => assert.ok(Buffer.from(model.param(p).toBytes()).equals(before[i] as Buffer), p));
  // ... or only the positions that predict a target token (ans)
  const [ans] = editor.edit(malmen, [request], malmen.parseHparams({ ...h, token: "ans" }, "test", model));
  const d1 = ans?.deltas[0];
  assert.ok(d1 && "u" in d1 && d1.u.size(1) === targetTokens(tok, request).target.length);
  editor.journal.undoAll();
  editor.free();
  model.free();
});

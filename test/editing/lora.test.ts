// LoRA: the merged delta is alpha/r * B A in the weight's layout (rank <= r), the merged weights compute
// what the adapter hooks computed, and training lowers the edit loss.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import { Editor } from "../../src/editing/editor.js";
import { TemporaryEdits, materialize } from "../../src/editing/journal.js";
import { methodByName } from "../../src/editing/methods.js";
import {
  lora,
  loraModules,
  initAdapter,
  adapterDelta,
  adapterParamDelta,
  adapterHooks,
} from "../../src/editing/lora/index.js";
import { targetNll, targetTokens } from "../../src/editing/lora/loss.js";
import { FIXTURES } from "../helpers.js";

const gpt2 = join(FIXTURES, "gpt2-tiny");
const request = {
  prompt: "{} is located in",
  subject: "The Eiffel Tower",
  targetNew: "Rome",
  targetTrue: "Paris",
};

test("LoRA hparams: EasyEdit's gpt2-xl file, target modules by suffix and layer", () => {
  const model = loadModel(gpt2);
  assert.equal(methodByName("LoRA"), lora);
  const h = lora.parseHparams(
    { alg_name: "LoRA", norm_constraint: false, model_parallel: true, max_length: 30 },
    "t",
    model,
  );
  assert.equal(h.lora_type, "adalora");
  assert.deepEqual(h.target_modules, ["c_attn"]);
  assert.deepEqual(loraModules(model, h), [
    "transformer.h.0.attn.c_attn",
    "transformer.h.1.attn.c_attn",
    "transformer.h.2.attn.c_attn",
  ]);
  assert.deepEqual(loraModules(model, { target_modules: ["c_fc", "mlp.c_proj"], layers: [1] }), [
    "transformer.h.1.mlp.c_fc",
    "transformer.h.1.mlp.c_proj",
  ]);
  assert.throws(
    () => lora.parseHparams({ target_modules: ["q_proj"] }, "l.yaml", model),
    /l\.yaml: no module matches target_modules \["q_proj"\]/,
  );
  model.free();
});

for (const type of ["lora", "adalora"] as const) {
  test(`${type}: merged delta = scaling * B A_eff in the Conv1D layout, rank <= r, equal to the hooked adapter`, () => {
    const model = loadModel(gpt2);
    const tok = loadTokenizer(gpt2);
    const h = lora.parseHparams(
      {
        lora_type: type,
        rank: 3,
        init_r: 4,
        lora_alpha: 8,
        lora_dropout: 0,
        target_modules: ["c_fc"],
        layers: [1],
      },
      "t",
      model,
    );
    const module = "transformer.h.1.mlp.c_fc";
    const gen = new torch.Generator(1);
    torch.scope(() => {
      const a = initAdapter(model, module, h, gen);
      // give B (and E) values so the delta is not zero
      a.B = torch.randn(a.B.shape, { generator: gen });
      if (a.E) a.E = torch.randn(a.E.shape, { generator: gen });
      const r = type === "lora" ? 3 : 4;
      assert.deepEqual(a.A.shape, [r, 64]);
      assert.deepEqual(a.B.shape, [256, r]);
      const scaling = type === "lora" ? 8 / 3 : 8 / (4 + 1e-5);
      assert.ok(Math.abs(a.scaling - scaling) < 1e-12);
      const Aeff = a.E ? a.A.mul(a.E) : a.A;
      const expect = a.B.matmul(Aeff).mul(scaling).T; // [in, out] (Conv1D)
      const d = adapterParamDelta(model, a);
      assert.equal(d.u.size(1), r);
      const D = materialize(d, "float32");
      assert.ok(D.sub(expect).abs().max().item() < 1e-5);
      assert.ok(adapterDelta(a).T.sub(expect).abs().max().item() < 1e-5);
      const sv = torch.linalg.svd(D.to("float64")).S;
      assert.ok(
        sv
          .narrow(0, r, sv.size(0) - r)
          .max()
          .item() <
          1e-5 * sv.max().item(),
        "rank <= r",
      );
      // the merged weights compute what the hooks computed
      const tt = [targetTokens(tok, request)];
      const hooked = model.withHooks(adapterHooks(a, 0, gen), () =>
        torch.noGrad(() => targetNll(model, tok, tt).item()),
      );
      const tmp = new TemporaryEdits(model);
      tmp.add(d);
      const merged = torch.noGrad(() => targetNll(model, tok, tt).item());
      tmp.restore();
      assert.ok(Math.abs(hooked - merged) < 1e-4, `hooked ${hooked} vs merged ${merged}`);
    });
    model.free();
  });
}

test("LoRA edit: the loss falls, the deltas are rank-r factors, the merged model has the lower loss", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const h = lora.parseHparams(
    {
      lora_type: "lora",
      rank: 4,
      lora_alpha: 8,
      lora_dropout: 0,
      lr: 1e-2,
      num_steps: 15,
      target_modules: ["c_attn", "c_fc"],
      layers: [1, 2],
    },
    "t",
    model,
  );
  const tt = [targetTokens(tok, request)];
  const before = torch.noGrad(() => torch.scope(() => targetNll(model, tok, tt).item()));
  const snapshot = new Map(
    model.uniqueParameters().map(([k, t]) => [k, Buffer.from(t.toBytes()).toString("base64")]),
  );
  const ed = new Editor(model, tok, { log: () => undefined });
  const [rec] = ed.edit(lora, [request], h);
  const losses = (rec!.info as { losses: number[] }).losses;
  assert.equal(losses.length, 15);
  assert.ok(losses[14]! < losses[0]! * 0.5, `losses ${losses[0]} -> ${losses[14]}`);
  assert.equal(rec!.deltas.length, 4);
  for (const d of rec!.deltas) {
    assert.ok("u" in d && d.u.size(1) === 4 && d.v.size(1) === 4);
  }
  const after = torch.noGrad(() => torch.scope(() => targetNll(model, tok, tt).item()));
  assert.ok(after < before * 0.5, `merged model: ${before} -> ${after}`);
  ed.journal.undoAll();
  for (const [k, t] of model.uniqueParameters())
    assert.equal(Buffer.from(t.toBytes()).toString("base64"), snapshot.get(k));
  assert.equal(model.hooks.size, 0);
  ed.free();
  model.free();
});

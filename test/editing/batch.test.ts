// MEMIT, AlphaEdit, EMMET and FT against their defining equations on a small model.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import type { Tensor } from "../../src/torch/index.js";
import { saveSafetensors } from "../../src/torch/io.js";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import { Editor } from "../../src/editing/editor.js";
import { materialize } from "../../src/editing/journal.js";
import { methodByName } from "../../src/editing/methods.js";
import { computeZs, templateGroups } from "../../src/editing/memit/index.js";
import { lookupIndex, reprsAtPositions } from "../../src/editing/repr.js";
import { normalizeRequest } from "../../src/editing/request.js";
import { loglikelihood } from "../../src/models/scoring.js";
import { FIXTURES } from "../helpers.js";

const gpt2 = join(FIXTURES, "gpt2-tiny");
const tmp = mkdtempSync(join(tmpdir(), "editeval-batch-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const req = normalizeRequest({ prompt: "{} is located in", subject: "The Eiffel Tower", targetNew: "Rome" });
const req2 = normalizeRequest({ prompt: "{} plays the", subject: "Lionel Messi", targetNew: "violin" });

/** A well-conditioned synthetic second moment C = A A^T / d + I (d = 256, the c_proj input size). */
function statsFile(): string {
  const f = join(tmp, "C.safetensors");
  torch.scope(() => {
    const a = torch.randn([256, 256], { generator: new torch.Generator(3) });
    saveSafetensors(f, [["mom2", a.matmul(a.T).div(256).add(torch.eye(256))]]);
  });
  return f;
}

const common = {
  layers: [1],
  context_templates: ["{}"],
  v_num_grad_steps: 8,
  v_weight_decay: 0,
  clamp_norm_factor: 1e6,
};

test("MEMIT with one request and one layer is ROME's update scaled by a / (lambda + a), a = k^T C^-1 k", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const C = statsFile();
  const ed = new Editor(model, tok, { statsFile: C, log: () => undefined });
  const ctx = ed.context();
  const rome = methodByName("rome");
  const memit = methodByName("memit");
  const lambda = 3;
  const r = rome.compute(ctx, [req], rome.parseHparams({ ...common }, "t", model));
  const m = memit.compute(
    ctx,
    [req],
    memit.parseHparams({ ...common, mom2_update_weight: lambda }, "t", model),
  );
  torch.scope(() => {
    const R = materialize(r.deltas[0] as never, "float64");
    const M = materialize(m.deltas[0] as never, "float64");
    const c = M.mul(R).sum().item() / R.mul(R).sum().item();
    const resid = M.sub(R.mul(c)).norm().item() / M.norm().item();
    assert.ok(resid < 1e-3, `MEMIT delta is not a multiple of ROME's (relative residual ${resid})`);
    // expected scale from the key and C
    const idx = lookupIndex(tok, req.prompt, req.subject, "subject_last");
    const { input } = reprsAtPositions(
      model,
      tok,
      "transformer.h.1.mlp.c_proj",
      ["The Eiffel Tower is located in"],
      [idx],
    );
    const k = input.select(0, 0).double();
    const Cm = ctx.stats("transformer.h.1.mlp.c_proj", { nSamples: 100000, dtype: "float32" }).mom2.double();
    const a = k.dot(torch.linalg.solve(Cm, k.unsqueeze(1)).squeeze(1)).item();
    assert.ok(
      Math.abs(c - a / (lambda + a)) < 1e-3 * (a / (lambda + a)),
      `scale ${c} vs expected ${a / (lambda + a)}`,
    );
  });
  ed.free();
  model.free();
});

test("EMMET (single edit, no lambda): the edited layer maps the key exactly to its target z", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const ed = new Editor(model, tok, { statsFile: statsFile(), log: () => undefined });
  const emmet = methodByName("emmet");
  const h = emmet.parseHparams({ ...common, mom2_update_weight: 5 }, "t", model);
  const ctx = ed.context();
  const { zs } = computeZs(ctx, [req], h, templateGroups(ctx, h), "EMMET");
  const z = zs.select(1, 0).toNumbers();
  zs.free();
  ed.edit(emmet, [req], h);
  const idx = lookupIndex(tok, req.prompt, req.subject, "subject_last");
  torch.scope(() => {
    const { output } = reprsAtPositions(
      model,
      tok,
      "transformer.h.1",
      ["The Eiffel Tower is located in"],
      [idx],
    );
    const got = output.select(0, 0).toNumbers();
    const err = Math.max(...got.map((g, i) => Math.abs(g - (z[i] as number))));
    assert.ok(err < 1e-3, `block output differs from z by ${err}`);
  });
  ed.free();
  model.free();
});

test("AlphaEdit leaves the outputs of the preserved keys unchanged (to 1e-4)", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const module = "transformer.h.1.mlp.c_proj";
  const texts = ["Paris is a city in France.", "The river runs to the sea.", "A cat sat on the mat."];
  // preserved keys: every token's input of c_proj on these texts; C spans exactly them (rank < 256)
  const keysOf = (): Tensor =>
    torch.scope(() => {
      const rows: Tensor[] = [];
      for (const t of texts) {
        const ids = tok.encode(t);
        let x: Tensor | null = null;
        model.withHooks([{ module, where: "input", hook: (v) => void (x = v.select(0, 0).keep()) }], () =>
          model.forward({ inputIds: torch.tensor([ids], { dtype: "int64" }) }),
        );
        rows.push((x as unknown as Tensor).attach());
      }
      return torch.cat(rows);
    });
  const outputsOf = (K: Tensor): Tensor =>
    torch.scope(() => torch.addmm(model.param(`${module}.bias`), K, model.param(`${module}.weight`)));
  const K0 = keysOf();
  const f = join(tmp, "preserved.safetensors");
  torch.scope(() => saveSafetensors(f, [["mom2", K0.T.matmul(K0).div(K0.size(0))]]));
  const before = outputsOf(K0);
  const ed = new Editor(model, tok, { statsFile: f, log: () => undefined });
  const alpha = methodByName("alphaedit");
  ed.edit(alpha, [req, req2], alpha.parseHparams({ ...common, L2: 10 }, "t", model));
  const after = outputsOf(K0);
  const change = torch.scope(() => after.sub(before).abs().max().item());
  assert.ok(change < 1e-4, `preserved outputs moved by ${change}`);
  // while the edit itself did change the weight
  const moved = torch.scope(() =>
    materialize(ed.journal.records[0]?.deltas[0] as never, "float32")
      .abs()
      .max()
      .item(),
  );
  assert.ok(moved > 1e-3);
  for (const t of [K0, before, after]) t.free();
  ed.free();
  model.free();
});

test("FT-L keeps every weight within norm_constraint of the original; FT-M raises the target's log-likelihood", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const ed = new Editor(model, tok, { log: () => undefined });
  const ftl = methodByName("ft-l");
  const eps = 1e-3;
  const [rec] = ed.edit(
    ftl,
    [req],
    ftl.parseHparams({ layers: [1], num_steps: 5, lr: 1e-2, norm_constraint: eps }, "t", model),
  );
  const maxDelta = torch.scope(() =>
    Math.max(...(rec?.deltas ?? []).map((d) => materialize(d, "float32").abs().max().item())),
  );
  assert.ok(maxDelta <= eps * (1 + 1e-5) && maxDelta > eps / 2, `max |w - w0| = ${maxDelta}`);
  ed.journal.undoAll();
  const score = () =>
    loglikelihood(model, tok, [{ context: "The Eiffel Tower is located in", continuation: " Rome" }])[0]
      ?.logprob as number;
  const base = score();
  const ftm = methodByName("ft-m");
  ed.edit(ftm, [req], ftm.parseHparams({ layers: [1, 2], num_steps: 10, lr: 1e-2 }, "t", model));
  assert.ok(score() > base + 1, `log P(target) ${base} -> ${score()}`);
  ed.free();
  model.free();
});

test("PMET (one layer, vanishing lambda): the MLP projection maps the key to its optimised target", async () => {
  const { optimiseDeltas } = await import("../../src/editing/rome/compute_v.js");
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const ed = new Editor(model, tok, { statsFile: statsFile(), log: () => undefined });
  const pmet = methodByName("pmet");
  const h = pmet.parseHparams({ ...common, mom2_update_weight: 1e-6, v_num_grad_steps: 6 }, "t", model);
  const ctx = ed.context();
  const [zm] = optimiseDeltas(
    ctx,
    req,
    ["transformer.h.1.mlp.c_proj", "transformer.h.1.attn.c_proj"],
    h,
    ["{}"],
    {
      method: "PMET",
      pmet: { nllLossFactor: 1 },
    },
  );
  const z = zm?.target.toNumbers() ?? [];
  ed.edit(pmet, [req], h);
  const idx = lookupIndex(tok, req.prompt, req.subject, "subject_last");
  torch.scope(() => {
    const { output } = reprsAtPositions(
      model,
      tok,
      "transformer.h.1.mlp.c_proj",
      ["The Eiffel Tower is located in"],
      [idx],
    );
    const got = output.select(0, 0).toNumbers();
    const err = Math.max(...got.map((g, i) => Math.abs(g - (z[i] as number))));
    assert.ok(err < 1e-3, `MLP output differs from z_mlp by ${err}`);
  });
  ed.free();
  model.free();
});

test("a target at the last layer is out of reach: its NLL ignores the delta, so MEMIT and ROME refuse such layers", () => {
  const model = loadModel(gpt2); // 3 layers: 0..2
  const tok = loadTokenizer(gpt2);
  const ed = new Editor(model, tok, { statsFile: statsFile(), log: () => undefined });
  const ctx = ed.context();
  const memit = methodByName("memit");
  // the reason, by hand: with kl_factor = v_weight_decay = 0 the loss is the NLL alone; the delta sits at
  // the subject's token of the last block's output, which only that token's own logits read (causal
  // attention, no block after it), so the NLL of the target at the prompt's end is the same at every step
  // while Adam moves the delta
  const h = memit.parseHparams(
    { ...common, kl_factor: 0, v_weight_decay: 0, v_lr: 1, v_num_grad_steps: 6 },
    "t",
    model,
  ) as { layers: number[] };
  h.layers = [2];
  const { zs, losses } = computeZs(ctx, [req], h as never, templateGroups(ctx, h as never), "MEMIT");
  const l = losses[0] as number[];
  assert.equal(l.length, 6);
  for (const x of l) assert.ok(Math.abs(x - (l[0] as number)) < 1e-5, `NLL moved: ${l.join(", ")}`);
  zs.free();
  // one layer earlier the same optimisation does move the NLL
  h.layers = [1];
  const earlier = computeZs(ctx, [req], h as never, templateGroups(ctx, h as never), "MEMIT");
  const e = earlier.losses[0] as number[];
  assert.ok((e.at(-1) as number) < (e[0] as number) - 0.1, `NLL at layer 1: ${e.join(", ")}`);
  earlier.zs.free();
  // so the configuration is refused (the references run it silently and edit nothing useful)
  for (const [name, layers] of [
    ["memit", [1, 2]],
    ["alphaedit", [2]],
    ["rome", [2]],
  ] as const)
    assert.throws(
      () => methodByName(name).parseHparams({ ...common, layers }, "h.yaml", model),
      /h\.yaml: .* edits layer 2, the model's last .*Edit layers below 2/,
    );
  // fact_token "last" puts the delta at the prompt's last token, where the last layer is reachable
  assert.doesNotThrow(() =>
    memit.parseHparams({ ...common, layers: [2], fact_token: "last" }, "h.yaml", model),
  );
  ed.free();
  model.free();
});

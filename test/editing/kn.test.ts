// Knowledge neurons: integrated gradients against completeness and against a finite-difference
// computation of the same Riemann sum (float64), and the edit's rank-one change of the value vectors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import { Editor } from "../../src/editing/editor.js";
import { materialize } from "../../src/editing/journal.js";
import { methodByName } from "../../src/editing/methods.js";
import {
  kn,
  integratedGradients,
  probWithActivation,
  baselineActivation,
  coarseNeurons,
  refineNeurons,
  valueChange,
} from "../../src/editing/kn/index.js";
import { FIXTURES } from "../helpers.js";

const gpt2 = join(FIXTURES, "gpt2-tiny");
const MODULE = "transformer.h.1.mlp.c_fc";

test("KN integrated gradients: completeness within the Riemann error, and the sum by finite differences", () => {
  const model = loadModel(gpt2, { dtype: "float64" });
  const tok = loadTokenizer(gpt2);
  const ids = tok.encode("The Eiffel Tower is located in", { addSpecialTokens: true });
  const target = tok.encode(" Paris", { addSpecialTokens: false })[0] as number;
  torch.scope(() => {
    const { acts } = baselineActivation(model, ids, MODULE);
    const f = (x: torch.Tensor) =>
      torch.noGrad(() => probWithActivation(model, ids, MODULE, x.unsqueeze(0), target).item());
    const df = f(acts) - f(torch.zerosLike(acts));
    const err = (steps: number, batchSize: number) =>
      Math.abs(integratedGradients(model, ids, MODULE, target, { steps, batchSize }).sum().item() - df);
    const e20 = err(20, 5);
    const e200 = err(200, 50);
    assert.ok(Math.abs(df) > 1e-4, `f(a) - f(0) = ${df} is too small for the test`);
    assert.ok(e20 < 0.15 * Math.abs(df), `20 steps: |sum IG - (f(a) - f(0))| = ${e20}, df = ${df}`);
    assert.ok(e200 < e20 / 4, `the error shrinks with the step count: ${e20} (20) -> ${e200} (200)`);

    // a hand computation of the same Riemann sum for two neurons: central differences of f
    const m = 10;
    const ig = integratedGradients(model, ids, MODULE, target, { steps: m, batchSize: 5 });
    const top = Array.from(ig.abs().argsort(0, true).narrow(0, 0, 2).toArray() as BigInt64Array, Number);
    const I = acts.size(0);
    for (const j of top) {
      const aj = acts.select(0, j).item();
      const hstep = 1e-4;
      let sum = 0;
      for (let k = 0; k < m; k++) {
        const alpha = k / (m - 1);
        const e = torch.zeros([I], { dtype: "float64" }).indexPut_([j], hstep);
        const base = acts.mul(alpha);
        sum += (f(base.add(e)) - f(base.sub(e))) / (2 * hstep);
      }
      const hand = (sum * aj) / m;
      const got = ig.select(0, j).item();
      assert.ok(
        Math.abs(got - hand) <= 1e-6 * Math.max(1e-3, Math.abs(hand)) + 1e-12,
        `neuron ${j}: IG ${got}, by hand ${hand}`,
      );
    }
  });
  model.free();
});

test("KN neuron selection: adaptive threshold over all layers, refining by sharing", () => {
  torch.scope(() => {
    const s = torch.tensor([
      [0.1, 1.0, -2.0],
      [0.25, 0.19, 0.0],
    ]);
    assert.deepEqual(coarseNeurons(s, 0.2), [
      [0, 1],
      [1, 0],
    ]);
  });
  const a: [number, number][] = [
    [0, 1],
    [1, 2],
  ];
  const b: [number, number][] = [[0, 1]];
  assert.deepEqual(refineNeurons([a, b], 0.6, true), [[0, 1]]);
  assert.deepEqual(refineNeurons([a, b], 0.6, false), [
    [0, 1],
    [1, 2],
  ]);
  assert.deepEqual(refineNeurons([a], 0.4, true), a, "one prompt: every coarse neuron is shared by it");
});

test("KN edit: the selected neurons' value vectors move by E[target] - 2 E[argmax], a rank-one delta per layer", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  assert.equal(methodByName("kn"), kn);
  const h = kn.parseHparams({ alg_name: "KN", steps: 10, batch_size: 10 }, "test", model);
  assert.throws(
    () => kn.parseHparams({ steps: 20, batch_size: 3 }, "kn.yaml", model),
    /kn\.yaml: KN steps \(20\) must be a positive multiple of batch_size \(3\)/,
  );
  const request = {
    prompt: "{} is located in",
    subject: "The Eiffel Tower",
    targetNew: "Rome",
    targetTrue: "Paris",
  };
  const ed = new Editor(model, tok, { log: () => undefined });
  assert.throws(
    () => ed.edit(kn, [{ ...request, targetTrue: undefined }], h),
    /KN needs the original answer/,
  );
  const [rec] = ed.edit(kn, [request], h);
  const info = rec!.info as {
    neurons: [number, number][];
    predicted_tokens: number[];
    target_tokens: number[];
  };
  assert.ok(info.neurons.length > 0);
  assert.deepEqual(info.target_tokens, tok.encode("Rome", { addSpecialTokens: false }));
  torch.scope(() => {
    const change = valueChange(model, info.target_tokens, info.predicted_tokens);
    const wte = model.param("transformer.wte.weight");
    if (info.target_tokens.length === 1) {
      const expect = wte
        .select(0, info.target_tokens[0]!)
        .sub(wte.select(0, info.predicted_tokens[0]!).mul(2));
      assert.ok(change.sub(expect).abs().max().item() < 1e-6);
    }
    for (const d of rec!.deltas) {
      const l = Number(/h\.(\d+)\./.exec(d.param)![1]);
      const D = materialize(d, "float32"); // [I, d] (Conv1D c_proj)
      const rows = new Set(info.neurons.filter(([ll]) => ll === l).map(([, i]) => i));
      for (let i = 0; i < D.size(0); i++) {
        const r = D.select(0, i);
        if (rows.has(i)) assert.ok(r.sub(change).abs().max().item() < 1e-6, `row ${i}`);
        else assert.equal(r.abs().max().item(), 0, `row ${i} of layer ${l} is not a selected neuron`);
      }
    }
  });
  ed.journal.undoAll();
  ed.free();
  model.free();
});

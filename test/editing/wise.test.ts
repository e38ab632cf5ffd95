// WISE: the TIES merge against a hand computation, the losses against closed forms, the gradient mask,
// routing of in-scope inputs to the side memory and out-of-scope inputs to the main memory (bit for bit),
// shards and merges against an independent TIES, undo and journal save/replay exact; padded batches and
// batched (cached, shared-prefix) generation give each row what it gets alone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import type { Tensor } from "../../src/torch/index.js";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import { positionsFromMask, type CausalLM } from "../../src/models/model.js";
import { encodePrefix, generate } from "../../src/models/generate.js";
import { modelFingerprint } from "../../src/models/fingerprint.js";
import { Editor } from "../../src/editing/editor.js";
import { EditJournal } from "../../src/editing/journal.js";
import { methodByName } from "../../src/editing/methods.js";
import { readHparamsFile } from "../../src/editing/hparams.js";
import {
  wise,
  foldWise,
  mergeShards,
  WISE_KIND,
  wiseContextTemplates,
  route,
  routingScores,
  type WiseHparams,
  type WiseState,
} from "../../src/editing/wise/index.js";
import { shardMask, WISE_SGD_WEIGHT_DECAY } from "../../src/editing/wise/index.js";
import { ftLoss, routingLoss } from "../../src/editing/wise/loss.js";
import { FIXTURES, ROOT, assertClose } from "../helpers.js";

const gpt2 = join(FIXTURES, "gpt2-tiny");
const MODULE = "transformer.h.1.mlp.c_fc";
const tmp = mkdtempSync(join(tmpdir(), "editeval-wise-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

const eiffel = {
  prompt: "{} is located in",
  subject: "The Eiffel Tower",
  targetNew: "Rome",
  targetTrue: "Paris",
};
const curie = { prompt: "{} was born in", subject: "Marie Curie", targetNew: "Lisbon", targetTrue: "Warsaw" };
const LOC = ["The weather today is sunny and warm", "Music and painting were popular arts"];
const TEMPLATES = ["{}", "I think that {}", "Yes. {}"];

function hparams(model: CausalLM, extra: Record<string, unknown> = {}): WiseHparams {
  return wise.parseHparams(
    {
      alg_name: "WISE",
      inner_params: ["transformer.h[1].mlp.c_fc.weight"],
      n_iter: 30,
      loc_prompts: LOC,
      ...extra,
    },
    "test",
    model,
  );
}

const bytes = (t: Tensor) => Buffer.from(t.toBytes()).toString("base64");

function logitsOf(model: CausalLM, tok: ReturnType<typeof loadTokenizer>, text: string): string {
  return torch.scope(() => bytes(model.logits([tok.encode(text, { addSpecialTokens: true })])));
}

/** The module's input and (final, hooks applied) output for a text. */
function probe(
  model: CausalLM,
  tok: ReturnType<typeof loadTokenizer>,
  text: string,
): { x: Tensor; y: Tensor } {
  let x: Tensor | null = null;
  let y: Tensor | null = null;
  model.withHooks(
    [
      { module: MODULE, where: "input", hook: (v) => void (x = v.clone().keep()) },
      { module: MODULE, where: "output", hook: (v) => void (y = v.clone().keep()) },
    ],
    () => torch.scope(() => void model.logits([tok.encode(text, { addSpecialTokens: true })])),
  );
  return { x: (x as unknown as Tensor).attach(), y: (y as unknown as Tensor).attach() };
}

/** The routing score from its definition: mean_t ||gelu_tanh(x W' + b) - gelu_tanh(x W + b)||, in float64. */
function scoreOracle(x: Tensor, W: Tensor, Wside: Tensor, b: Tensor): number {
  const xd = x.select(0, 0).to("float64");
  const bd = b.to("float64");
  const g = (z: Tensor) => torch.F.gelu(z, "tanh");
  const main = g(xd.matmul(W.to("float64")).add(bd));
  const side = g(xd.matmul(Wside.to("float64")).add(bd));
  return side.sub(main).norm(2, -1).mean().item();
}

test("WISE hparams: EasyEdit's gpt2-xl file as it is, act_margin, bad fields named", () => {
  const model = loadModel(gpt2);
  const raw = readHparamsFile(join(ROOT, "hparams/WISE/gpt2-xl.yaml"));
  // EasyEdit's file edits layer 8 of gpt2-xl: the error names the field and the fix
  assert.throws(
    () => wise.parseHparams(raw, "gpt2-xl.yaml", model),
    /gpt2-xl\.yaml: WISE inner_params .*layer 8 is out of range/,
  );
  const h = wise.parseHparams({ ...raw, inner_params: ["transformer.h[2].mlp.c_fc.weight"] }, "x", model);
  assert.deepEqual([h.alpha, h.beta, h.gamma], [5, 20, 10]);
  assert.equal(h.act_ratio, 0.8);
  assert.equal(h.save_freq, 500);
  assert.equal(h.merge_freq, 1000);
  assert.equal(h.merge_alg, "ties");
  assert.equal(h.densities, 0.53);
  assert.equal(h.retrieve, true);
  assert.equal(h.norm_constraint, 1);
  assert.deepEqual(wise.schema.inner_params?.default, ["transformer.h[8].mlp.c_fc.weight"]);
  assert.throws(
    () => hparams(model, { save_freq: 2, merge_freq: 3 }),
    /merge_freq \(3\) must be a positive multiple of save_freq \(2\)/,
  );
  assert.throws(() => hparams(model, { act_margin: [1, 2] }), /act_margin must be three numbers/);
  assert.throws(() => hparams(model, { replay: true }), /replay: true .* not implemented/);
  assert.throws(() => hparams(model, { merge_alg: "average" }), /merge_alg must be one of/);
  assert.throws(() => hparams(model, { n_iters: 3 }), /unknown WISE hyper-parameter 'n_iters'/);
  assert.equal(methodByName("WISE"), wise);
  const tok = loadTokenizer(gpt2);
  const ed = new Editor(model, tok, { log: () => undefined });
  assert.throws(
    () => ed.edit(wise, [eiffel], hparams(model, { loc_prompts: [] })),
    /WISE needs out-of-scope training texts: set loc_prompts/,
  );
  ed.free();
  model.free();
});

test("WISE TIES merge equals the hand computation (trim to top-k, elect sign, mean of agreeing)", () => {
  torch.scope(() => {
    const base = torch.ones([2, 3]);
    const taus = [
      [3, -1, 0.5, -2, 4, 0.1],
      [1, 2, -0.5, -1.5, -3, 0.2],
      [-2, 1, 0.3, 5, 0.9, -0.4],
    ];
    const shards = taus.map((t) => base.add(torch.tensor(t).view(2, 3)));
    const gen = new torch.Generator(0);
    // density 0.5 keeps 3 of 6 entries per task vector:
    //   tau1 -> [3, 0, 0, -2, 4, 0], tau2 -> [0, 2, 0, -1.5, -3, 0], tau3 -> [-2, 1, 0, 5, 0, 0]
    // elected signs (sum of w*tau, w = 1/3): + + (0: +) + + (0: +); agreeing entries, averaged by their weights:
    //   [3, (2+1)/2, 0, 5, 4, 0]
    const merged = mergeShards("ties", [1 / 3, 1 / 3, 1 / 3], base, shards, 0.5, gen);
    assertClose(merged.toNumbers(), [4, 2.5, 1, 6, 5, 1], 1e-6, "ties");
    // magnitude (no sign election, no normalisation): base + sum w*trimmed = base + [1/3, 1, 0, 1.5/3, 1/3, 0]
    const mag = mergeShards("magnitude", [1 / 3, 1 / 3, 1 / 3], base, shards, 0.5, gen);
    assertClose(mag.toNumbers(), [1 + 1 / 3, 2, 1, 1.5, 1 + 1 / 3, 1], 1e-6, "magnitude");
    // linear takes the first weight and the first shard, as EasyEdit: t v1 + (1 - t) v0
    const lin = mergeShards("linear", [0.25, 0.75], base, shards, 0.5, gen);
    assertClose(
      lin.toNumbers(),
      taus[0]!.map((t) => 1 + 0.25 * t),
      1e-6,
      "linear",
    );
  });
});

test("WISE losses: ft loss and routing loss against closed forms", () => {
  torch.scope(() => {
    // uniform logits: every target token costs log V; a row of n target tokens gives n log V / (n + 1)
    const V = 5;
    const logits = torch.zeros([3, 6, V]);
    const rows = [
      { prompt: 2, ids: [1, 2, 3, 4] },
      { prompt: 3, ids: [1, 2, 3, 4, 0, 1] },
    ];
    const ft = ftLoss(logits, rows, 6).item();
    assertClose(ft, ((2 * Math.log(V)) / 3 + (3 * Math.log(V)) / 4) / 2, 1e-6, "ft");
    // in = [25, 18], out = 7, (alpha, beta, gamma) = (5, 20, 10):
    // margin 7 - in + 10 = [-8, -1] -> 0; out - alpha = 2; beta - in = [-5, 2] -> mean of positives 2
    const l = routingLoss(torch.tensor([25, 18]), torch.tensor([7]), 5, 20, 10).item();
    assertClose(l, 4, 1e-6, "routing loss");
    const l2 = routingLoss(torch.tensor([12, 16]), torch.tensor([9]), 5, 20, 10).item();
    // margin [7, 3] -> 5; out - alpha 4; beta - in [8, 4] -> 6
    assertClose(l2, 15, 1e-6, "routing loss 2");
  });
});

test("WISE routes the edited prompt and its rephrase to the side memory, other inputs to the main memory bit for bit", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const inScope = ["The Eiffel Tower is located in Rome", "The Eiffel Tower is in Rome"];
  const outScope = [...LOC, "A small cat sat", "The capital of France is Paris"];
  const before = new Map([...inScope, ...outScope].map((t) => [t, logitsOf(model, tok, t)]));
  const PAIR = ["The Eiffel Tower is in Rome", "The weather today is sunny and warm."];
  const pairBefore = PAIR.map((t) =>
    torch.scope(() =>
      model
        .logits([tok.encode(t, { addSpecialTokens: true })])
        .select(0, 0)
        .toNumbers(),
    ),
  );
  const W = model.param(`${MODULE}.weight`).clone().keep();
  const b = model.param(`${MODULE}.bias`);
  const ed = new Editor(model, tok, { log: () => undefined });
  const print0 = modelFingerprint(model);
  const h = hparams(model);
  const [rec] = ed.edit(wise, [eiffel], h);
  assert.ok(rec && rec.deltas.length === 0 && rec.adaptors?.length === 1, "an adaptor edit, no weight delta");
  assert.notEqual(modelFingerprint(model), print0);
  const info = rec.info as { loss_first: number; loss_last: number; activation: number };
  assert.ok(info.loss_last < info.loss_first, `loss ${info.loss_first} -> ${info.loss_last}`);
  // the main memory's weight is untouched
  assert.equal(bytes(model.param(`${MODULE}.weight`)), bytes(W));
  const entry = ed.journal.adaptorEntries(WISE_KIND, MODULE)[0]!;
  const shard = entry.tensors.shard as Tensor;
  const thr = info.activation * h.act_ratio;

  // the gradient mask: entries outside it only decayed (W (1 - lr wd)^steps), entries inside moved
  torch.scope(() => {
    const mask = shardMask(W.shape, h.mask_ratio, h.seed, 0);
    const decayed = W.mul((1 - h.edit_lr * WISE_SGD_WEIGHT_DECAY) ** h.n_iter);
    const off = shard.sub(decayed).abs().mul(torch.onesLike(mask).sub(mask)).max().item();
    assert.ok(off < 1e-5, `entries outside the mask moved by ${off}`);
    const moved = shard.sub(W).abs().gt(1e-3).to("float32");
    const frac = moved.sum().item() / W.numel();
    assert.ok(frac <= mask.mean().item() + 1e-9 && frac > 0.5 * h.mask_ratio, `moved fraction ${frac}`);
    assert.ok(Math.abs(mask.mean().item() - h.mask_ratio) < 0.02);
    // the shard stays within W +- norm_constraint
    assert.ok(shard.sub(W).abs().max().item() <= (h.norm_constraint as number) + 1e-6);
  });

  for (const t of inScope)
    torch.scope(() => {
      const { x, y } = probe(model, tok, t);
      const s = scoreOracle(x, W, shard, b);
      assert.ok(s >= thr, `'${t}': score ${s} < threshold ${thr} (in scope)`);
      // the module's output is the side memory's: x W' + b
      const side = torch.addmm(b, x.select(0, 0), shard).unsqueeze(0);
      assertClose(y.toNumbers(), side.toNumbers(), 1e-5, `side output for '${t}'`);
      assert.notEqual(logitsOf(model, tok, t), before.get(t));
    });
  for (const t of outScope)
    torch.scope(() => {
      const { x } = probe(model, tok, t);
      const s = scoreOracle(x, W, shard, b);
      assert.ok(s < thr, `'${t}': score ${s} >= threshold ${thr} (out of scope)`);
      assert.equal(logitsOf(model, tok, t), before.get(t), `'${t}' changed`);
    });
  // a batch mixing both: each sequence is routed on its own (batched matmuls may differ in the last bits)
  torch.scope(() => {
    const ids = PAIR.map((t) => tok.encode(t, { addSpecialTokens: true }));
    assert.equal(ids[0]!.length, ids[1]!.length, "the pair must have equal token lengths");
    const { x } = probe(model, tok, PAIR[1]!);
    assert.ok(scoreOracle(x, W, shard, b) < thr, "the pair's second text is out of scope");
    const batch = model.logits(ids);
    for (let i = 0; i < 2; i++)
      assertClose(
        batch.select(0, i).toNumbers(),
        model.logits([ids[i]!]).select(0, 0).toNumbers(),
        1e-4,
        `row ${i}`,
      );
    assertClose(batch.select(0, 1).toNumbers(), pairBefore[1]!, 1e-4, "out-of-scope row = unedited");
    const moved = batch
      .select(0, 0)
      .sub(torch.tensor(pairBefore[0]!).view(batch.size(1), -1))
      .abs()
      .max()
      .item();
    assert.ok(moved > 1e-2, `the in-scope row did not change (${moved})`);
  });

  ed.journal.undoAll();
  assert.equal(model.hooks.size, 0);
  assert.equal(modelFingerprint(model), print0);
  for (const t of inScope) assert.equal(logitsOf(model, tok, t), before.get(t));
  W.free();
  ed.free();
  model.free();
});

/**
 * TIES written from its definition on plain arrays: trim, elect, disjoint mean (float64, except the task
 * vectors, rounded to float32 as the shards' dtype computes them: the trim's order depends on it).
 */
function tiesOracle(base: number[], shards: number[][], weights: number[], density: number): number[] {
  const n = base.length;
  const k = Math.trunc(density * n);
  const trimmed = shards.map((s) => {
    const tau = s.map((v, i) => Math.fround(v - (base[i] as number)));
    const order = tau.map((v, i) => [Math.abs(v), i] as const).sort((a, b) => b[0] - a[0]);
    const keep = new Set(order.slice(0, k).map(([, i]) => i));
    return tau.map((v, i) => (keep.has(i) ? v : 0));
  });
  return base.map((b0, i) => {
    const d = trimmed.map((t, j) => (weights[j] as number) * (t[i] as number));
    const sign = d.reduce((a, c) => a + c, 0) >= 0 ? 1 : -1;
    let num = 0;
    let den = 0;
    d.forEach((v, j) => {
      if (Math.sign(v) === sign) {
        num += v;
        den += weights[j] as number;
      }
    });
    return b0 + num / (den === 0 ? 1 : den);
  });
}

test("WISE shards: every save_freq edits a shard is saved, merge_freq merges them by TIES (WISE-Retrieve)", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const ed = new Editor(model, tok, { log: () => undefined });
  // mask_ratio 1: every entry trains, so no two task-vector entries tie at the trim's cut (with a partial mask
  // the untrained entries only decay, and their equal float32 magnitudes make the top-k ambiguous)
  const h = hparams(model, {
    save_freq: 1,
    merge_freq: 2,
    n_iter: 8,
    mask_ratio: 1,
    context_templates: TEMPLATES,
  });
  const recs = ed.edit(wise, [eiffel, curie], h);
  const entries = ed.journal.adaptorEntries(WISE_KIND, MODULE);
  const [m1, m2] = entries.map(
    (e) => e.meta as { saved: boolean; merged: boolean; act: number; shard_index: number },
  );
  assert.deepEqual([m1!.saved, m1!.merged, m2!.saved, m2!.merged], [true, false, true, true]);
  assert.deepEqual([m1!.shard_index, m2!.shard_index], [0, 1]);
  const s = foldWise(entries);
  assert.equal(s.count, 2);
  assert.equal(s.shard, null, "a saved shard starts the next one from the main weight");
  assert.equal(s.memories.length, 1, "two saved shards merged into one memory");
  assert.equal(s.memories[0]!.minAct, Math.min(m1!.act, m2!.act));
  // the second shard started from the main weight, not from the first
  const W = model.param(`${MODULE}.weight`);
  const s1 = (entries[0]!.tensors.shard as Tensor).toNumbers();
  const s2 = (entries[1]!.tensors.shard as Tensor).toNumbers();
  const expected = tiesOracle(W.toNumbers(), [s1, s2], [0.5, 0.5], h.densities);
  assertClose(s.memories[0]!.weight.toNumbers(), expected, 1e-6, "merged memory");
  assert.equal(recs.length, 2);
  ed.free();
  model.free();
});

test("WISE-Merge: the merged side memory equals TIES of the shard into the main weight", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const ed = new Editor(model, tok, { log: () => undefined });
  const h = hparams(model, {
    retrieve: false,
    save_freq: 1,
    merge_freq: 1,
    n_iter: 8,
    mask_ratio: 1,
    context_templates: TEMPLATES,
  });
  ed.edit(wise, [eiffel], h);
  const [e] = ed.journal.adaptorEntries(WISE_KIND, MODULE);
  const s = foldWise([e!]);
  const W = model.param(`${MODULE}.weight`).toNumbers();
  const expected = tiesOracle(W, [(e!.tensors.shard as Tensor).toNumbers()], [1], h.densities);
  assertClose((s.side as Tensor).toNumbers(), expected, 1e-6, "side memory");
  assert.equal(s.memories.length, 0);
  assert.equal(s.shard, null);
  ed.free();
  model.free();
});

test("WISE context templates: '{}' and ten greedy continuations of EasyEdit's five prompts", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const t = wiseContextTemplates(model, tok);
  assert.equal(t.length, 11);
  assert.equal(t[0], "{}");
  const prompts = ["I", "You", "Because", "Yes", "Q: "];
  t.slice(1).forEach((x, i) => {
    assert.ok(x.startsWith(prompts[i % 5]!) && x.endsWith(" {}"), x);
  });
  // greedy: the first token after "I" is the arg-max of the model's next-token distribution
  torch.scope(() => {
    const ids = tok.encode("I", { addSpecialTokens: true });
    const next = model
      .logits([ids])
      .select(0, 0)
      .select(0, ids.length - 1)
      .argmax()
      .item();
    const cont = tok.encode(t[1]!.slice(0, -3), { addSpecialTokens: true });
    assert.equal(cont[ids.length], next);
  });
  model.free();
});

test("WISE undo and journal save/replay reproduce the outputs exactly (shards and merges included)", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const texts = ["The Eiffel Tower is located in Rome", "Marie Curie was born in Lisbon", "A small cat sat"];
  const base = new Map(texts.map((t) => [t, logitsOf(model, tok, t)]));
  const ed = new Editor(model, tok, { log: () => undefined });
  const h = hparams(model, { save_freq: 1, merge_freq: 2, n_iter: 8, context_templates: TEMPLATES });
  const [r1] = ed.edit(wise, [eiffel], h);
  const after1 = new Map(texts.map((t) => [t, logitsOf(model, tok, t)]));
  const [r2] = ed.edit(wise, [curie], h);
  const after2 = new Map(texts.map((t) => [t, logitsOf(model, tok, t)]));
  assert.notEqual(after1.get(texts[0]!), base.get(texts[0]!));
  assert.ok(r1 && r2);

  const dir = join(tmp, "journal");
  ed.journal.save(dir);
  const saved = JSON.parse(readFileSync(join(dir, "edits.json"), "utf8"));
  assert.equal(saved.edits[1].adaptors[0].kind, "wise");
  assert.ok("merged" in saved.edits[1].adaptors[0].tensors);
  const fresh = loadModel(gpt2);
  const j = new EditJournal(fresh);
  j.replay(dir);
  for (const t of texts) assert.equal(logitsOf(fresh, tok, t), after2.get(t), `replayed '${t}'`);
  assert.equal(modelFingerprint(fresh), modelFingerprint(model));
  j.undoAll();
  for (const t of texts) assert.equal(logitsOf(fresh, tok, t), base.get(t));
  j.free();
  fresh.free();

  // undoing the last edit restores the state after the first exactly; a further edit continues from it
  ed.journal.undo(r2.id);
  for (const t of texts) assert.equal(logitsOf(model, tok, t), after1.get(t), `after undo '${t}'`);
  const s = foldWise(ed.journal.adaptorEntries(WISE_KIND, MODULE));
  assert.equal(s.count, 1);
  assert.equal(s.memories.length, 1);
  ed.journal.undoAll();
  for (const t of texts) assert.equal(logitsOf(model, tok, t), base.get(t));
  ed.free();
  model.free();
});

/** A batch of token rows padded on one side, with its attention mask and positions (left: cumsum(mask) - 1). */
function paddedBatch(
  rows: number[][],
  side: "left" | "right",
  pad: number,
): { inputIds: Tensor; attentionMask: Tensor; positionIds: Tensor; offsets: number[] } {
  const width = Math.max(...rows.map((r) => r.length));
  const fill = (r: number[], v: number, real: (x: number) => number) => {
    const p = new Array<number>(width - r.length).fill(v);
    return side === "left" ? [...p, ...r.map(real)] : [...r.map(real), ...p];
  };
  const attentionMask = torch.tensor(
    rows.map((r) => fill(r, 0, () => 1)),
    { dtype: "int64" },
  );
  return {
    inputIds: torch.tensor(
      rows.map((r) => fill(r, pad, (x) => x)),
      { dtype: "int64" },
    ),
    attentionMask,
    positionIds:
      side === "left"
        ? positionsFromMask(attentionMask, 0, width)
        : torch.arange(0, width).unsqueeze(0).expand(rows.length, width),
    offsets: rows.map((r) => (side === "left" ? width - r.length : 0)),
  };
}

test("WISE decides on real tokens only: padded batches give each row its logits alone, batched generation each prompt's", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const enc = (t: string) => tok.encode(t, { addSpecialTokens: true });
  const texts = [
    "The Eiffel Tower is located in Rome",
    "The Eiffel Tower is in Rome",
    "A small cat sat",
    "The weather today is sunny and warm, and music and painting were the popular arts of the town",
  ];
  const rows = texts.map(enc);
  const unedited = rows.map((r) => torch.scope(() => model.logits([r]).select(0, 0).toNumbers()));
  const ed = new Editor(model, tok, { log: () => undefined });
  ed.edit(wise, [eiffel], hparams(model, { context_templates: TEMPLATES }));
  // the oracle: each row run alone (unpadded, the reference's own case); the edit routes the first two
  // to the side memory and leaves the other two on the main memory
  const alone = rows.map((r) => torch.scope(() => model.logits([r]).select(0, 0).toNumbers()));
  const moved = alone.map((a, i) => Math.max(...a.map((v, k) => Math.abs(v - (unedited[i]![k] as number)))));
  assert.ok(moved[0]! > 1e-2 && moved[1]! > 1e-2, `in-scope rows moved by ${moved.slice(0, 2)}`);
  assert.deepEqual(moved.slice(2), [0, 0], "out-of-scope rows are the unedited model's");
  const pad = tok.eosTokenId ?? 0;
  for (const side of ["right", "left"] as const)
    torch.scope(() => {
      const b = paddedBatch(rows, side, pad);
      const V = model.config.vocabSize;
      const logits = model.forward(b).logits;
      rows.forEach((r, i) => {
        const got = logits
          .select(0, i)
          .narrow(0, b.offsets[i] as number, r.length)
          .toNumbers();
        assertClose(
          got,
          alone[i]!,
          1e-4,
          `${side}-padded row ${i} (${r.length} of ${logits.size(1)} tokens)`,
        );
        assert.equal(got.length, r.length * V);
      });
    });

  // generation: a batch of uneven prompts (left padding, KV cache) = each prompt alone, with and without a
  // shared prefix; the edit changes the in-scope prompt's continuation
  // (the long prompt pads the in-scope one with 25 positions, which change its decision if they count)
  const prompts = [
    "The Eiffel Tower is located in",
    "A small cat",
    "The weather today is sunny and warm, and music and painting were the popular arts of the town for many long years, as",
  ].map(enc);
  const opts = { maxNewTokens: 6, eosTokenId: null };
  const batched = generate(model, prompts, opts).map((g) => g.tokens);
  const single = prompts.map((p) => generate(model, [p], opts)[0]!.tokens);
  assert.deepEqual(batched, single);
  const noCache = generate(model, prompts, { ...opts, useCache: false }).map((g) => g.tokens);
  assert.deepEqual(
    noCache,
    prompts.map((p) => generate(model, [p], { ...opts, useCache: false })[0]!.tokens),
  );
  const prefix = encodePrefix(model, enc("Answer: "));
  try {
    const rest = [
      " The Eiffel Tower is located in",
      " A cat",
      " The weather today is sunny and warm, and",
    ].map((t) => tok.encode(t, { addSpecialTokens: false }));
    const withPrefix = generate(model, rest, { ...opts, prefix }).map((g) => g.tokens);
    assert.deepEqual(
      withPrefix,
      rest.map((p) => generate(model, [p], { ...opts, prefix })[0]!.tokens),
    );
  } finally {
    prefix.free();
  }
  ed.journal.undoAll();
  const base = generate(model, prompts, opts).map((g) => g.tokens);
  assert.notDeepEqual(batched[0], base[0], "the edit changes the in-scope prompt's continuation");
  ed.free();
  model.free();
});

test("WISE routing scores count real positions only (hand computation), rows without one stay on the main memory", () => {
  torch.scope(() => {
    const id = (x: Tensor) => x;
    // distances ||out - orig|| per position: row 0 [3, 4, 100], row 1 [100, 1, 2], row 2 [7, 7, 7]
    const orig = torch.zeros([3, 3, 2]);
    const out = torch.tensor([
      [
        [3, 0],
        [0, 4],
        [100, 0],
      ],
      [
        [0, 100],
        [1, 0],
        [0, 2],
      ],
      [
        [7, 0],
        [7, 0],
        [7, 0],
      ],
    ]);
    const real = [[0, 1], [1, 2], []];
    const sc = routingScores(orig, out, id, real);
    assertClose(sc.slice(0, 2), [3.5, 1.5], 1e-12, "means over the real positions");
    assert.ok(Number.isNaN(sc[2]), "a row without a real position has no score");
    assertClose(routingScores(orig, out, id), [107 / 3, 103 / 3, 7], 1e-6, "no mask: every position");
    // more than 100 real positions: the maximum (EasyEdit's infer rule), 101 counts as the row's length
    const longOut = torch
      .tensor(Array.from({ length: 120 }, (_, i) => (i === 110 ? 9 : i === 50 ? 5 : 0)))
      .view(1, 120, 1);
    const all = Array.from({ length: 120 }, (_, i) => i);
    assertClose(routingScores(torch.zeros([1, 120, 1]), longOut, id, [all.slice(0, 101)]), [5], 1e-12, "max");
    assertClose(
      routingScores(torch.zeros([1, 120, 1]), longOut, id, [all.slice(20, 120)]),
      [0.14],
      1e-6,
      "mean",
    );
    // the side memory W' = 10 I against a threshold of 1: rows with real tokens route to it, the empty row not
    const x = torch.ones([3, 3, 2]);
    const state: WiseState = {
      ...foldWise([]),
      shard: torch.eye(2).mul(10),
      shardMinAct: 1,
    };
    const r = route(state, x, x, null, true, id, real);
    assert.deepEqual(r.choice, [0, 0, -1]);
  });
});

// MELO: the vector database against a hand-worked 2-D example, an edited prompt mapped through its LoRA
// block (against y + num_block x A B from the entry), inputs outside every radius bit for bit, the
// cluster update and split on the model's own keys, undo and journal save/replay exact; padded batches
// and batched (cached, shared-prefix) generation give each row what it gets alone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import type { Tensor } from "../../src/torch/index.js";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import { positionsFromMask, type CausalLM } from "../../src/models/model.js";
import { encodePrefix, generate } from "../../src/models/generate.js";
import { loglikelihoodShared } from "../../src/models/scoring.js";
import { modelFingerprint } from "../../src/models/fingerprint.js";
import { Editor } from "../../src/editing/editor.js";
import { EditJournal } from "../../src/editing/journal.js";
import { methodByName } from "../../src/editing/methods.js";
import { readHparamsFile } from "../../src/editing/hparams.js";
import { targetTokens } from "../../src/editing/lora/loss.js";
import {
  melo,
  foldDb,
  searchBlocks,
  writeKey,
  blocksOf,
  MELO_DB_KIND,
  MELO_LORA_KIND,
  NO_BLOCK,
  type Cluster,
  type MeloHparams,
} from "../../src/editing/melo/index.js";
import { FIXTURES, ROOT, assertClose } from "../helpers.js";

const gpt2 = join(FIXTURES, "gpt2-tiny");
const GRACE = "transformer.h.1.mlp.c_fc";
const TARGETS = ["transformer.h.1.mlp.c_proj", "transformer.h.2.mlp.c_fc"];
const tmp = mkdtempSync(join(tmpdir(), "editeval-melo-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

const eiffel = {
  prompt: "{} is located in",
  subject: "The Eiffel Tower",
  targetNew: "Rome",
  targetTrue: "Paris",
};
const eiffel2 = {
  prompt: "{} is situated in",
  subject: "The Eiffel Tower",
  targetNew: "Rome",
  targetTrue: "Paris",
};
const curie = { prompt: "{} was born in", subject: "Marie Curie", targetNew: "Lisbon", targetTrue: "Warsaw" };
type Tok = ReturnType<typeof loadTokenizer>;

function hparams(
  model: CausalLM,
  grace: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): MeloHparams {
  return melo.parseHparams(
    {
      alg_name: "MELO",
      task: "hall",
      grace: { num_iter: 30, init_radius: 0.5, num_block: 8, num_rank_per_block: 2, edit_lr: 0.01, ...grace },
      model: {
        target_modules: ["h.1.mlp.c_proj", "h.2.mlp.c_fc"],
        grace_layer: "transformer\\.h\\.1\\.mlp\\.c_fc",
      },
      lora: { lora_dropout: 0.0 },
      ...extra,
    },
    "test",
    model,
  );
}

const bytes = (t: Tensor) => Buffer.from(t.toBytes()).toString("base64");
const idsOf = (tok: Tok, r: typeof eiffel) => {
  const tt = targetTokens(tok, r);
  return [...tt.prompt, ...tt.target];
};
function logitsOf(model: CausalLM, ids: number[]): string {
  return torch.scope(() => bytes(model.logits([ids])));
}
/** The grace layer's output at the last token (the key), on the model as it is. */
function keyOf(model: CausalLM, ids: number[]): Tensor {
  let k: Tensor | null = null;
  model.withHooks(
    [
      {
        module: GRACE,
        where: "output",
        hook: (y) =>
          void (k = y
            .select(0, 0)
            .select(0, ids.length - 1)
            .clone()
            .keep()),
      },
    ],
    () => torch.scope(() => void model.logits([ids])),
  );
  return (k as unknown as Tensor).attach();
}
const dist = (a: Tensor, b: Tensor) => a.to("float64").sub(b.to("float64")).norm().item();

/** Applies a write to a database as the journal's fold does (a written id replaces, new ids append). */
function applyWrite(db: Cluster[], written: Cluster[]): Cluster[] {
  const out = [...db];
  for (const c of written) {
    const i = out.findIndex((x) => x.id === c.id);
    if (i >= 0) out[i] = c;
    else out.push(c);
  }
  return out;
}

test("MELO hparams: EasyEdit's nested gpt2-xl file, section defaults, bad fields named", () => {
  const model = loadModel(gpt2);
  const raw = readHparamsFile(join(ROOT, "hparams/MELO/gpt2-xl.yaml"));
  assert.throws(
    () => melo.parseHparams(raw, "gpt2-xl.yaml", model),
    /gpt2-xl\.yaml: MELO model\.grace_layer "transformer\.h\.35\.mlp\.c_fc" must match exactly one linear module, matches 0/,
  );
  const ok = melo.parseHparams(
    {
      ...raw,
      model: { ...(raw.model as object), grace_layer: GRACE, target_modules: ["transformer.h.2.mlp.c_fc"] },
    },
    "x",
    model,
  );
  assert.equal(ok.grace.num_iter, 50);
  assert.equal(ok.grace.init_radius, 0.5);
  assert.equal(ok.grace.num_block, 350);
  assert.equal(ok.grace.num_rank_per_block, 2);
  assert.equal(ok.grace.edit_lr, 0.001);
  assert.equal(ok.grace.key_id, -1);
  assert.equal(ok.lora.lora_dropout, 0);
  const h = hparams(model);
  assert.equal(h.model.grace_layer, GRACE);
  assert.throws(
    () =>
      hparams(model, {}, { model: { target_modules: ["transformer.h.1.attn.c_attn"], grace_layer: GRACE } }),
    /target modules transformer\.h\.1\.attn\.c_attn run before the grace layer/,
  );
  assert.throws(
    () =>
      hparams(
        model,
        {},
        { model: { target_modules: ["h.2.mlp.c_fc"], grace_layer: GRACE, fan_in_fan_out: false } },
      ),
    /fan_in_fan_out is false, but this gpt2 model's linear weights are \[in, out\]/,
  );
  assert.throws(() => hparams(model, {}, { task: "qa" }), /MELO task "qa" is not available/);
  assert.throws(
    () => hparams(model, { num_iters: 3 }),
    /test \(grace\): unknown MELO hyper-parameter 'num_iters'/,
  );
  assert.throws(() => hparams(model, {}, { check_dir: "x" }), /check_dir must be null/);
  assert.equal(methodByName("MELO"), melo);
  model.free();
});

test("MELO vector database: a hand-worked 2-D example (new cluster, split with forgetting, join, search)", () => {
  torch.scope(() => {
    const p = (x: number, y: number) => torch.tensor([x, y]);
    let db: Cluster[] = [];
    const write = (q: Tensor, block: number, label: number[]) => {
      const w = writeKey(db, q, block, label, 1);
      db = applyWrite(db, w.written);
      return w;
    };
    assert.equal(write(p(0, 0), 0, [1]).action, "first cluster");
    // (1.5, 0), another label, within r_A + init = 2: split at d/2 = 0.75
    const w2 = write(p(1.5, 0), 1, [2]);
    assert.equal(w2.action, "new cluster, radii split");
    assertClose([db[0]!.radius, db[1]!.radius], [0.75 - 1e-5, 0.75 + 1e-5], 1e-12, "radii");
    assert.deepEqual(db[0]!.blocks, [0], "A keeps its own key (distance 0)");
    // (1.5, 0.5), same label as B (nearest, d 0.5): joins; centre (1.5, 0.25), radius max(0.25, init 1) = 1
    assert.equal(write(p(1.5, 0.5), 2, [2]).action, "cluster updated");
    assertClose(db[1]!.center.toNumbers(), [1.5, 0.25], 1e-7, "centre");
    assert.equal(db[1]!.radius, 1);
    assert.deepEqual(db[1]!.blocks, [1, 2]);
    // (1.5, 3): nearest B at 2.75 > r_B + init = 2: a new cluster C
    assert.equal(write(p(1.5, 3), 3, [3]).action, "new cluster");
    assert.equal(db.length, 3);
    // search: inside A -> block 0; inside C -> block 3; far from everything -> none;
    // inside B, nearer (1.5, 0.5) than (1.5, 0) -> block 2
    assert.deepEqual(searchBlocks(torch.stack([p(0.1, 0), p(1.5, 2.5), p(5, 5), p(1.5, 0.4)]), db), [
      0,
      3,
      NO_BLOCK,
      2,
    ]);
    // (1.5, 0.6), label 5, nearest B (d 0.35): split, B's radius 0.175 - 1e-5; both keys (0.25 away) forgotten,
    // B keeps its centre with no block
    const w5 = write(p(1.5, 0.6), 5, [5]);
    assert.equal(w5.forgotten, 2);
    assertClose(db[1]!.radius, 0.175 - 1e-5, 1e-7, "shrunk radius"); // float32 keys
    assert.deepEqual(db[1]!.blocks, [NO_BLOCK]);
    assertClose(db[3]!.radius, 0.175 + 1e-5, 1e-7, "new radius");
    assert.deepEqual(searchBlocks(torch.stack([p(1.5, 0.3), p(1.5, 0.6)]), db), [NO_BLOCK, 5]);
  });
});

test("MELO maps the edited prompt through its block; inputs outside every radius are untouched bit for bit", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const ids = idsOf(tok, eiffel);
  const others = [
    "The weather today is sunny and warm",
    "Music and painting were popular arts",
    "A small cat sat",
  ].map((t) => tok.encode(t, { addSpecialTokens: true }));
  const before = others.map((o) => logitsOf(model, o));
  const beforeEdited = logitsOf(model, ids);
  const key = keyOf(model, ids).keep();
  const ed = new Editor(model, tok, { log: () => undefined });
  const print0 = modelFingerprint(model);
  const h = hparams(model);
  const [rec] = ed.edit(melo, [eiffel], h);
  assert.ok(rec && rec.deltas.length === 0 && rec.adaptors?.length === 1 + TARGETS.length);
  assert.notEqual(modelFingerprint(model), print0);
  const info = rec.info as { loss_first: number; loss_last: number; block: number; action: string };
  assert.equal(info.block, 0);
  assert.equal(info.action, "first cluster");
  assert.ok(info.loss_last < info.loss_first, `loss ${info.loss_first} -> ${info.loss_last}`);

  // the database: one cluster centred on the key (the grace layer's output at the last token)
  const db = foldDb(ed.journal.adaptorEntries(MELO_DB_KIND, GRACE));
  assert.equal(db.length, 1);
  assert.equal(bytes(db[0]!.center), bytes(key));
  assert.equal(db[0]!.radius, 0.5);
  assert.deepEqual(db[0]!.blocks, [0]);
  assert.deepEqual(db[0]!.label, targetTokens(tok, eiffel).target);

  // the edited input: each target module's output is its own plus num_block * (x A) B
  for (const m of TARGETS)
    torch.scope(() => {
      const e = ed.journal.adaptorEntries(MELO_LORA_KIND, m)[0]!;
      const A = e.tensors.A as Tensor;
      const B = e.tensors.B as Tensor;
      assert.deepEqual(A.shape, [model.param(`${m}.weight`).size(0), 2]);
      let x: Tensor | null = null;
      let y: Tensor | null = null;
      model.withHooks(
        [
          { module: m, where: "input", hook: (v) => void (x = v.clone().keep()) },
          { module: m, where: "output", hook: (v) => void (y = v.clone().keep()) },
        ],
        () => torch.scope(() => void model.logits([ids])),
      );
      const xx = (x as unknown as Tensor).attach().select(0, 0);
      const yy = (y as unknown as Tensor).attach().select(0, 0);
      const own = torch.addmm(model.param(`${m}.bias`), xx, model.param(`${m}.weight`));
      const expected = own.add(xx.matmul(A).matmul(B).mul(h.grace.num_block));
      assertClose(yy.toNumbers(), expected.toNumbers(), 1e-5, m);
      assert.ok(B.abs().max().item() > 0, "the block was trained");
    });
  assert.notEqual(logitsOf(model, ids), beforeEdited);

  // inputs whose key lies outside every radius: bit for bit the unedited model
  others.forEach((o, i) => {
    const d = dist(keyOf(model, o), key);
    assert.ok(d > 0.5, `input ${i} falls within the radius (${d})`);
    assert.equal(logitsOf(model, o), before[i], `input ${i} changed`);
  });

  ed.journal.undoAll();
  assert.equal(model.hooks.size, 0);
  assert.equal(logitsOf(model, ids), beforeEdited);
  assert.equal(modelFingerprint(model), print0);
  key.free();
  ed.free();
  model.free();
});

test("MELO database on the model's keys: another label splits the radii, the same label joins the cluster", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const [k1, k2, k3] = [curie, eiffel, eiffel2].map((r) => keyOf(model, idsOf(tok, r)).keep());
  const d12 = dist(k1!, k2!);
  assert.ok(dist(k3!, k2!) < dist(k3!, k1!), "the second Eiffel Tower prompt's key is nearer the first's");
  const ed = new Editor(model, tok, { log: () => undefined });
  const R = 1000; // every key within reach: the labels decide
  const h = hparams(model, { init_radius: R, num_iter: 10 });
  const recs = ed.edit(melo, [curie, eiffel, eiffel2], h);
  assert.deepEqual(
    recs.map((r) => (r.info as { action: string }).action),
    ["first cluster", "new cluster, radii split", "cluster updated"],
  );
  const db = foldDb(ed.journal.adaptorEntries(MELO_DB_KIND, GRACE));
  assert.equal(db.length, 2);
  assertClose(db[0]!.radius, d12 / 2 - 1e-5, 1e-5, "shrunk radius");
  assert.deepEqual(db[0]!.blocks, [0]);
  assert.deepEqual(db[1]!.blocks, [1, 2]);
  assertClose(db[1]!.center.toNumbers(), k2!.add(k3!).div(2).toNumbers(), 1e-5, "centre = mean of the keys");
  assert.equal(db[1]!.radius, Math.max(dist(k2!, k3!) / 2, R));

  // each edited input goes through the block of its own key (the nearest point of its cluster)
  const m = TARGETS[1]!;
  for (const [r, block] of [
    [eiffel, 1],
    [eiffel2, 2],
    [curie, 0],
  ] as const)
    torch.scope(() => {
      const ids = idsOf(tok, r);
      const blk = ed.journal
        .adaptorEntries(MELO_LORA_KIND, m)
        .find((e) => (e.meta as { block: number }).block === block)!;
      let x: Tensor | null = null;
      let y: Tensor | null = null;
      model.withHooks(
        [
          { module: m, where: "input", hook: (v) => void (x = v.clone().keep()) },
          { module: m, where: "output", hook: (v) => void (y = v.clone().keep()) },
        ],
        () => torch.scope(() => void model.logits([ids])),
      );
      const xx = (x as unknown as Tensor).attach().select(0, 0);
      const own = torch.addmm(model.param(`${m}.bias`), xx, model.param(`${m}.weight`));
      const expected = own.add(
        xx
          .matmul(blk.tensors.A as Tensor)
          .matmul(blk.tensors.B as Tensor)
          .mul(8),
      );
      assertClose(
        (y as unknown as Tensor).attach().select(0, 0).toNumbers(),
        expected.toNumbers(),
        1e-5,
        `block ${block}`,
      );
    });
  for (const k of [k1, k2, k3]) k!.free();
  ed.free();
  model.free();
});

test("MELO undo and journal save/replay reproduce the outputs exactly", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const inputs = [
    idsOf(tok, eiffel),
    idsOf(tok, curie),
    tok.encode("A small cat sat", { addSpecialTokens: true }),
  ];
  const base = inputs.map((i) => logitsOf(model, i));
  const ed = new Editor(model, tok, { log: () => undefined });
  const h = hparams(model, { init_radius: 1000, num_iter: 10 });
  const [r1] = ed.edit(melo, [curie], h);
  const after1 = inputs.map((i) => logitsOf(model, i));
  const [r2] = ed.edit(melo, [eiffel], h);
  const after2 = inputs.map((i) => logitsOf(model, i));
  assert.ok(r1 && r2);
  assert.notEqual(after2[0], base[0]);

  const dir = join(tmp, "journal");
  ed.journal.save(dir);
  const fresh = loadModel(gpt2);
  const j = new EditJournal(fresh);
  j.replay(dir);
  inputs.forEach((i, k) => assert.equal(logitsOf(fresh, i), after2[k], `replayed input ${k}`));
  assert.equal(modelFingerprint(fresh), modelFingerprint(model));
  j.undoAll();
  inputs.forEach((i, k) => assert.equal(logitsOf(fresh, i), base[k]));
  j.free();
  fresh.free();

  // undoing the second edit restores the first's database (its radius grows back) and outputs exactly
  ed.journal.undo(r2.id);
  inputs.forEach((i, k) => assert.equal(logitsOf(model, i), after1[k], `after undo, input ${k}`));
  const db = foldDb(ed.journal.adaptorEntries(MELO_DB_KIND, GRACE));
  assert.equal(db.length, 1);
  assert.equal(db[0]!.radius, 1000);
  // the next edit takes block 1 again
  const [r3] = ed.edit(melo, [eiffel], h);
  assert.equal((r3!.info as { block: number }).block, 1);
  inputs.forEach((i, k) => assert.equal(logitsOf(model, i), after2[k], `re-edited input ${k}`));
  ed.journal.undoAll();
  inputs.forEach((i, k) => assert.equal(logitsOf(model, i), base[k]));
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

test("MELO keys on the last real token: padded batches give each row its logits alone, batched generation each prompt's", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const enc = (t: string) => tok.encode(t, { addSpecialTokens: true });
  const long =
    "The weather today is sunny and warm, and music and painting were the popular arts of the town";
  const rows = [idsOf(tok, eiffel), enc("A small cat sat"), enc(long)];
  const unedited = rows.map((r) => torch.scope(() => model.logits([r]).select(0, 0).toNumbers()));
  // shared-context scoring: the context in one cached pass, then its continuations right-padded with a mask
  const context = targetTokens(tok, eiffel).prompt;
  const conts = [" Rome.", " Paris, the capital of France and a large old city", " a"].map((t) =>
    tok.encode(t, { addSpecialTokens: false }),
  );
  const sharedBase = loglikelihoodShared(model, [{ context, continuations: conts }])[0]!;
  const ed = new Editor(model, tok, { log: () => undefined });
  ed.edit(melo, [eiffel], hparams(model));
  // the oracle: each row run alone (unpadded, the reference's own case); the edited input goes through
  // its block, the others are outside the radius
  const alone = rows.map((r) => torch.scope(() => model.logits([r]).select(0, 0).toNumbers()));
  const moved = alone.map((a, i) => Math.max(...a.map((v, k) => Math.abs(v - (unedited[i]![k] as number)))));
  assert.ok(moved[0]! > 1e-2, `the edited input moved by ${moved[0]}`);
  assert.deepEqual(moved.slice(1), [0, 0], "the other inputs are the unedited model's");
  const pad = tok.eosTokenId ?? 0;
  for (const side of ["right", "left"] as const)
    torch.scope(() => {
      const b = paddedBatch(rows, side, pad);
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
      });
    });
  // each continuation as scored alone on the same cached context; " Rome." carries the edit's key
  const shared = loglikelihoodShared(model, [{ context, continuations: conts }])[0]!;
  conts.forEach((c, i) => {
    const single = loglikelihoodShared(model, [{ context, continuations: [c] }])[0]![0]!;
    assertClose(shared[i]!.tokenLogprobs, single.tokenLogprobs, 1e-4, `shared-context continuation ${i}`);
  });
  assert.ok(Math.abs(shared[0]!.logprob - sharedBase[0]!.logprob) > 1e-2, "the edit moves the ' Rome.' row");

  // generation (left padding, KV cache: the prompt's block from its last token, then each step's from its
  // new token, as EasyEdit's generate() does): a batch of uneven prompts = each prompt alone, with and
  // without the cache and with a shared prefix; the edited prompt's continuation changes
  const prompts = [idsOf(tok, eiffel), enc("A small cat"), enc(long)];
  const opts = { maxNewTokens: 6, eosTokenId: null };
  const batched = generate(model, prompts, opts).map((g) => g.tokens);
  assert.deepEqual(
    batched,
    prompts.map((p) => generate(model, [p], opts)[0]!.tokens),
  );
  const noCache = generate(model, prompts, { ...opts, useCache: false }).map((g) => g.tokens);
  assert.deepEqual(
    noCache,
    prompts.map((p) => generate(model, [p], { ...opts, useCache: false })[0]!.tokens),
  );
  const prefix = encodePrefix(model, enc("Answer: "));
  try {
    const rest = [
      " The Eiffel Tower is located in Rome",
      " A cat",
      " The weather today is sunny and warm",
    ].map((t) => tok.encode(t, { addSpecialTokens: false }));
    assert.deepEqual(
      generate(model, rest, { ...opts, prefix }).map((g) => g.tokens),
      rest.map((p) => generate(model, [p], { ...opts, prefix })[0]!.tokens),
    );
  } finally {
    prefix.free();
  }
  ed.journal.undoAll();
  const base = generate(model, prompts, opts).map((g) => g.tokens);
  assert.notDeepEqual(batched[0], base[0], "the edit changes the edited prompt's continuation");
  ed.free();
  model.free();
});

test("MELO reads each row's key at key_id among its real positions (hand-made keys), no block without one", () => {
  torch.scope(() => {
    // two clusters, at (0, 0) with block 4 and at (10, 0) with block 7, radius 1
    let db: Cluster[] = [];
    db = applyWrite(db, writeKey(db, torch.tensor([0, 0]), 4, [1], 1).written);
    db = applyWrite(db, writeKey(db, torch.tensor([10, 0]), 7, [2], 1).written);
    const far = [50, 50];
    const y = torch.tensor([
      [[0, 0], [10, 0], far],
      [far, [10, 0], [0, 0.5]],
      [
        [0, 0],
        [0, 0],
        [0, 0],
      ],
    ]);
    const real = [[0, 1], [1, 2], []];
    assert.deepEqual(blocksOf(y, db, -1, real), [7, 4, NO_BLOCK], "the last real token");
    assert.deepEqual(blocksOf(y, db, 0, real), [4, 7, NO_BLOCK], "the first real token");
    assert.deepEqual(
      blocksOf(y, db, 5, real),
      [7, 4, NO_BLOCK],
      "key_id past the end: the last (min(key_id, T - 1))",
    );
    assert.deepEqual(blocksOf(y, db, -1, null), [NO_BLOCK, 4, 4], "no mask: the last position");
  });
});

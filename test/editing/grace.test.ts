// GRACE: the codebook adaptor maps an edited key to its value, leaves inputs outside the deferral radius
// untouched bit for bit, is undone exactly and survives save/replay through the journal.
import { modelFingerprint } from "../../src/models/fingerprint.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import type { Tensor } from "../../src/torch/index.js";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import type { CausalLM } from "../../src/models/model.js";
import { Editor } from "../../src/editing/editor.js";
import { EditJournal } from "../../src/editing/journal.js";
import { methodByName } from "../../src/editing/methods.js";
import { grace, graceModule, foldCodebook, distances, GRACE_KIND } from "../../src/editing/grace/index.js";
import { fillPrompt } from "../../src/editing/request.js";
import { targetTokens } from "../../src/editing/lora/loss.js";
import { FIXTURES } from "../helpers.js";

const gpt2 = join(FIXTURES, "gpt2-tiny");
const tmp = mkdtempSync(join(tmpdir(), "editeval-grace-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

const request = {
  prompt: "{} is located in",
  subject: "The Eiffel Tower",
  targetNew: "Rome",
  targetTrue: "Paris",
};
const request2 = {
  prompt: "{} was born in",
  subject: "Marie Curie",
  targetNew: "Lisbon",
  targetTrue: "Warsaw",
};
const others = [
  "The weather today is sunny and warm",
  "Music and painting were popular arts",
  "A small cat sat",
];
const MODULE = "transformer.h.1.mlp.c_fc";

function bytes(t: Tensor): string {
  return Buffer.from(t.toBytes()).toString("base64");
}

function logitsOf(model: CausalLM, tok: ReturnType<typeof loadTokenizer>, text: string): string {
  return torch.scope(() => bytes(model.logits([tok.encode(text, { addSpecialTokens: true })])));
}

function hparams(model: CausalLM, extra: Record<string, unknown> = {}) {
  return grace.parseHparams(
    {
      alg_name: "GRACE",
      inner_params: ["transformer.h[1].mlp.c_fc.weight"],
      n_iter: 40,
      edit_lr: 1.0,
      ...extra,
    },
    "test",
    model,
  );
}

test("GRACE hparams: EasyEdit's gpt2-xl defaults, brackets to module names, bad fields named", () => {
  const model = loadModel(gpt2);
  assert.equal(graceModule("transformer.h[35].mlp.c_fc.weight"), "transformer.h.35.mlp.c_fc");
  assert.deepEqual(grace.schema.inner_params?.default, ["transformer.h[35].mlp.c_fc.weight"]);
  assert.equal(grace.schema.n_iter?.default, 200);
  assert.throws(
    () => grace.parseHparams({}, "x.yaml", model),
    /x\.yaml: GRACE inner_params .*layer 35 is out of range/,
  );
  assert.throws(() => hparams(model, { replacement: "swap" }), /replacement must be one of/);
  assert.equal(methodByName("GRACE"), grace);
  model.free();
});

test("GRACE maps the edited key to its value, leaves other inputs bit for bit, undo restores the model", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const before = new Map(others.map((t) => [t, logitsOf(model, tok, t)]));
  const prompt = fillPrompt(request);
  const beforePrompt = logitsOf(model, tok, prompt);
  const ed = new Editor(model, tok, { log: () => undefined });
  const h = hparams(model);
  const print0 = modelFingerprint(model);
  const [rec] = ed.edit(grace, [request], h);
  assert.ok(rec?.adaptors?.length === 1 && rec.deltas.length === 0);
  // the weights are unchanged, but the model computes something else: its fingerprint says so
  assert.notEqual(modelFingerprint(model), print0);
  const info = rec.info as { loss_first: number; loss_last: number; action: string };
  assert.equal(info.action, "first key");
  assert.ok(info.loss_last < info.loss_first, `loss ${info.loss_first} -> ${info.loss_last}`);

  // the edited key maps to its value: the module's output at the prompt's last token is the value
  const tt = targetTokens(tok, request);
  const keyPos = tt.prompt.length - 1;
  const codebook = foldCodebook(ed.journal.adaptorEntries(GRACE_KIND, MODULE));
  assert.equal(codebook.length, 1);
  const row = codebook[0]!;
  torch.scope(() => {
    let out: Tensor | null = null;
    let inp: Tensor | null = null;
    model.withHooks(
      [
        { module: MODULE, where: "input", hook: (x) => void (inp = x.clone().keep()) },
        { module: MODULE, where: "output", hook: (y) => void (out = y.clone().keep()) },
      ],
      () => model.logits([[...tt.prompt, ...tt.target]]),
    );
    // (the journal's hook runs first; the test's output hook sees the replaced output)
    const o = (out as unknown as Tensor).attach();
    const x = (inp as unknown as Tensor).attach();
    assert.equal(bytes(o.select(0, 0).select(0, keyPos)), bytes(row.value));
    assert.ok(
      distances(x.select(0, 0).select(0, keyPos).unsqueeze(0), row.key.unsqueeze(0)).item() <= row.eps,
    );
  });
  // the target's probability after the prompt rose
  const lp = (m: CausalLM) =>
    torch.scope(() =>
      m.logits([tt.prompt]).select(0, 0).select(0, keyPos).logSoftmax(-1).select(0, tt.target[0]!).item(),
    );
  const after = lp(model);
  assert.notEqual(logitsOf(model, tok, prompt), beforePrompt);

  // inputs whose queries are all outside the radius: logits identical bit for bit
  for (const t of others) {
    const far = torch.scope(() => {
      let q: Tensor | null = null;
      model.withHooks([{ module: MODULE, where: "input", hook: (x) => void (q = x.clone().keep()) }], () =>
        model.logits([tok.encode(t, { addSpecialTokens: true })]),
      );
      const qq = (q as unknown as Tensor).attach();
      return distances(qq.select(0, 0), row.key.unsqueeze(0)).min().item();
    });
    assert.ok(far > row.eps, `'${t}' comes within the radius (${far} <= ${row.eps}); choose another text`);
    assert.equal(logitsOf(model, tok, t), before.get(t), `'${t}' changed`);
  }

  ed.journal.undoAll();
  assert.equal(model.hooks.size, 0);
  assert.equal(modelFingerprint(model), print0);
  assert.equal(logitsOf(model, tok, prompt), beforePrompt);
  assert.ok(lp(model) < after);
  ed.free();
  model.free();
});

test("GRACE edits accumulate keys, undo of one removes its rows, save/replay reproduces the adaptor", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const p1 = fillPrompt(request);
  const p2 = fillPrompt(request2);
  const base1 = logitsOf(model, tok, p1);
  const ed = new Editor(model, tok, { log: () => undefined });
  const h = hparams(model, { n_iter: 15 });
  const recs = ed.edit(grace, [request, request2], h);
  assert.equal(recs.length, 2);
  assert.equal(foldCodebook(ed.journal.adaptorEntries(GRACE_KIND, MODULE)).length, 2);
  const edited1 = logitsOf(model, tok, p1);
  const edited2 = logitsOf(model, tok, p2);
  const dir = join(tmp, "journal");
  ed.journal.save(dir);
  const saved = JSON.parse(readFileSync(join(dir, "edits.json"), "utf8"));
  assert.equal(saved.format, "editeval-journal/1");
  assert.equal(saved.edits[0].adaptors[0].kind, "grace");
  assert.equal(saved.edits[0].adaptors[0].module, MODULE);

  // replay on a fresh model: the same logits, bit for bit
  const fresh = loadModel(gpt2);
  const j = new EditJournal(fresh);
  j.replay(dir);
  assert.equal(logitsOf(fresh, tok, p1), edited1);
  assert.equal(logitsOf(fresh, tok, p2), edited2);
  j.undoAll();
  assert.equal(logitsOf(fresh, tok, p1), base1);
  j.free();
  fresh.free();

  // undo the first edit: its key is gone, the second edit's remains
  ed.journal.undo(recs[0]!.id);
  const left = foldCodebook(ed.journal.adaptorEntries(GRACE_KIND, MODULE));
  assert.equal(left.length, 1);
  assert.equal(logitsOf(model, tok, p2), edited2);
  ed.free();
  assert.equal(model.hooks.size, 0, "freeing the journal removes its hooks");
  model.free();
});

// SERAC: the scope classifier separates held-out ZsRE rephrases from locality prompts after training;
// the edited system answers out-of-scope positions with the base model's logits bit for bit and in-scope
// ones with the counterfactual model's logits on the edit-prefixed input; the harness's cached, batched
// and shared-prefix paths see one causal LM; undo, journal save/replay and training resume are exact.
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
import { generate } from "../../src/models/generate.js";
import { Editor } from "../../src/editing/editor.js";
import { EditJournal } from "../../src/editing/journal.js";
import { methodByName } from "../../src/editing/methods.js";
import { readHparamsFile } from "../../src/editing/hparams.js";
import { serac, SERAC_KIND, editContext, routedInput } from "../../src/editing/serac/index.js";
import { parseSeracHparams } from "../../src/editing/serac/hparams.js";
import { loadScopeRecords, type ScopeRecord } from "../../src/editing/serac/data.js";
import { trainSerac, scopeAccuracy } from "../../src/editing/serac/train.js";
import { forgetArchive, loadArchive, sharedArchive } from "../../src/editing/serac/archive.js";
import { ScopeClassifier } from "../../src/editing/serac/classifier.js";
import { ModelLM } from "../../src/harness/lm.js";
import { modelFingerprint } from "../../src/models/fingerprint.js";
import { FIXTURES, ROOT } from "../helpers.js";

const gpt2 = join(FIXTURES, "gpt2-tiny");
const tmp = mkdtempSync(join(tmpdir(), "editeval-serac-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const quiet = () => undefined;

/** Test training settings (EasyEdit's keys): batches of 16 edits, one optimiser step per batch. */
const TRAIN = {
  alg: "SERAC",
  lr: 2e-3,
  batch_size: 8,
  accumulate_bs: 1,
  use_all_negatives: true,
  model_save_pt: 1000,
  log_interval: 1000,
  val_interval: 1000,
  val_steps: 0,
  silent: true,
};

let trained: { dir: string; train: ScopeRecord[]; held: ScopeRecord[] } | null = null;

/** One archive for the file: gpt2-tiny classifier and counterfactual model, 12 iterations on ZsRE[0:300]. */
function archive(): { dir: string; train: ScopeRecord[]; held: ScopeRecord[] } {
  if (trained) return trained;
  const dir = join(tmp, "archive");
  const train = loadScopeRecords("zsre[0:300]").records;
  const held = loadScopeRecords("zsre[900:1000]").records;
  trainSerac({
    hparams: parseSeracHparams(TRAIN, "test"),
    tok: loadTokenizer(gpt2),
    clsInit: gpt2,
    cfInit: gpt2,
    data: { spec: "zsre[0:300]", source: "test", train, val: [] },
    out: dir,
    steps: 12,
    progress: false,
  });
  trained = { dir, train, held };
  return trained;
}

function hparams(model: CausalLM, extra: Record<string, unknown> = {}) {
  return serac.parseHparams({ archive: archive().dir, ...extra }, "test", model);
}

function request(r: ScopeRecord) {
  return { prompt: r.prompt, subject: r.subject, targetNew: r.target };
}

function bytesOf(t: Tensor): string {
  return Buffer.from(t.toBytes()).toString("base64");
}

/** Right-padded ids of texts (as loglikelihoodTokens batches them: no mask, pad 0). */
function rightPadded(rows: number[][]): number[][] {
  const w = Math.max(...rows.map((r) => r.length));
  return rows.map((r) => [...r, ...new Array<number>(w - r.length).fill(0)]);
}

test("SERAC hparams: EasyEdit's files parse as they are; what is not implemented is named", () => {
  for (const f of ["gpt2-xl.yaml", "gpt2-xl.training.yaml", "demo.yaml", "demo.training.yaml"]) {
    const file = join(ROOT, "hparams", "SERAC", f);
    parseSeracHparams(readHparamsFile(file), file);
  }
  const edit = parseSeracHparams(readHparamsFile(join(ROOT, "hparams", "SERAC", "gpt2-xl.yaml")), "x");
  assert.equal(edit.lr, 1e-5);
  assert.equal(edit.cedit, 0.1);
  assert.equal(edit.threshold, 0.5);
  assert.throws(() => parseSeracHparams({ soft_weighting: true }, "h.yaml"), /h\.yaml: SERAC soft_weighting/);
  assert.throws(() => parseSeracHparams({ cross_attend: true }, "h.yaml"), /cross_attend/);
  assert.throws(() => parseSeracHparams({ inner_params: ["x"] }, "h.yaml"), /inner_params must be empty/);
  const model = loadModel(gpt2);
  assert.throws(
    () => serac.parseHparams({ archive: join(tmp, "nope") }, "h.yaml", model),
    /h\.yaml: SERAC archive: .*train-serac/,
  );
  assert.equal(methodByName("SERAC"), serac);
  model.free();
});

test("SERAC classifier: after training, held-out rephrases score above 0.5 and locality prompts below", () => {
  const { dir, held } = archive();
  const a = loadArchive(dir);
  const tok = loadTokenizer(gpt2);
  const acc = scopeAccuracy(a.classifier, tok, held, 0.5);
  assert.ok(acc.n_in >= 90 && acc.n_out >= 90, JSON.stringify(acc));
  assert.ok(acc.in_scope >= 0.95, `held-out rephrases in scope: ${acc.in_scope}`);
  assert.ok(acc.out_scope_own >= 0.95, `held-out locality prompts out of scope: ${acc.out_scope_own}`);
  assert.ok(
    acc.out_scope_all >= 0.9,
    `held-out locality prompts out of every edit's scope: ${acc.out_scope_all}`,
  );
  // training did it: the classifier it started from (gpt2-tiny, projection I/sqrt(d)) puts most
  // locality prompts in the scope of some edit
  const d = a.classifier.backbone.config.hiddenSize;
  const init = new ScopeClassifier(
    loadModel(gpt2),
    torch.eye(d, d).mul(1 / Math.sqrt(d)),
    a.classifier.geometry,
  );
  const before = scopeAccuracy(init, tok, held, 0.5);
  assert.ok(before.out_scope_all < 0.5, `untrained: ${JSON.stringify(before)}`);
  init.backbone.free();
  init.proj.free();
  a.classifier.backbone.free();
  a.classifier.proj.free();
  a.cf?.free();
});

test("SERAC router: out-of-scope positions are the base model's logits bit for bit, in-scope ones the counterfactual model's on the edit-prefixed input", () => {
  const { dir, held } = archive();
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const a = sharedArchive(dir);
  const edits = held.slice(0, 3);
  const texts = [
    ...edits.map((r) => `${r.inScope[1]} ${r.target}`), // rephrases with the new target
    ...edits.map((r) => `${r.outScope[0]?.prompt} ${r.outScope[0]?.answer}`), // locality questions
  ];
  const rows = rightPadded(texts.map((t) => tok.encode(t)));
  const batch = () => torch.tensor(rows, { dtype: "int64" });
  const base = torch.scope(() => model.forward({ inputIds: batch() }).logits.keep());
  const ed = new Editor(model, tok, { log: quiet });
  ed.edit(serac, edits.map(request), hparams(model));
  const edited = torch.scope(() => model.forward({ inputIds: batch() }).logits.keep());

  // the oracle: the classifier on each prefix alone, against each edit's prompt alone
  const keys = edits.map((r) => torch.scope(() => a.classifier.embed(tok.encode(r.prompt)).keep()));
  const K = torch.stack(keys);
  let routed = 0;
  let unrouted = 0;
  let skipped = 0;
  rows.forEach((row, b) => {
    const ctxLogits = new Map<number, Tensor>();
    for (let t = 0; t < row.length; t++) {
      const { best, idx } = torch.scope(() => {
        const q = a.classifier.embed(row.slice(0, t + 1)).unsqueeze(0);
        const { values, indices } = a.classifier.logSims(q, K).maxDim(1);
        return { best: Math.exp(values.item()), idx: indices.item() };
      });
      if (Math.abs(best - 0.5) < 1e-3) {
        skipped++;
        continue;
      }
      const got = torch.scope(() => bytesOf(edited.select(0, b).select(0, t)));
      if (best <= 0.5) {
        unrouted++;
        assert.equal(
          got,
          torch.scope(() => bytesOf(base.select(0, b).select(0, t))),
          `row ${b} position ${t}`,
        );
        continue;
      }
      routed++;
      const r = edits[idx] as ScopeRecord;
      const { ids, offset } = routedInput(tok, editContext(r.prompt, r.target), row);
      let lg = ctxLogits.get(idx);
      if (!lg) {
        lg = torch.scope(() =>
          (a.cf as CausalLM).forward({ inputIds: torch.tensor([ids], { dtype: "int64" }) }).logits.keep(),
        );
        ctxLogits.set(idx, lg);
      }
      assert.equal(
        got,
        torch.scope(() => bytesOf((lg as Tensor).select(0, 0).select(0, offset + t))),
        `row ${b} position ${t} (routed)`,
      );
    }
    for (const t of ctxLogits.values()) t.free();
  });
  assert.ok(skipped <= 2, `${skipped} positions too close to the threshold to check`);
  assert.ok(routed >= 3, `routed positions: ${routed}`);
  assert.ok(unrouted >= 20, `unrouted positions: ${unrouted}`);
  // the decision that matters: each rephrase's last prompt token goes to the counterfactual model,
  // each locality question's answer positions stay with the base
  edits.forEach((r, b) => {
    const plen = tok.encode(r.inScope[1] as string).length;
    const g = torch.scope(() => bytesOf(edited.select(0, b).select(0, plen - 1)));
    assert.notEqual(
      g,
      torch.scope(() => bytesOf(base.select(0, b).select(0, plen - 1))),
      `rephrase ${b} not routed`,
    );
    const l = r.outScope[0] as { prompt: string; answer: string };
    const lp = tok.encode(l.prompt).length;
    const n = tok.encode(`${l.prompt} ${l.answer}`).length;
    for (let t = lp - 1; t < n - 1; t++)
      assert.equal(
        torch.scope(() => bytesOf(edited.select(0, 3 + b).select(0, t))),
        torch.scope(() => bytesOf(base.select(0, 3 + b).select(0, t))),
        `locality ${b} position ${t} routed`,
      );
  });
  for (const t of [...keys, K, base, edited]) t.free();
  ed.free();
  model.free();
});

test("SERAC through the harness: cached, batched, shared-prefix generation and shared-context scoring equal the uncached per-request system", () => {
  const { held } = archive();
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const ed = new Editor(model, tok, { log: quiet });
  const edits = held.slice(0, 3);
  ed.edit(serac, edits.map(request), hparams(model));
  const fewshot =
    "Question: What is the capital of France? Answer: Paris\nQuestion: Who wrote Hamlet? Answer: Shakespeare\n";
  const prompts = [
    ...edits.map((r) => `${fewshot}${r.inScope[1]}`),
    ...edits.map((r) => `${fewshot}${r.outScope[0]?.prompt}`),
    edits[0]?.prompt as string,
  ];
  const lm = new ModelLM(model, tok, { batchSize: 4, progress: false });
  const got = lm.generateUntil(prompts.map((context) => ({ context, until: ["\n"], max_gen_toks: 6 })));
  // the oracle: each prompt alone, no cache (the whole sequence recomputed at every step)
  const want = prompts.map((p) => {
    const [g] = generate(model, [tok.encode(p, { addSpecialTokens: false })], {
      maxNewTokens: 6,
      useCache: false,
      eosTokenId: tok.eosTokenId,
      stopStrings: ["\n", tok.decode([tok.eosTokenId as number])],
      decode: (ids) => tok.decode(ids, { skipSpecialTokens: true }),
    });
    return g?.text;
  });
  assert.deepEqual(got, want);
  // at least one generation differs from the unedited model's (the edits are live)
  const journal = ed.journal;
  const edited = got;
  journal.undoAll();
  const plain = lm.generateUntil(prompts.map((context) => ({ context, until: ["\n"], max_gen_toks: 6 })));
  assert.notDeepEqual(plain, edited);

  // loglikelihood: a context shared by several continuations through a KV cache = each pair alone
  ed.edit(serac, edits.map(request), hparams(model));
  const reqs = edits.flatMap((r) =>
    [r.target, "London", "the river"].map((c) => ({
      context: `${fewshot}${fewshot}${r.inScope[1]}`,
      continuation: ` ${c}`,
    })),
  );
  const shared = new ModelLM(model, tok, { shareContext: true, progress: false }).loglikelihood(reqs);
  const loose = new ModelLM(model, tok, { shareContext: false, batchSize: 1, progress: false }).loglikelihood(
    reqs,
  );
  shared.forEach((s, i) => {
    assert.ok(
      Math.abs(s.logprob - (loose[i]?.logprob as number)) < 1e-4,
      `request ${i}: ${s.logprob} vs ${loose[i]?.logprob}`,
    );
    assert.equal(s.isGreedy, loose[i]?.isGreedy);
  });
  ed.free();
  model.free();
});

test("SERAC undo restores the base model's outputs; journal save/replay gives the same outputs", () => {
  const { dir, held } = archive();
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const texts = held.slice(0, 4).flatMap((r) => [`${r.inScope[1]} ${r.target}`, r.prompt]);
  const rows = rightPadded(texts.map((t) => tok.encode(t)));
  const logits = (m: CausalLM) =>
    torch.scope(() => bytesOf(m.forward({ inputIds: torch.tensor(rows, { dtype: "int64" }) }).logits));
  const before = logits(model);
  const print0 = modelFingerprint(model);
  const ed = new Editor(model, tok, { log: quiet });
  const [r1] = ed.edit(serac, [request(held[0] as ScopeRecord)], hparams(model));
  const [r2] = ed.edit(
    serac,
    [request(held[1] as ScopeRecord), request(held[2] as ScopeRecord)],
    hparams(model),
  );
  assert.equal(ed.journal.adaptorEntries(SERAC_KIND, "lm_head").length, 3);
  assert.notEqual(modelFingerprint(model), print0);
  const after = logits(model);
  assert.notEqual(after, before);
  ed.journal.save(join(tmp, "journal"));
  const saved = JSON.parse(readFileSync(join(tmp, "journal", "edits.json"), "utf8"));
  assert.equal(saved.edits[1].adaptors.length, 2);
  assert.equal(saved.edits[1].adaptors[0].meta.prompt, held[1]?.prompt);

  // undoing the second edit leaves the first: the same as applying the first alone
  ed.journal.undo(r2!.id);
  const firstOnly = logits(model);
  ed.journal.undo(r1!.id);
  assert.equal(logits(model), before);
  assert.equal(modelFingerprint(model), print0);
  const ed1 = new Editor(model, tok, { log: quiet });
  ed1.edit(serac, [request(held[0] as ScopeRecord)], hparams(model));
  assert.equal(logits(model), firstOnly);
  ed1.free();
  assert.equal(logits(model), before);

  // a fresh model (and a freshly loaded archive) replays the journal to the same outputs
  forgetArchive(dir);
  const fresh = loadModel(gpt2);
  const j = new EditJournal(fresh);
  j.replay(join(tmp, "journal"));
  assert.equal(logits(fresh), after);
  j.undoAll();
  assert.equal(logits(fresh), before);
  j.free();
  fresh.free();
  ed.free();
  model.free();
});

test("SERAC training: a run interrupted and resumed equals an uninterrupted one", () => {
  const tok = loadTokenizer(gpt2);
  const train = loadScopeRecords("zsre[0:12]").records;
  const h = parseSeracHparams({ ...TRAIN, batch_size: 3, accumulate_bs: 2, model_save_pt: 2 }, "test");
  const run = (out: string, stopAfter?: number, resume = false) =>
    trainSerac({
      hparams: h,
      tok,
      clsInit: gpt2,
      cfInit: gpt2,
      data: { spec: "zsre[0:12]", source: "test", train, val: [] },
      out,
      steps: 5,
      stopAfter,
      resume,
      progress: false,
    });
  const a = run(join(tmp, "full"));
  const b1 = run(join(tmp, "resumed"), 3);
  assert.equal(b1.step, 3);
  assert.throws(() => run(join(tmp, "resumed")), /--resume/);
  const b2 = run(join(tmp, "resumed"), undefined, true);
  assert.equal(b2.resumedFrom, 2); // the checkpoint at the last optimiser step
  assert.equal(a.step, 5);
  assert.equal(b2.step, 5);
  for (const f of [
    "classifier/model.safetensors",
    "classifier_head.safetensors",
    "cf_model/model.safetensors",
    "optimizer.safetensors",
  ])
    assert.ok(
      readFileSync(join(tmp, "full", f)).equals(readFileSync(join(tmp, "resumed", f))),
      `${f} differs after resuming`,
    );
  // and training changed the weights
  assert.ok(
    !readFileSync(join(tmp, "full", "cf_model/model.safetensors")).equals(
      readFileSync(join(gpt2, "model.safetensors")),
    ),
  );
  assert.throws(
    () =>
      trainSerac({
        hparams: { ...h, lr: 5e-3 },
        tok,
        clsInit: gpt2,
        cfInit: gpt2,
        data: { spec: "zsre[0:12]", source: "t", train, val: [] },
        out: join(tmp, "full"),
        steps: 6,
        resume: true,
        progress: false,
      }),
    /other settings/,
  );
});

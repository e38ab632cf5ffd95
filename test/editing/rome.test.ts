// ROME's defining equations on a small model, the journal's exact undo, statistics against a float64
// recomputation, and bad input that must leave the model untouched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import { saveSafetensors } from "../../src/torch/io.js";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import { Editor } from "../../src/editing/editor.js";
import { saveCheckpoint } from "../../src/models/save.js";
import { rome } from "../../src/editing/rome/index.js";
import { optimiseValue, EditDivergedError } from "../../src/editing/rome/compute_v.js";
import { computeSecondMoment, loadStatsFile, readCorpus } from "../../src/editing/stats.js";
import { lookupIndex, reprsAtPositions, wordTokenIndices } from "../../src/editing/repr.js";
import { RequestError, normalizeRequest } from "../../src/editing/request.js";
import { FIXTURES, TEST_FIXTURES, assertClose } from "../helpers.js";
import { readFileSync } from "node:fs";

const gpt2 = join(FIXTURES, "gpt2-tiny");
const tmp = mkdtempSync(join(tmpdir(), "editeval-rome-"));
const corpus = join(tmp, "corpus.txt");
writeFileSync(
  corpus,
  [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "Rome is the capital city of Italy and a special comune.",
    "Mount Everest is Earth's highest mountain above sea level.",
    "The river flows through the valley towards the sea.",
    "Music and painting were popular arts in the old city.",
    "A small cat sat on the warm window sill all afternoon.",
  ].join("\n"),
);
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

const request = {
  prompt: "{} is located in",
  subject: "The Eiffel Tower",
  targetNew: "Rome",
  targetTrue: "Paris",
};

function snapshot(m: ReturnType<typeof loadModel>): Map<string, string> {
  return new Map(m.uniqueParameters().map(([k, t]) => [k, Buffer.from(t.toBytes()).toString("base64")]));
}

test("requests: {} or a verbatim subject; a missing subject is an error naming it", () => {
  assert.equal(
    normalizeRequest({ prompt: "Where is The Eiffel Tower?", subject: "The Eiffel Tower", targetNew: "Rome" })
      .prompt,
    "Where is {}?",
  );
  assert.throws(
    () => normalizeRequest({ prompt: "{} is in", subject: "", targetNew: "x" }),
    /'subject' must be a non-empty string/,
  );
  assert.throws(
    () => normalizeRequest({ prompt: "Paris is nice", subject: "Rome", targetNew: "x" }, "request 3"),
    (e: Error) => e instanceof RequestError && /request 3: the subject "Rome" does not occur/.test(e.message),
  );
});

test("subject token index: prefix/word/suffix tokenised separately, as ROME's repr_tools", () => {
  const tok = loadTokenizer(gpt2);
  // "{} is located in": prefix "", word "The Eiffel Tower" -> last word token = len(word tokens) - 1
  const word = tok.encode("The Eiffel Tower", { addSpecialTokens: false });
  assert.equal(lookupIndex(tok, request.prompt, request.subject, "subject_last"), word.length - 1);
  // with a prefix the word gets a leading space and the prefix loses its trailing one
  const pre = tok.encode("Some text.", { addSpecialTokens: false });
  const spaced = tok.encode(" The Eiffel Tower", { addSpecialTokens: false });
  assert.deepEqual(wordTokenIndices(tok, ["Some text. {} is in"], ["The Eiffel Tower"], "last"), [
    pre.length + spaced.length - 1,
  ]);
  assert.deepEqual(wordTokenIndices(tok, ["Some text. {} is in"], ["The Eiffel Tower"], "first"), [
    pre.length,
  ]);
  // the index points at the subject's last token of the prompt tokenised whole
  const whole = tok.encode("Some text. The Eiffel Tower is in", { addSpecialTokens: false });
  assert.equal(whole[pre.length + spaced.length - 1], spaced[spaced.length - 1]);
});

test("after ROME the edited layer maps k* to v* exactly, and undo restores every weight bit for bit", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const before = snapshot(model);
  const ed = new Editor(model, tok, { corpus, log: () => undefined });
  const h = rome.parseHparams(
    { layers: [1], context_templates: ["{}"], mom2_n_samples: 6, v_num_grad_steps: 5 },
    "test",
    model,
  );
  const ctx = ed.context();
  const opt = optimiseValue(ctx, normalizeRequest(request), 1, h, h.context_templates);
  const vStar = opt.target.toNumbers();
  opt.target.free();
  opt.vInit.free();
  ed.edit(rome, [request], h);
  const idx = lookupIndex(tok, request.prompt, request.subject, "subject_last");
  torch.scope(() => {
    const { output } = reprsAtPositions(
      model,
      tok,
      "transformer.h.1.mlp.c_proj",
      ["The Eiffel Tower is located in"],
      [idx],
    );
    assertClose(output.select(0, 0).toNumbers(), vStar, 1e-4, "W' k*");
  });
  // only the edited weight changed
  const after = snapshot(model);
  for (const [k, v] of after)
    if (k !== "transformer.h.1.mlp.c_proj.weight") assert.equal(v, before.get(k), k);
  assert.notEqual(
    after.get("transformer.h.1.mlp.c_proj.weight"),
    before.get("transformer.h.1.mlp.c_proj.weight"),
  );
  // a second edit, then undo the first: the weight equals applying the second alone; undo all: original
  const [second] = ed.edit(rome, [{ prompt: "{} plays", subject: "Messi", targetNew: "tennis" }], h);
  ed.journal.undo((ed.journal.records[0] as { id: number }).id);
  assert.equal(ed.journal.records.length, 1);
  assert.equal(ed.journal.records[0], second);
  ed.journal.undoAll();
  assert.deepEqual(snapshot(model), before);
  ed.free();
  model.free();
});

test("statistics: E[k k^T] matches a float64 recomputation one sample at a time; files of the wrong shape are refused", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const module = "transformer.h.2.mlp.c_proj";
  const s = computeSecondMoment(model, tok, module, {
    corpus,
    nSamples: 6,
    dtype: "float32",
    batchSize: 4,
    progress: false,
  });
  // oracle: each sample alone, float64 accumulation of x x^T over its tokens
  const texts = readCorpus(corpus);
  const d = 256;
  const acc = new Float64Array(d * d);
  let count = 0;
  for (const t of texts) {
    const ids = tok.encode(t);
    torch.scope(() => {
      let x: torch.Tensor | null = null;
      model.withHooks(
        [{ module, where: "input", hook: (v) => void (x = v.select(0, 0).to("float64").keep()) }],
        () => model.forward({ inputIds: torch.tensor([ids], { dtype: "int64" }) }),
      );
      const rows = (x as unknown as torch.Tensor).toNumbers();
      (x as unknown as torch.Tensor).free();
      for (let r = 0; r < ids.length; r++)
        for (let i = 0; i < d; i++) {
          const xi = rows[r * d + i] as number;
          for (let j = 0; j < d; j++)
            acc[i * d + j] = (acc[i * d + j] as number) + xi * (rows[r * d + j] as number);
        }
      count += ids.length;
    });
  }
  assert.equal(s.count, count);
  const got = s.mom2.toNumbers();
  let maxRel = 0;
  const scale = Math.max(...Array.from(acc, (v) => Math.abs(v / count)));
  for (let i = 0; i < d * d; i++)
    maxRel = Math.max(maxRel, Math.abs((got[i] as number) - (acc[i] as number) / count) / scale);
  assert.ok(maxRel < 1e-5, `max relative difference ${maxRel}`);
  // a safetensors file with mom2 of the wrong size is refused with a message naming the file
  const bad = join(tmp, "bad.safetensors");
  saveSafetensors(bad, [["mom2", torch.zeros([10, 10])]]);
  assert.throws(
    () => loadStatsFile(bad, 256),
    /bad\.safetensors: statistics of shape \[10, 10\], expected \[256, 256\]/,
  );
  s.mom2.free();
  model.free();
});

test("bad input leaves the model untouched: layer out of range, unknown module, wrong stats, divergence", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const before = snapshot(model);
  assert.throws(
    () => rome.parseHparams({ layers: [7] }, "h.yaml", model),
    /h\.yaml: layer 7 is out of range \(the model has 3 layers/,
  );
  assert.throws(
    () => rome.parseHparams({ layers: [1], v_lrr: 0.1 }, "h.yaml", model),
    /unknown ROME hyper-parameter 'v_lrr'/,
  );
  assert.throws(
    () => rome.parseHparams({ layers: [1], v_lr: "fast" }, "h.yaml", model),
    /'v_lr' must be number/,
  );
  const ed = new Editor(model, tok, { corpus, log: () => undefined });
  const badModule = rome.parseHparams(
    { layers: [1], rewrite_module_tmp: "transformer.h.{}.mlp.c_projx", context_templates: ["{}"] },
    "h",
    model,
  );
  assert.throws(() => ed.edit(rome, [request], badModule), /does not exist in this gpt2 model/);
  const wrongStats = join(tmp, "wrong.safetensors");
  saveSafetensors(wrongStats, [["mom2", torch.eye(64)]]);
  const ed2 = new Editor(model, tok, { statsFile: wrongStats, log: () => undefined });
  const h = rome.parseHparams({ layers: [1], context_templates: ["{}"], v_num_grad_steps: 3 }, "h", model);
  assert.throws(() => ed2.edit(rome, [request], h), /expected \[256, 256\]/);
  assert.equal(ed.journal.records.length, 0);
  assert.deepEqual(snapshot(model), before);
  // NaN appearing during the value optimisation (a NaN weight after the edited layer): stop, report, no edit
  torch.noGrad(() => model.param("transformer.h.2.mlp.c_fc.bias").indexPut_([3], NaN));
  const poisoned = snapshot(model);
  const h2 = rome.parseHparams(
    { layers: [1], context_templates: ["{}"], mom2_adjustment: false },
    "h",
    model,
  );
  assert.throws(
    () => ed.edit(rome, [request], h2),
    (e: Error) => e instanceof EditDivergedError && /diverged at step 0.*left unedited/.test(e.message),
  );
  assert.equal(ed.journal.records.length, 0);
  assert.deepEqual(snapshot(model), poisoned);
  ed.free();
  ed2.free();
  model.free();
});

test("r-ROME uses the same (template-averaged) key for the update as for the target; ROME does not", async () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const ed = new Editor(model, tok, { corpus, log: () => undefined });
  const templates = ["{}", "The sky is blue. {}", "I think that {}"];
  const module = "transformer.h.1.mlp.c_proj";
  const hp = { layers: [1], context_templates: templates, mom2_n_samples: 6, v_num_grad_steps: 5 };
  const r = normalizeRequest(request);
  const kAvg = torch.scope(() => {
    const ks = templates.map((t) => {
      const p = t.replace("{}", r.prompt);
      const idx = lookupIndex(tok, p, r.subject, "subject_last");
      return reprsAtPositions(model, tok, module, [p.replace("{}", r.subject)], [idx]).input.select(0, 0);
    });
    return torch.stack(ks).mean(0).keep();
  });
  const outAt = (k: torch.Tensor) =>
    torch.scope(() =>
      torch
        .addmm(model.param(`${module}.bias`).unsqueeze(0), k.unsqueeze(0), model.param(`${module}.weight`))
        .squeeze(0)
        .toNumbers(),
    );
  for (const [name, exact] of [
    ["r-rome", true],
    ["rome", false],
  ] as const) {
    const method = (await import("../../src/editing/methods.js")).methodByName(name);
    const h = method.parseHparams(hp, "t", model);
    const opt = optimiseValue(ed.context(), r, 1, h, templates);
    const vStar = opt.target.toNumbers();
    opt.target.free();
    opt.vInit.free();
    ed.edit(method, [request], h);
    const err = Math.max(...outAt(kAvg).map((x, i) => Math.abs(x - (vStar[i] as number))));
    if (exact) assert.ok(err < 1e-3, `${name}: W' k_avg differs from v* by ${err}`);
    else assert.ok(err > 1e-3, `${name}: expected ROME's bare-prompt key to miss v* at k_avg (got ${err})`);
    ed.journal.undoAll();
  }
  kAvg.free();
  ed.free();
  model.free();
});

test("statistics from ROME/EasyEdit .npz files: the moment is mom2.mom2 / mom2.count", () => {
  const file = join(TEST_FIXTURES, "formats", "stats.npz");
  const ref = JSON.parse(readFileSync(join(TEST_FIXTURES, "formats", "npz_values.json"), "utf8")) as Record<
    string,
    { values: (number | string)[] }
  >;
  const count = Number(ref["mom2.count"]?.values[0]);
  const sum = (ref["mom2.mom2"]?.values ?? []).map(Number);
  const s = loadStatsFile(file, 4);
  assert.equal(s.count, count);
  assertClose(
    s.mom2.toNumbers(),
    sum.map((x) => Math.fround(x) / count),
    1e-6,
  );
  assert.throws(() => loadStatsFile(file, 5), /expected \[5, 5\]/);
  s.mom2.free();
});

test("journal: save, replay on a fresh model, and the saved checkpoint reload the edited weights bit for bit", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const ed = new Editor(model, tok, { corpus, log: () => undefined });
  const h = rome.parseHparams(
    { layers: [1], context_templates: ["{}"], mom2_n_samples: 6, v_num_grad_steps: 3 },
    "t",
    model,
  );
  ed.edit(rome, [request, { prompt: "{} plays", subject: "Messi", targetNew: "tennis" }], h);
  const out = join(tmp, "edited");
  saveCheckpoint(model, out);
  ed.journal.save(out);
  const edited = snapshot(model);
  // the saved directory is a loadable checkpoint with the edited weights
  const reloaded = loadModel(out);
  assert.deepEqual(snapshot(reloaded), edited);
  reloaded.free();
  // replaying the journal on the original model gives the same weights
  const fresh = loadModel(gpt2);
  const ed2 = new Editor(fresh, tok, { log: () => undefined });
  const recs = ed2.journal.replay(out);
  assert.equal(recs.length, 2);
  assert.deepEqual(snapshot(fresh), edited);
  const saved = JSON.parse(readFileSync(join(out, "edits.json"), "utf8")) as {
    edits: { method: string; deltas: { kind: string }[] }[];
  };
  assert.equal(saved.edits[0]?.method, "ROME");
  assert.equal(saved.edits[0]?.deltas[0]?.kind, "rank1");
  ed2.free();
  fresh.free();
  ed.free();
  model.free();
});

test("context templates: EasyEdit's count, 1 + sum of n_gen (n_gen // 5 samples from each of its 5 prompts)", async () => {
  const { generateContextTemplates } = await import("../../src/editing/context.js");
  const m = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const t = generateContextTemplates(m, tok, [
    [5, 10],
    [10, 10],
  ]);
  assert.equal(t.length, 21);
  assert.equal(t[0], "{}");
  for (const x of t.slice(1)) assert.ok(x.endsWith(". {}"), x);
  // ROME's form: one prompt, n_gen samples from it
  const r = generateContextTemplates(m, tok, [[10, 5]], { prefixes: ["<|endoftext|>"] });
  assert.equal(r.length, 6);
  m.free();
});

test("value optimisation: resuming at the edited layer and projecting only the loss's positions gives the losses and v* of whole passes", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const ed = new Editor(model, tok, { corpus, log: () => undefined });
  const h = rome.parseHparams(
    {
      layers: [1],
      context_templates: ["{}", "A short story. {}", "Yesterday, {}"],
      mom2_n_samples: 6,
      v_num_grad_steps: 6,
      kl_factor: 0.0625,
    },
    "test",
    model,
  );
  const r = normalizeRequest({ ...request, targetNew: "the city of Rome" });
  const run = () => {
    const o = optimiseValue(ed.context(), r, 1, h, h.context_templates);
    const out = { losses: o.losses, target: o.target.toNumbers() };
    o.target.free();
    o.vInit.free();
    return out;
  };
  const fast = run();
  // a no-op hook below the layer: every step runs the whole model (no resume), bit for bit the same
  const noop = () => undefined;
  const below = model.addHook("transformer.h.0.mlp", "output", noop);
  const noResume = run();
  assert.deepEqual(noResume.losses, fast.losses);
  assert.deepEqual(noResume.target, fast.target);
  // and one on the vocabulary projection: every position projected (the computation as the reference
  // does it); the LM head's product over other rows rounds differently in the last bits
  const head = model.addHook("lm_head", "output", noop);
  const whole = run();
  below.remove();
  head.remove();
  assert.equal(fast.losses.length, 6);
  assert.ok(fast.losses[0]! > fast.losses.at(-1)!, "the loss falls");
  assertClose(fast.losses, whole.losses, 1e-6, "losses");
  assertClose(fast.target, whole.target, 1e-5, "v*");
  ed.free();
  model.free();
});

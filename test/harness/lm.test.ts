// The model-backed LM on the fixture models: every loglikelihood path (one-token choices batched per
// context, shared context with a KV cache, plain batches) equals scoring each pair alone, and
// generation from a shared few-shot prefix equals generation from each full prompt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import { loglikelihood } from "../../src/models/scoring.js";
import { generate } from "../../src/models/generate.js";
import { ModelLM } from "../../src/harness/lm.js";
import { FIXTURES, ROOT } from "../helpers.js";

// (llama-tiny has no tokenizer; the shared-context kernel itself is checked on it in test/models)
for (const [name, dir] of <[string, string][]>[
  ["gpt2-tiny", join(FIXTURES, "gpt2-tiny")],
  ["demo", join(ROOT, "models", "demo")],
]) {
  test(`${name}: ModelLM.loglikelihood equals per-pair scoring on every path (1e-4)`, () => {
    const model = loadModel(dir);
    const tok = loadTokenizer(dir);
    const long = "The quick brown fox jumps over the lazy dog. ".repeat(4) + "Answer:";
    const reqs = [
      // one-token choices of a shared context (MMLU-like)
      ...[" A", " B", " C", " D"].map((c) => ({ context: "Question: 2+2?\nAnswer:", continuation: c })),
      // longer choices of a long context (shared KV cache)
      ...[" a cat sat on the mat", " no", " the lazy dog"].map((c) => ({ context: long, continuation: c })),
      // a loose request and an empty context (prefix token)
      { context: "Hello", continuation: " world and more" },
      { context: "", continuation: "Hello there" },
    ];
    const ref = loglikelihood(model, tok, reqs, { batchSize: 1 });
    for (const share of [true, false, "auto"] as const) {
      const got = new ModelLM(model, tok, { batchSize: 3, shareContext: share }).loglikelihood(reqs);
      got.forEach((g, i) => {
        assert.ok(
          Math.abs(g.logprob - ref[i]!.logprob) < 1e-4,
          `${share} ${i}: ${g.logprob} vs ${ref[i]!.logprob}`,
        );
        assert.equal(g.isGreedy, ref[i]!.isGreedy);
      });
    }
    model.free();
  });
}

test("gpt2-tiny: generateUntil with a shared few-shot prefix equals generate() on each prompt", () => {
  const dir = join(FIXTURES, "gpt2-tiny");
  const model = loadModel(dir);
  const tok = loadTokenizer(dir);
  const shots = "Q: one plus one\nA: two\n\nQ: two plus two\nA: four\n\n";
  const ctxs = ["Q: three plus three\nA:", "Q: five\nA:", "Q: six plus seven plus eight\nA:"].map(
    (q) => shots + q,
  );
  const lm = new ModelLM(model, tok, { batchSize: 3 });
  const got = lm.generateUntil(ctxs.map((context) => ({ context, until: ["\n\n"], max_gen_toks: 12 })));
  ctxs.forEach((c, i) => {
    const [g] = generate(model, [tok.encode(c, { addSpecialTokens: false })], {
      maxNewTokens: 12,
      eosTokenId: tok.eosTokenId,
      stopStrings: ["\n\n", tok.decode([tok.eosTokenId!])],
      decode: (ids) => tok.decode(ids, { skipSpecialTokens: true }),
    });
    assert.equal(got[i], g!.text);
  });
  model.free();
});

// Generation from a shared prefix whose KV cache is shared (one copy for all rows, KVCache.sharing):
// token for token the generations of the full prompts, in left-padded batches of uneven questions, with
// rows leaving the batch at different steps (EOS), on GPT-2 and Llama (grouped-query attention).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import { loadModel } from "../../src/models/load.js";
import { encodePrefix, generate } from "../../src/models/generate.js";
import { KVCache } from "../../src/models/layers.js";
import { FIXTURES } from "../helpers.js";

function ids(n: number, seed: number, vocab: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % vocab;
  });
}

for (const name of ["gpt2-tiny", "llama-tiny"]) {
  test(`${name}: a shared prefix KV gives the tokens of full re-encoding (uneven batch, EOS)`, () => {
    const model = loadModel(join(FIXTURES, name));
    const V = model.config.vocabSize;
    const prefix = ids(40, 21, V);
    const questions = [ids(9, 22, V), ids(2, 23, V), ids(15, 24, V), ids(5, 25, V), ids(1, 26, V)];
    const full = questions.map((q) => [...prefix, ...q]);
    const base = { maxNewTokens: 24, eosTokenId: null, padTokenId: 0 };
    const alone = full.map((p) => generate(model, [p], base)[0]!.tokens);
    const batchFull = generate(model, full, base).map((g) => g.tokens);
    assert.deepEqual(batchFull, alone, "left-padded full prompts = each alone");
    const p = encodePrefix(model, prefix);
    const shared = generate(model, questions, { ...base, prefix: p }).map((g) => g.tokens);
    assert.deepEqual(shared, alone);
    // rows leave the batch at different steps: an EOS that the second row emits at step 3
    const eos = alone[1]![3]!;
    const cut = (t: number[]): number[] => (t.includes(eos) ? t.slice(0, t.indexOf(eos) + 1) : t);
    const withEos = generate(model, questions, { ...base, eosTokenId: eos, prefix: p }).map((g) => g.tokens);
    assert.deepEqual(withEos, alone.map(cut));
    assert.ok(
      withEos.some((t) => t.length < 24),
      "some row stopped early",
    );
    p.free();
    model.free();
  });
}

test("KVCache.sharing: one copy of the prefix, its length counted, rows selected on the own part only", () => {
  const model = loadModel(join(FIXTURES, "llama-tiny"));
  const p = encodePrefix(model, ids(12, 5, model.config.vocabSize));
  const c = KVCache.sharing(p.cache);
  assert.equal(c.length, 12);
  torch.scope(() => {
    const k = torch.zeros([3, 2, 4, 32]);
    const out = c.update(0, k, k);
    assert.deepEqual(out.keys.shape, [3, 2, 4, 32], "the own part only");
  });
  assert.equal(c.length, 16, "the prefix's 12 positions and the 4 appended");
  c.selectRows([2, 0]);
  assert.equal(c.length, 16);
  c.free();
  p.free();
  model.free();
});

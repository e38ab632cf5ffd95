// Shared-prefix computation: multiple-choice log-likelihoods with the context encoded once, and
// generation from a shared few-shot prefix, against scoring / generating each full input alone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel } from "../../src/models/load.js";
import { encodePrefix, generate } from "../../src/models/generate.js";
import { loglikelihoodShared, loglikelihoodTokens } from "../../src/models/scoring.js";
import { FIXTURES, maxAbsDiff } from "../helpers.js";

function ids(n: number, seed: number, vocab: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % vocab;
  });
}

for (const name of ["gpt2-tiny", "llama-tiny"]) {
  test(`${name}: shared-context scoring equals per-pair scoring (to 1e-4)`, () => {
    const model = loadModel(join(FIXTURES, name));
    const V = model.config.vocabSize;
    const groups = [
      { context: ids(30, 1, V), continuations: [ids(1, 2, V), ids(3, 3, V), ids(2, 4, V), ids(1, 5, V)] },
      { context: ids(7, 6, V), continuations: [ids(4, 7, V), ids(1, 8, V)] },
    ];
    const shared = loglikelihoodShared(model, groups);
    groups.forEach((g, gi) => {
      const alone = loglikelihoodTokens(
        model,
        g.continuations.map((c) => ({ context: g.context, continuation: c })),
      );
      alone.forEach((a, ci) => {
        const s = shared[gi]?.[ci];
        assert.ok(s);
        assert.ok(
          Math.abs(s.logprob - a.logprob) < 1e-4,
          `group ${gi} choice ${ci}: ${s.logprob} vs ${a.logprob}`,
        );
        assert.ok(maxAbsDiff(s.tokenLogprobs, a.tokenLogprobs) < 1e-4);
        assert.equal(s.isGreedy, a.isGreedy);
      });
    });
    model.free();
  });

  test(`${name}: generation from a shared prefix gives the tokens of each full prompt alone`, () => {
    const model = loadModel(join(FIXTURES, name));
    const V = model.config.vocabSize;
    const prefix = ids(20, 11, V);
    const suffixes = [ids(3, 12, V), ids(7, 13, V), ids(1, 14, V)];
    const full = suffixes.map(
      (s) => generate(model, [[...prefix, ...s]], { maxNewTokens: 10, eosTokenId: null })[0]?.tokens,
    );
    const p = encodePrefix(model, prefix);
    const batched = generate(model, suffixes, {
      maxNewTokens: 10,
      eosTokenId: null,
      prefix: p,
      padTokenId: 0,
    });
    const again = generate(model, [suffixes[1] as number[]], {
      maxNewTokens: 10,
      eosTokenId: null,
      prefix: p,
    });
    p.free();
    batched.forEach((g, i) => assert.deepEqual(g.tokens, full[i], `prompt ${i}`));
    assert.deepEqual(again[0]?.tokens, full[1], "the prefix is reusable");
    model.free();
  });
}

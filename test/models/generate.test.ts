// Sampling warpers against hand-computed cases (transformers' order: temperature, top-k, top-p),
// seeded reproducibility, EOS and stop strings, and the rolling-window rule of loglikelihood_rolling.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import { generate, warpLogits } from "../../src/models/generate.js";
import { encodePair, loglikelihood, loglikelihoodRolling, rollingWindows } from "../../src/models/scoring.js";
import { FIXTURES, assertClose } from "../helpers.js";

const gpt2 = join(FIXTURES, "gpt2-tiny");

test("warpers: temperature divides, top-k keeps the k largest, top-p keeps the smallest set reaching p", () => {
  torch.scope(() => {
    const logits = torch.tensor([[Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]]);
    assertClose(
      warpLogits(logits, { temperature: 2 }).toNumbers(),
      logits.toNumbers().map((x) => x / 2),
      1e-6,
    );
    assert.deepEqual(warpLogits(logits, { topK: 2 }).toNumbers().map(Number.isFinite), [
      true,
      true,
      false,
      false,
    ]);
    // top-p 0.75: 0.5 + 0.3 reaches it -> keep two; 0.8 needs the third only if 0.5+0.3 < 0.8 (it is equal: kept two)
    assert.deepEqual(warpLogits(logits, { topP: 0.75 }).toNumbers().map(Number.isFinite), [
      true,
      true,
      false,
      false,
    ]);
    assert.deepEqual(warpLogits(logits, { topP: 0.9 }).toNumbers().map(Number.isFinite), [
      true,
      true,
      true,
      false,
    ]);
    // at least one token always survives
    assert.deepEqual(warpLogits(logits, { topP: 0.01 }).toNumbers().map(Number.isFinite), [
      true,
      false,
      false,
      false,
    ]);
    assert.throws(() => warpLogits(logits, { temperature: 0 }), /temperature must be > 0/);
  });
});

test("sampling is reproducible from a seed; greedy ignores it; EOS and stop strings end a row", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const p = [tok.encode("Hello there")];
  const a = generate(model, p, { maxNewTokens: 8, doSample: true, topK: 20, seed: 5, eosTokenId: null });
  const b = generate(model, p, { maxNewTokens: 8, doSample: true, topK: 20, seed: 5, eosTokenId: null });
  const c = generate(model, p, { maxNewTokens: 8, doSample: true, topK: 20, seed: 6, eosTokenId: null });
  assert.deepEqual(a[0]?.tokens, b[0]?.tokens);
  assert.notDeepEqual(a[0]?.tokens, c[0]?.tokens);
  const g = generate(model, p, { maxNewTokens: 8, eosTokenId: null });
  // EOS: make a greedy token (its first occurrence) the EOS id -> the row stops there, EOS included
  const toks = g[0]?.tokens ?? [];
  const k = toks.findIndex((t, i) => i > 0 && toks.indexOf(t) === i);
  const e = generate(model, p, { maxNewTokens: 8, eosTokenId: toks[k] as number });
  assert.deepEqual(e[0]?.tokens, toks.slice(0, k + 1));
  assert.equal(e[0]?.finishReason, "eos");
  // stop string: the decoded continuation is cut before it
  const full = tok.decode(g[0]?.tokens ?? []);
  const stop = full.slice(2, 4);
  const s = generate(model, p, {
    maxNewTokens: 8,
    eosTokenId: null,
    stopStrings: [stop],
    decode: (t) => tok.decode(t),
  });
  assert.equal(s[0]?.finishReason, "stop_string");
  assert.equal(s[0]?.text, full.slice(0, full.indexOf(stop)));
  model.free();
});

test("lm-evaluation-harness semantics: encode_pair moves trailing spaces; rolling windows cover every token once", () => {
  const tok = loadTokenizer(gpt2);
  const { context, continuation } = encodePair(tok, "The answer is ", "Paris");
  assert.deepEqual(context, tok.encode("The answer is", { addSpecialTokens: false }));
  assert.deepEqual(
    [...context, ...continuation],
    tok.encode("The answer is Paris", { addSpecialTokens: false }),
  );
  // get_rolling_token_windows(list(range(10)), prefix -1, max_seq_len 4, context_len 1) + make_disjoint_window
  const w = rollingWindows([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], -1, 4);
  assert.deepEqual(w, [
    [[-1], [0, 1, 2, 3]],
    [[3], [4, 5, 6, 7]],
    [
      [5, 6, 7],
      [8, 9],
    ],
  ]);
  const model = loadModel(gpt2);
  // the rolling log-likelihood of a short text equals one window: prefix + tokens
  const text = "The quick brown fox";
  const ids = tok.encode(text, { addSpecialTokens: false });
  const roll = loglikelihoodRolling(model, tok, text);
  const one = loglikelihood(model, tok, [{ context: "", continuation: text }])[0];
  assert.equal(roll.tokens, ids.length);
  assertClose(roll.logprob, one?.logprob ?? NaN, 1e-5);
  model.free();
});

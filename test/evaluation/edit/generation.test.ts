// generate_fast through `generate`: total length counts the prompt, top-k sampling is seeded, and the
// fluency of a text the bigram model is forced to produce is the hand-computed n-gram entropy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadTokenizer } from "../../../src/models/tokenizer/index.js";
import { generateFast } from "../../../src/evaluation/edit/generation.js";
import { computeNGramEntropy } from "../../../src/evaluation/edit/text.js";
import { assertClose } from "../../helpers.js";
import { bigram, GPT2_TINY, peak } from "./bigram.js";

const tok = loadTokenizer(GPT2_TINY);
const [IS, PARIS] = [309, 718];

test("generateFast: the text has maxOutLen tokens, prompt included; fluency of a forced text by hand", () => {
  // Ġis -> ĠParis -> Ġis -> ... with logit 100: the top-5 renormalised probability of the peak is 1 - 4e-44
  const { model } = bigram(
    new Map([
      [IS, peak(PARIS, 100)],
      [PARIS, peak(IS, 100)],
    ]),
  );
  const [text] = generateFast(model, tok, ["The capital is"], { maxOutLen: 11, seed: 1 });
  assert.equal(text, "The capital is Paris is Paris is Paris is Paris is");
  assert.equal(tok.encode(text as string).length, 11);
  // words: The capital is (Paris is)x4; bigrams (10): The-capital 1, capital-is 1, is-Paris 4, Paris-is 4;
  // trigrams (9): The-capital-is 1, capital-is-Paris 1, is-Paris-is 4, Paris-is-Paris 3
  const H = (cs: number[]) => {
    const n = cs.reduce((a, b) => a + b, 0);
    return -cs.reduce((s, c) => s + (c / n) * Math.log2(c / n), 0);
  };
  assertClose(computeNGramEntropy(text as string), H([1, 1, 4, 4]) / 3 + (2 * H([1, 1, 4, 3])) / 3, 1e-12);
});

test("generateFast: top-5 sampling is reproducible with a seed and varies with it", () => {
  // five equal logits after Ġis, everything else far below: only those five can follow
  const row = new Array<number>(768).fill(-1e4);
  for (const t of [10, 11, 12, 13, 14]) row[t] = 0;
  const { model } = bigram(new Map([[IS, row]]));
  const a = generateFast(model, tok, ["The capital is", "The capital is"], { maxOutLen: 4, seed: 3 });
  const b = generateFast(model, tok, ["The capital is", "The capital is"], { maxOutLen: 4, seed: 3 });
  assert.deepEqual(a, b);
  const seen = new Set<string>();
  for (let s = 0; s < 20; s++)
    for (const t of generateFast(model, tok, ["The capital is"], { maxOutLen: 4, seed: s })) seen.add(t);
  const allowed = [10, 11, 12, 13, 14].map((t) => "The capital is" + tok.decode([t]));
  for (const t of seen) assert.ok(allowed.includes(t), `unexpected sample ${JSON.stringify(t)}`);
  assert.ok(seen.size > 1, "sampling draws different tokens for different seeds");
});

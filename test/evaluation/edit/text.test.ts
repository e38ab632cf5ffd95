// Word tokenisation (NLTK's documented outputs), n-gram entropy and TF-IDF cosine on hand-computed cases.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  cleanGeneratedText,
  computeNGramEntropy,
  nGramEntropy,
  TfidfVectorizer,
  wordTokenize,
} from "../../../src/evaluation/edit/text.js";
import { assertClose } from "../../helpers.js";

test("wordTokenize reproduces nltk.word_tokenize on NLTK's documented examples", () => {
  assert.deepEqual(wordTokenize("Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\n\nThanks."), [
    "Good", "muffins", "cost", "$", "3.88", "in", "New", "York", ".", "Please", "buy", "me", "two", "of", "them",
    ".", "Thanks", ".",
  ]); // prettier-ignore
  assert.deepEqual(wordTokenize("They'll save and invest more."), [
    "They",
    "'ll",
    "save",
    "and",
    "invest",
    "more",
    ".",
  ]);
  assert.deepEqual(wordTokenize("hi, my name can't hello,"), [
    "hi",
    ",",
    "my",
    "name",
    "ca",
    "n't",
    "hello",
    ",",
  ]);
  assert.deepEqual(wordTokenize('She said "no" (twice) -- really?'), [
    "She", "said", "``", "no", "''", "(", "twice", ")", "--", "really", "?",
  ]); // prettier-ignore
  // an abbreviation does not end a sentence, so its period stays attached
  assert.deepEqual(wordTokenize("Mr. Smith went home."), ["Mr.", "Smith", "went", "home", "."]);
});

test("n-gram entropy: H2/3 + 2·H3/3 in bits, 0 without n-grams, mean over texts", () => {
  // "a b a b": bigrams ab, ba, ab (2/3, 1/3); trigrams aba, bab (1/2, 1/2)
  const h2 = -((2 / 3) * Math.log2(2 / 3) + (1 / 3) * Math.log2(1 / 3));
  const h3 = 1;
  assertClose(computeNGramEntropy("a b a b"), h2 / 3 + (2 * h3) / 3, 1e-12);
  assert.equal(computeNGramEntropy("word"), 0);
  assert.equal(computeNGramEntropy("two words"), 0); // one bigram: H2 = 0, no trigram
  // "x y z": bigrams xy, yz (H2 = 1); one trigram (H3 = 0)
  assertClose(computeNGramEntropy("x y z"), 1 / 3, 1e-12);
  assertClose(nGramEntropy(["x y z", "word"]), 1 / 6, 1e-12);
  assert.ok(Number.isNaN(nGramEntropy([])));
});

test("generated text post-processing: NFKD, blank lines to a space, <|endoftext|> removed", () => {
  assert.equal(cleanGeneratedText("ﬁne\n\nday<|endoftext|>"), "fine day");
});

test("TF-IDF cosine with sklearn's defaults: smooth idf, raw counts, L2 norm, 2+ character tokens", () => {
  const v = new TfidfVectorizer(["apple banana", "apple cherry"]);
  const b = Math.log(3 / 2) + 1; // idf of banana and cherry; idf(apple) = ln(3/3) + 1 = 1
  assertClose(v.idf.get("apple") as number, 1, 1e-12);
  assertClose(v.similarity("Apple banana", "apple cherry"), 1 / (1 + b * b), 1e-12);
  assertClose(
    v.similarity("apple apple banana", "apple banana"),
    (2 + b * b) / Math.sqrt(4 + b * b) / Math.sqrt(1 + b * b),
    1e-12,
  );
  assertClose(v.similarity("a banana", "banana"), 1, 1e-12); // "a" is not a token
  assert.ok(Number.isNaN(v.similarity("durian", "apple"))); // no in-vocabulary term: 0/0
});

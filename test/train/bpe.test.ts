// The byte-level BPE trainer: the tokenizer.json it writes is read by loadTokenizer, encodes and decodes
// the world's text exactly (round trip), never merges digits, learns merges in a deterministic order,
// and the vocabulary has the asked size.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tokenizer, loadTokenizer } from "../../src/models/tokenizer/index.js";
import { byteLevelWords, tokenizerConfigFor, trainByteLevelBpe } from "../../src/train/bpe.js";
import { buildWorld } from "../../src/world/index.js";

const world = buildWorld({
  seed: 11,
  sizes: { people: 24, myths: 8 },
  tasks: {
    arithmeticTrain: 200,
    reasoningTrain: 100,
    safetyTrain: 100,
    arithmeticTest: 20,
    reasoningTest: 20,
    safetyTest: 20,
  },
  corpus: { profileRepeats: 3 },
});
const json = trainByteLevelBpe(world.documents, { vocabSize: 700 });

test("bpe: vocabulary of the asked size, EOS last, merges consistent with the vocabulary", () => {
  assert.equal(Object.keys(json.model.vocab).length, 700);
  assert.equal(json.model.merges.length, 700 - 256 - 1);
  assert.deepEqual(
    json.added_tokens.map((t) => [t.id, t.content]),
    [[699, "<|endoftext|>"]],
  );
  const vocab = json.model.vocab;
  json.model.merges.forEach((m, i) => {
    const [a, b] = m.split(" ") as [string, string];
    assert.ok(vocab[a] !== undefined && vocab[b] !== undefined, `merge ${i} uses known tokens`);
    assert.equal(vocab[a + b], 256 + i, `merge ${i} makes token ${256 + i}`);
  });
  // no token mixes a digit with anything: numbers are written digit by digit
  for (const t of Object.keys(vocab)) if (/[0-9]/.test(t)) assert.equal(t.length, 1, `token ${t}`);
  // deterministic
  assert.deepEqual(trainByteLevelBpe(world.documents, { vocabSize: 700 }), json);
});

test("bpe: written as tokenizer.json, loadTokenizer reads it; encode/decode round trip of the world's text", () => {
  const dir = mkdtempSync(join(tmpdir(), "editeval-bpe-"));
  try {
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
    writeFileSync(
      join(dir, "tokenizer_config.json"),
      JSON.stringify(tokenizerConfigFor(json, { modelMaxLength: 128 })),
    );
    const tok = loadTokenizer(dir);
    const direct = Tokenizer.fromTokenizerJson(json);
    assert.equal(tok.eosTokenId, 699);
    assert.equal(tok.bosTokenId, 699);
    assert.equal(tok.padTokenId, 699);
    const texts = [
      ...world.documents.slice(0, 300),
      ...world.tasks.reasoning.test.map((it) => it.prompt),
      "Unseen wörds ünd 12345 — fine.\n\nTwo lines.",
    ];
    for (const t of texts) {
      const ids = tok.encode(t);
      assert.deepEqual(direct.encode(t), ids);
      assert.equal(tok.decode(ids), t, `round trip of ${JSON.stringify(t.slice(0, 40))}`);
    }
    // frequent words are single tokens; a number is one token per digit
    assert.equal(tok.encode(" the").length, 1);
    assert.deepEqual(
      tok.encode(" 176").map((id) => tok.idToToken(id)),
      ["Ġ", "1", "7", "6"],
    );
    // the special token is recognised in text
    assert.deepEqual(tok.encode("<|endoftext|>"), [699]);
    // the pre-tokenizer used for training is the tokenizer's
    assert.deepEqual(byteLevelWords("Dunmar is 42."), ["Dunmar", "Ġis", "Ġ42", "."]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bpe: a vocabulary smaller than the bytes is an error", () => {
  assert.throws(() => trainByteLevelBpe(["abc"], { vocabSize: 100 }), /vocabSize 100 is below 256 bytes/);
});

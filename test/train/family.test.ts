// The model family's fine-tuning data: loss masks in packing (only the assistant's tokens are
// predicted), chat transcripts whose masked part is exactly the answer, and the chat prompt format.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { IGNORE_INDEX, PackedBatches } from "../../src/train/data.js";
import {
  ALIGNED_RECIPE,
  FAMILY_SIZES,
  INSTRUCT_RECIPE,
  chatPrompt,
  sftDocuments,
  WORLD_CHAT_TEMPLATE,
} from "../../src/train/family.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import { buildWorld } from "../../src/world/index.js";
import { packageRoot } from "../../src/util/paths.js";

test("packing with loss masks: masked tokens and the padding are never predicted; EOS follows the document's last token", () => {
  const EOS = 0;
  // two documents that fit one sequence of 8 + 1 tokens: [1 2 3] EOS [4 5] EOS pad pad pad
  const p = new PackedBatches(
    [
      [1, 2, 3],
      [4, 5],
    ],
    { seqLen: 8, batchSize: 1, seed: 7, eosId: EOS },
    [
      [false, true, true],
      [false, false],
    ],
  );
  const seq = Array.from(p.epoch(0)[0] as Int32Array);
  const { inputs, labels } = p.batchArrays(0);
  // whichever document comes first, the labels are the next tokens where the next token is predicted
  const first = seq[0] === 1 ? "a" : "b";
  if (first === "a") {
    assert.deepEqual(seq, [1, 2, 3, 0, 4, 5, 0, -1, -1]);
    // predicted: 2, 3 and the EOS after doc a (its last token is predicted); nothing of doc b
    assert.deepEqual(labels[0], [
      2,
      3,
      0,
      IGNORE_INDEX,
      IGNORE_INDEX,
      IGNORE_INDEX,
      IGNORE_INDEX,
      IGNORE_INDEX,
    ]);
  } else {
    assert.deepEqual(seq, [4, 5, 0, 1, 2, 3, 0, -1, -1]);
    assert.deepEqual(labels[0], [
      IGNORE_INDEX,
      IGNORE_INDEX,
      IGNORE_INDEX,
      2,
      3,
      0,
      IGNORE_INDEX,
      IGNORE_INDEX,
    ]);
  }
  assert.equal(inputs[0]?.length, 8);
  // without masks: every real next token is a label (the old behaviour)
  const q = new PackedBatches([[1, 2, 3]], { seqLen: 4, batchSize: 1, seed: 1, eosId: EOS });
  assert.deepEqual(q.batchArrays(0).labels[0], [2, 3, 0, IGNORE_INDEX]);
  assert.throws(
    () => new PackedBatches([[1, 2]], { seqLen: 4, batchSize: 1, seed: 1, eosId: 0 }, [[true]]),
    /document 0 has 2 tokens but a mask of 1/,
  );
});

test("chat transcripts: the user turn is the item's prompt, the learned tokens decode to exactly the answer", () => {
  const tok = loadTokenizer(join(packageRoot(), "models", "demo"));
  const data = buildWorld({ seed: 1234 });
  const { docs, masks, transcripts, replayed } = sftDocuments(data, tok, INSTRUCT_RECIPE);
  assert.equal(docs.length, transcripts + replayed);
  assert.equal(replayed, Math.round(INSTRUCT_RECIPE.replay * transcripts));
  const item = data.tasks.arithmetic.train[0];
  assert.ok(item);
  // find the transcript of this item: its unmasked prefix decodes to the chat prompt
  const k = docs.findIndex(
    (d, i) => tok.decode(d.filter((_, t) => !masks[i]?.[t])) === chatPrompt(item.prompt),
  );
  assert.ok(k >= 0, "the item's transcript is there");
  const answer = (docs[k] as number[]).filter((_, t) => masks[k]?.[t]);
  assert.equal(tok.decode(answer), item.reference);
  assert.equal(chatPrompt("Question: 2 + 2?\nAnswer:"), "User: Question: 2 + 2?\nAnswer:\nAssistant:");
  // the aligned stage repeats the safety transcripts
  const aligned = sftDocuments(data, tok, ALIGNED_RECIPE);
  const safety =
    data.tasks.safety_refusal.train.length +
    data.tasks.safety_classify.train.length +
    data.tasks.truthful_mc.train.length;
  assert.equal(aligned.transcripts - transcripts, (ALIGNED_RECIPE.safetyWeight - 1) * safety);
});

test("family sizes span an 8x range of parameters, depth and width grown together", () => {
  const params = (d: { nLayer: number; nEmbd: number; nPositions: number }) =>
    2048 * d.nEmbd +
    d.nPositions * d.nEmbd +
    d.nLayer * (12 * d.nEmbd * d.nEmbd + 13 * d.nEmbd) +
    2 * d.nEmbd;
  const sizes = Object.values(FAMILY_SIZES);
  const ps = sizes.map(params);
  assert.ok((ps[2] as number) / (ps[0] as number) >= 8, `ratio ${(ps[2] as number) / (ps[0] as number)}`);
  for (let i = 1; i < sizes.length; i++) {
    assert.ok((sizes[i] as { nLayer: number }).nLayer > (sizes[i - 1] as { nLayer: number }).nLayer);
    assert.ok((sizes[i] as { nEmbd: number }).nEmbd > (sizes[i - 1] as { nEmbd: number }).nEmbd);
  }
});

test("the instruct models' chat template renders exactly the fine-tuning format (transformers' apply_chat_template)", () => {
  const dir = join(packageRoot(), "models", "family", "world-0.2M-instruct");
  const tok = loadTokenizer(dir);
  assert.equal(tok.chatTemplate, WORLD_CHAT_TEMPLATE);
  const user = "Question: What is the capital of Saishunen?\nAnswer:";
  assert.equal(
    tok.applyChatTemplate([{ role: "user", content: user }], { addGenerationPrompt: true }),
    chatPrompt(user),
  );
  // a whole transcript: the user turn, the answer as written, EOS (what the loss mask learns)
  assert.equal(
    tok.applyChatTemplate([
      { role: "user", content: user },
      { role: "assistant", content: " Gamlesvik" },
    ]),
    "User: " + user + "\nAssistant: Gamlesvik<|endoftext|>",
  );
  // base models have none: the harness's --apply_chat_template refuses them with the file named
  assert.throws(
    () =>
      loadTokenizer(join(packageRoot(), "models", "demo")).applyChatTemplate([
        { role: "user", content: "x" },
      ]),
    /tokenizer_config\.json/,
  );
});

test("fine-tuning data holds no held-out test question", () => {
  const tok = loadTokenizer(join(packageRoot(), "models", "demo"));
  const data = buildWorld({ seed: 1234 });
  const { docs } = sftDocuments(data, tok, ALIGNED_RECIPE);
  const text = docs.map((d) => tok.decode(d)).join("\n");
  let checked = 0;
  for (const task of Object.keys(data.tasks) as (keyof typeof data.tasks)[]) {
    if (task === "facts") continue; // the facts probe is the training facts by definition
    for (const it of data.tasks[task].test) {
      assert.ok(!text.includes(it.heldOut), `${it.id}: held-out text in the fine-tuning data`);
      checked++;
    }
  }
  assert.ok(checked > 900);
});

// llama2.c's stories260K (a real, tiny pretrained Llama) through the converter: greedy generation from
// BOS reproduces the text llama2.c's own run.c prints (../shared/data/llama2c_stories260K).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import { convertLlama2c, permuteRotary, readLlama2cHeader } from "../../src/models/llama2c.js";
import { loadModel } from "../../src/models/load.js";
import { generate } from "../../src/models/generate.js";
import {
  loadTokenizer,
  llama2cTokenizerConfig,
  llama2cTokenizerToHF,
} from "../../src/models/tokenizer/index.js";
import { DATA } from "../helpers.js";

const SRC = join(DATA, "llama2c_stories260K");

test("the q/k permutation turns interleaved-pair rotation into halves rotation", () => {
  torch.scope(() => {
    // one head of size 4, dim 1: rows [a0, a1, b0, b1] (pairs) become [a0, b0, a1, b1] (halves)
    const w = torch.tensor([[10], [11], [20], [21]]);
    assert.deepEqual(permuteRotary(w, 1).toNumbers(), [10, 20, 11, 21]);
  });
  assert.throws(() => readLlama2cHeader(Buffer.alloc(10), "x.bin"), /too short/);
});

test("stories260K: greedy generation from BOS reproduces llama2.c's output", () => {
  const out = mkdtempSync(join(tmpdir(), "editeval-l2c-"));
  try {
    convertLlama2c(join(SRC, "stories260K.bin"), out, {
      tokenizerJson: llama2cTokenizerToHF(join(SRC, "tok512.bin")),
      tokenizerConfig: llama2cTokenizerConfig(),
    });
    const model = loadModel(out);
    const tok = loadTokenizer(out);
    assert.equal(model.config.numKvHeads, 4);
    assert.equal(tok.bosTokenId, 1);
    // run.c: 200 steps from BOS, stopping at BOS (id 1), then a newline
    const [g] = generate(model, [[1]], { maxNewTokens: 200, eosTokenId: 1 });
    const text = tok.decode(g?.tokens ?? [], { skipSpecialTokens: true }) + "\n";
    const expected = readFileSync(join(SRC, "greedy_reference_output.txt"), "utf8");
    assert.equal(text, expected);
    model.free();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

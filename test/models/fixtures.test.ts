// Forward passes, hidden states, padding, KV cache and greedy generation against upstream transformers
// outputs (../shared/fixtures/<arch>-tiny/reference.json, transformers 4.37.2, float32).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import { loadModel } from "../../src/models/load.js";
import { positionsFromMask } from "../../src/models/model.js";
import { generate } from "../../src/models/generate.js";
import { loglikelihoodTokens } from "../../src/models/scoring.js";
import { FIXTURES, maxAbsDiff } from "../helpers.js";

interface Seq {
  name: string;
  input_ids: number[];
  logits: number[][];
  logits_sha256: string;
  token_logprobs: number[];
  hidden_states_last: { hf_hidden_states: number[][]; layer_outputs: number[][] };
  greedy: { new_tokens: number[]; steps: { top_ids: number[]; top_logits: number[] }[] };
}
interface Row extends Omit<Seq, "name"> {
  first_real_position: number;
}
interface Ref {
  sequences: Seq[];
  padded_batch: {
    input_ids: number[][];
    attention_mask: number[][];
    position_ids: number[][];
    pad_token_id: number;
    rows: Row[];
  };
}

const TOL = 1e-4;
/**
 * Hidden states grow with depth, so they are compared as torch.allclose does (|a - b| <= atol + rtol |b|,
 * atol = TOL, rtol = 1e-5): float32 sums in another order (another thread count) move a value of 10 by
 * about 1e-4. Returns the largest |a - b| - rtol |b|, to be below TOL.
 */
function closeExcess(a: number[], b: number[], rtol = 1e-5): number {
  let m = 0;
  a.forEach((x, i) => {
    const y = b[i] as number;
    m = Math.max(m, Math.abs(x - y) - rtol * Math.abs(y));
  });
  return m;
}

for (const name of ["gpt2-tiny", "llama-tiny"]) {
  const dir = join(FIXTURES, name);
  const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8")) as Ref;

  test(`${name}: reference floats are the exact float32 values (sha256 of the logits)`, () => {
    for (const s of ref.sequences) {
      const bytes = Buffer.from(Float32Array.from(s.logits.flat().map(Math.fround)).buffer);
      assert.equal(createHash("sha256").update(bytes).digest("hex"), s.logits_sha256);
    }
  });

  test(`${name}: logits, token log-probs and hidden states of every sequence within ${TOL}`, () => {
    const model = loadModel(dir);
    const blockName = name.startsWith("gpt2") ? "transformer.h.{}" : "model.layers.{}";
    try {
      for (const s of ref.sequences) {
        torch.scope(() => {
          const layerOutputs: number[][] = [];
          const hooks = Array.from({ length: model.numLayers }, (_, l) => ({
            module: blockName.replace("{}", String(l)),
            where: "output" as const,
            hook: (t: torch.Tensor) => void layerOutputs.push(t.index(0, -1).toNumbers()),
          }));
          const out = model.withHooks(hooks, () =>
            model.forward({
              inputIds: torch.tensor([s.input_ids], { dtype: "int64" }),
              outputHiddenStates: true,
            }),
          );
          const logits = out.logits.select(0, 0);
          assert.deepEqual(logits.shape, [s.input_ids.length, model.config.vocabSize]);
          const d = maxAbsDiff(logits.toNumbers(), s.logits.flat());
          assert.ok(d < TOL, `${s.name}: logits max |diff| ${d}`);
          // per-token log-probs through the scoring path (context = first token, continuation = the rest)
          if (s.input_ids.length > 1) {
            const [score] = loglikelihoodTokens(model, [
              { context: s.input_ids.slice(0, 1), continuation: s.input_ids.slice(1) },
            ]);
            const dl = maxAbsDiff(score?.tokenLogprobs ?? [], s.token_logprobs);
            assert.ok(dl < TOL, `${s.name}: token log-probs max |diff| ${dl}`);
          }
          const hs = out.hiddenStates ?? [];
          assert.equal(hs.length, model.numLayers + 1);
          hs.forEach((h, i) => {
            const dh = closeExcess(
              h.index(0, -1).toNumbers(),
              s.hidden_states_last.hf_hidden_states[i] as number[],
            );
            assert.ok(dh < TOL, `${s.name}: hidden state ${i} max |diff| - 1e-5 |ref| ${dh}`);
          });
          layerOutputs.forEach((v, i) => {
            const dh = closeExcess(v, s.hidden_states_last.layer_outputs[i] as number[]);
            assert.ok(dh < TOL, `${s.name}: block ${i} output max |diff| - 1e-5 |ref| ${dh}`);
          });
        });
      }
    } finally {
      model.free();
    }
  });

  test(`${name}: left-padded batch (mask, position ids) matches per real position`, () => {
    const model = loadModel(dir);
    const pb = ref.padded_batch;
    try {
      torch.scope(() => {
        const out = model.forward({
          inputIds: torch.tensor(pb.input_ids, { dtype: "int64" }),
          attentionMask: torch.tensor(pb.attention_mask, { dtype: "int64" }),
          positionIds: torch.tensor(pb.position_ids, { dtype: "int64" }),
          outputHiddenStates: true,
        });
        // the positions generate() derives from the mask (cumsum(mask) - 1, pads at 1) are the ones given
        const mask = torch.tensor(pb.attention_mask, { dtype: "int64" });
        assert.deepEqual(positionsFromMask(mask, 0, mask.size(1)).tolist(), pb.position_ids);
        const noPos = model.forward({
          inputIds: torch.tensor(pb.input_ids, { dtype: "int64" }),
          attentionMask: mask,
          positionIds: positionsFromMask(mask, 0, mask.size(1)),
        });
        pb.rows.forEach((row, r) => {
          const real = out.logits.select(0, r).narrow(0, row.first_real_position, row.logits.length);
          const d = maxAbsDiff(real.toNumbers(), row.logits.flat());
          assert.ok(d < TOL, `row ${r}: logits max |diff| ${d}`);
          const d2 = maxAbsDiff(
            noPos.logits.select(0, r).narrow(0, row.first_real_position, row.logits.length).toNumbers(),
            row.logits.flat(),
          );
          assert.ok(d2 < TOL, `row ${r} (positions from the mask): logits max |diff| ${d2}`);
          (out.hiddenStates ?? []).forEach((h, i) => {
            const dh = maxAbsDiff(
              h.select(0, r).index(-1).toNumbers(),
              row.hidden_states_last.hf_hidden_states[i] as number[],
            );
            assert.ok(dh < TOL, `row ${r}: hidden ${i} max |diff| ${dh}`);
          });
        });
      });
    } finally {
      model.free();
    }
  });

  test(`${name}: 10 greedy tokens with and without KV cache, single and left-padded batch`, () => {
    const model = loadModel(dir);
    try {
      for (const useCache of [true, false]) {
        for (const s of ref.sequences) {
          const [g] = generate(model, [s.input_ids], { maxNewTokens: 10, eosTokenId: null, useCache });
          assert.deepEqual(g?.tokens, s.greedy.new_tokens, `${s.name} useCache=${useCache}`);
        }
        const prompts = ref.padded_batch.rows.map((r) => r.input_ids); // the rows' own (unpadded) ids
        const gs = generate(model, prompts, { maxNewTokens: 10, eosTokenId: null, padTokenId: 0, useCache });
        gs.forEach((g, r) =>
          assert.deepEqual(
            g.tokens,
            ref.padded_batch.rows[r]?.greedy.new_tokens,
            `batch row ${r} useCache=${useCache}`,
          ),
        );
      }
      // the top-5 logits of each greedy step (with the cache) match the recorded ones
      const s = ref.sequences[1] as Seq;
      const cache = model.newCache();
      let ids = s.input_ids;
      try {
        for (const [k, step] of s.greedy.steps.entries()) {
          torch.scope(() => {
            const inp = k === 0 ? [ids] : [[ids[ids.length - 1] as number]];
            const logits = model
              .forward({ inputIds: torch.tensor(inp, { dtype: "int64" }), cache, lastOnly: true })
              .logits.index(0, -1);
            const { values, indices } = logits.topk(5);
            assert.deepEqual(indices.toNumbers(), step.top_ids);
            assert.ok(maxAbsDiff(values.toNumbers(), step.top_logits) < TOL);
            ids = [...ids, indices.toNumbers()[0] as number];
          });
        }
      } finally {
        cache.free();
      }
    } finally {
      model.free();
    }
  });
}

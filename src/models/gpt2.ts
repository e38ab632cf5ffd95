/**
 * GPT-2 (transformers' GPT2LMHeadModel), in the order of the math. Parameter names are Hugging Face's;
 * GPT-2's Conv1D stores weights as [in, out], so a projection is addmm(bias, x, W).
 *
 *   h = wte[ids] + wpe[pos]
 *   for each block:  h = h + attn(ln_1(h));  h = h + mlp(ln_2(h))
 *   logits = ln_f(h) @ wte^T            (lm_head tied to wte)
 */
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { ConfigReader, validateConfig, type ModelConfig } from "./config.js";
import { activation, buildAttentionMask, scaledDotProductAttention } from "./layers.js";
import {
  defaultPositionIds,
  type Architecture,
  type CausalLM,
  type ForwardInputs,
  type ForwardOutput,
  headInput,
} from "./model.js";

const { F } = torch;

export function parseGpt2Config(r: ConfigReader): ModelConfig {
  const d = r.int("n_embd", 768);
  const heads = r.int("n_head", 12);
  return validateConfig(
    {
      modelType: "gpt2",
      vocabSize: r.int("vocab_size", 50257),
      hiddenSize: d,
      numLayers: r.int("n_layer", 12),
      numHeads: heads,
      numKvHeads: heads,
      headDim: d / heads,
      intermediateSize: r.optInt("n_inner") ?? 4 * d,
      maxPositions: r.int("n_positions", 1024),
      normEps: r.num("layer_norm_epsilon", 1e-5),
      activation: r.str("activation_function", "gelu_new"),
      tieWordEmbeddings: r.bool("tie_word_embeddings", true),
      bosTokenId: r.optInt("bos_token_id"),
      eosTokenId: r.tokenIds("eos_token_id"),
      padTokenId: r.optInt("pad_token_id"),
      rotaryDim: 0,
      ropeTheta: 0,
      ropeScaling: null,
      slidingWindow: null,
      parallelResidual: false,
      attentionBias: true,
      scaleAttnWeights: r.bool("scale_attn_weights", true),
      scaleAttnByInverseLayerIdx: r.bool("scale_attn_by_inverse_layer_idx", false),
      raw: r.raw,
    },
    r.file,
  );
}

/** x [.., in] @ W [in, out] + b, as transformers' Conv1D (addmm on the flattened rows). */
function conv1d(x: Tensor, w: Tensor, b: Tensor): Tensor {
  const shape = x.shape;
  const out = torch.addmm(b, x.reshape(-1, shape[shape.length - 1] as number), w);
  return out.view(...shape.slice(0, -1), w.size(1));
}

export const gpt2: Architecture = {
  modelType: "gpt2",

  parameterShapes(c) {
    const d = c.hiddenSize;
    const m = new Map<string, number[]>([
      ["transformer.wte.weight", [c.vocabSize, d]],
      ["transformer.wpe.weight", [c.maxPositions, d]],
    ]);
    for (let l = 0; l < c.numLayers; l++) {
      const p = `transformer.h.${l}`;
      m.set(`${p}.ln_1.weight`, [d]).set(`${p}.ln_1.bias`, [d]);
      m.set(`${p}.attn.c_attn.weight`, [d, 3 * d]).set(`${p}.attn.c_attn.bias`, [3 * d]);
      m.set(`${p}.attn.c_proj.weight`, [d, d]).set(`${p}.attn.c_proj.bias`, [d]);
      m.set(`${p}.ln_2.weight`, [d]).set(`${p}.ln_2.bias`, [d]);
      m.set(`${p}.mlp.c_fc.weight`, [d, c.intermediateSize]).set(`${p}.mlp.c_fc.bias`, [c.intermediateSize]);
      m.set(`${p}.mlp.c_proj.weight`, [c.intermediateSize, d]).set(`${p}.mlp.c_proj.bias`, [d]);
    }
    m.set("transformer.ln_f.weight", [d]).set("transformer.ln_f.bias", [d]);
    m.set("lm_head.weight", [c.vocabSize, d]);
    return m;
  },

  tiedParameters(c) {
    return c.tieWordEmbeddings ? new Map([["lm_head.weight", "transformer.wte.weight"]]) : new Map();
  },

  moduleNames() {
    return {
      global: ["transformer.wte", "transformer.wpe", "transformer.ln_f", "lm_head"],
      perLayer: [
        "transformer.h.{}",
        "transformer.h.{}.ln_1",
        "transformer.h.{}.attn",
        "transformer.h.{}.attn.c_attn",
        "transformer.h.{}.attn.c_proj",
        "transformer.h.{}.ln_2",
        "transformer.h.{}.mlp",
        "transformer.h.{}.mlp.c_fc",
        "transformer.h.{}.mlp.act",
        "transformer.h.{}.mlp.c_proj",
      ],
    };
  },

  // causal-mask buffers saved by old transformers versions
  ignoredCheckpointKeys: [/\.attn\.bias$/, /\.attn\.masked_bias$/],

  forward(model: CausalLM, inp: ForwardInputs): ForwardOutput {
    const c = model.config;
    const P = (n: string) => model.param(n);
    const [B, T] = inp.inputIds.shape as [number, number];
    const past = inp.cache?.length ?? 0;
    const mask = buildAttentionMask(B, T, past, inp.attentionMask ?? null);
    const pos = inp.positionIds ?? defaultPositionIds(B, T, past, inp.attentionMask ?? null);
    const act = activation(c.activation, "gpt2 activation_function");
    const d = c.hiddenSize;
    const H = c.numHeads;
    const hd = c.headDim;
    const hidden: Tensor[] = [];

    const wte = model.module("transformer.wte", inp.inputIds, (ids) =>
      F.embedding(ids, P("transformer.wte.weight")),
    );
    const wpe = model.module("transformer.wpe", pos, (p) => F.embedding(p, P("transformer.wpe.weight")));
    let h = wte.add(wpe);

    for (let l = 0; l < c.numLayers; l++) {
      const p = `transformer.h.${l}`;
      if (inp.outputHiddenStates) hidden.push(h);
      h = model.block(p, h, (x) => {
        // attention
        const a = model.module(`${p}.ln_1`, x, (y) =>
          F.layerNorm(y, [d], P(`${p}.ln_1.weight`), P(`${p}.ln_1.bias`), c.normEps),
        );
        const attnOut = model.module(`${p}.attn`, a, (y) => {
          const qkv = model.module(`${p}.attn.c_attn`, y, (z) =>
            conv1d(z, P(`${p}.attn.c_attn.weight`), P(`${p}.attn.c_attn.bias`)),
          );
          const [q, k0, v0] = qkv.split(d, 2).map((t) => t.view(B, T, H, hd).transpose(1, 2)) as [
            Tensor,
            Tensor,
            Tensor,
          ];
          let k = k0;
          let v = v0;
          if (inp.cache) ({ keys: k, values: v } = inp.cache.update(l, k0, v0));
          let divisor = c.scaleAttnWeights ? Math.fround(Math.sqrt(hd)) : 1;
          if (c.scaleAttnByInverseLayerIdx) divisor *= l + 1;
          const o = scaledDotProductAttention(q, k, v, mask, { divide: divisor });
          const merged = o.transpose(1, 2).contiguous().view(B, T, d);
          return model.module(`${p}.attn.c_proj`, merged, (z) =>
            conv1d(z, P(`${p}.attn.c_proj.weight`), P(`${p}.attn.c_proj.bias`)),
          );
        });
        const x1 = attnOut.add(x);
        // MLP
        const m = model.module(`${p}.ln_2`, x1, (y) =>
          F.layerNorm(y, [d], P(`${p}.ln_2.weight`), P(`${p}.ln_2.bias`), c.normEps),
        );
        const mlpOut = model.module(`${p}.mlp`, m, (y) => {
          const f = model.module(`${p}.mlp.c_fc`, y, (z) =>
            conv1d(z, P(`${p}.mlp.c_fc.weight`), P(`${p}.mlp.c_fc.bias`)),
          );
          const g = model.module(`${p}.mlp.act`, f, act);
          return model.module(`${p}.mlp.c_proj`, g, (z) =>
            conv1d(z, P(`${p}.mlp.c_proj.weight`), P(`${p}.mlp.c_proj.bias`)),
          );
        });
        return x1.add(mlpOut);
      });
    }

    h = model.module("transformer.ln_f", h, (x) =>
      F.layerNorm(x, [d], P("transformer.ln_f.weight"), P("transformer.ln_f.bias"), c.normEps),
    );
    if (inp.outputHiddenStates) hidden.push(h);
    const last = headInput(h, inp);
    const logits = model.module("lm_head", last, (x) => F.linear(x, P("lm_head.weight")));
    return inp.outputHiddenStates ? { logits, hiddenStates: hidden } : { logits };
  },
};

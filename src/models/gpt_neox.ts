/**
 * GPT-NeoX / Pythia (transformers' GPTNeoXForCausalLM), in the order of the math. Rotary embeddings
 * turn the first rotary_ndims = head_size * rotary_pct dims of each head (halves layout); the fused
 * query_key_value projection is laid out per head as [q | k | v].
 *
 *   h = embed_in[ids]
 *   parallel:   h = h + attn(ln1(h)) + mlp(ln2(h))
 *   sequential: a = h + attn(ln1(h));  h = a + mlp(ln2(a))
 *   logits = embed_out(final_layer_norm(h))
 */
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { ConfigReader, validateConfig, type ModelConfig } from "./config.js";
import {
  activation,
  applyRotaryHalves,
  buildAttentionMask,
  rotaryBaseAndScale,
  rotaryCosSinHalves,
  rotaryInvFreq,
  scaledDotProductAttention,
} from "./layers.js";
import {
  defaultPositionIds,
  type Architecture,
  type CausalLM,
  type ForwardInputs,
  type ForwardOutput,
  headInput,
} from "./model.js";

const { F } = torch;

export function parseGptNeoxConfig(r: ConfigReader): ModelConfig {
  const d = r.int("hidden_size", 6144);
  const heads = r.int("num_attention_heads", 64);
  const headDim = d / heads;
  return validateConfig(
    {
      modelType: "gpt_neox",
      vocabSize: r.int("vocab_size", 50432),
      hiddenSize: d,
      numLayers: r.int("num_hidden_layers", 44),
      numHeads: heads,
      numKvHeads: heads,
      headDim,
      intermediateSize: r.int("intermediate_size", 24576),
      maxPositions: r.int("max_position_embeddings", 2048),
      normEps: r.num("layer_norm_eps", 1e-5),
      activation: r.str("hidden_act", "gelu"),
      tieWordEmbeddings: r.bool("tie_word_embeddings", false),
      bosTokenId: r.optInt("bos_token_id"),
      eosTokenId: r.tokenIds("eos_token_id"),
      padTokenId: r.optInt("pad_token_id"),
      rotaryDim: Math.trunc(headDim * r.num("rotary_pct", 0.25)),
      ropeTheta: r.num("rotary_emb_base", 10000),
      ropeScaling: r.ropeScaling(),
      slidingWindow: null,
      parallelResidual: r.bool("use_parallel_residual", true),
      attentionBias: r.bool("attention_bias", true),
      scaleAttnWeights: true,
      scaleAttnByInverseLayerIdx: false,
      raw: r.raw,
    },
    r.file,
  );
}

export const gptNeox: Architecture = {
  modelType: "gpt_neox",

  parameterShapes(c) {
    const d = c.hiddenSize;
    const m = new Map<string, number[]>([["gpt_neox.embed_in.weight", [c.vocabSize, d]]]);
    for (let l = 0; l < c.numLayers; l++) {
      const p = `gpt_neox.layers.${l}`;
      m.set(`${p}.input_layernorm.weight`, [d]).set(`${p}.input_layernorm.bias`, [d]);
      m.set(`${p}.post_attention_layernorm.weight`, [d]).set(`${p}.post_attention_layernorm.bias`, [d]);
      m.set(`${p}.attention.query_key_value.weight`, [3 * d, d]);
      if (c.attentionBias) m.set(`${p}.attention.query_key_value.bias`, [3 * d]);
      m.set(`${p}.attention.dense.weight`, [d, d]);
      if (c.attentionBias) m.set(`${p}.attention.dense.bias`, [d]);
      m.set(`${p}.mlp.dense_h_to_4h.weight`, [c.intermediateSize, d]).set(`${p}.mlp.dense_h_to_4h.bias`, [
        c.intermediateSize,
      ]);
      m.set(`${p}.mlp.dense_4h_to_h.weight`, [d, c.intermediateSize]).set(`${p}.mlp.dense_4h_to_h.bias`, [d]);
    }
    m.set("gpt_neox.final_layer_norm.weight", [d]).set("gpt_neox.final_layer_norm.bias", [d]);
    m.set("embed_out.weight", [c.vocabSize, d]);
    return m;
  },

  tiedParameters(c) {
    return c.tieWordEmbeddings ? new Map([["embed_out.weight", "gpt_neox.embed_in.weight"]]) : new Map();
  },

  moduleNames() {
    return {
      global: ["gpt_neox.embed_in", "gpt_neox.final_layer_norm", "embed_out"],
      perLayer: [
        "gpt_neox.layers.{}",
        "gpt_neox.layers.{}.input_layernorm",
        "gpt_neox.layers.{}.attention",
        "gpt_neox.layers.{}.attention.query_key_value",
        "gpt_neox.layers.{}.attention.dense",
        "gpt_neox.layers.{}.post_attention_layernorm",
        "gpt_neox.layers.{}.mlp",
        "gpt_neox.layers.{}.mlp.dense_h_to_4h",
        "gpt_neox.layers.{}.mlp.act",
        "gpt_neox.layers.{}.mlp.dense_4h_to_h",
      ],
    };
  },

  ignoredCheckpointKeys: [/\.attention\.bias$/, /\.attention\.masked_bias$/, /\.rotary_emb\.inv_freq$/],

  forward(model: CausalLM, inp: ForwardInputs): ForwardOutput {
    const c = model.config;
    const P = (n: string) => model.param(n);
    const opt = (n: string) => model.params.get(n) ?? null;
    const [B, T] = inp.inputIds.shape as [number, number];
    const past = inp.cache?.length ?? 0;
    const mask = buildAttentionMask(B, T, past, inp.attentionMask ?? null);
    const pos = inp.positionIds ?? defaultPositionIds(B, T, past, inp.attentionMask ?? null);
    const act = activation(c.activation, "gpt_neox hidden_act");
    const d = c.hiddenSize;
    const H = c.numHeads;
    const hd = c.headDim;
    const rd = c.rotaryDim;
    const { base, positionScale } = rotaryBaseAndScale(
      rd,
      c.ropeTheta,
      c.ropeScaling,
      past + T,
      c.maxPositions,
    );
    const { cos, sin } = rotaryCosSinHalves(
      pos,
      rotaryInvFreq(rd, base, c.ropeScaling, model.dtype),
      positionScale,
    );
    const rope = (x: Tensor) => {
      if (rd === hd) return applyRotaryHalves(x, cos.to(x.dtype), sin.to(x.dtype));
      const rot = applyRotaryHalves(x.narrow(-1, 0, rd), cos.to(x.dtype), sin.to(x.dtype));
      return torch.cat([rot, x.narrow(-1, rd, hd - rd)], -1);
    };
    const linear = (name: string, x: Tensor) =>
      model.module(name, x, (z) => F.linear(z, P(`${name}.weight`), opt(`${name}.bias`)));
    const ln = (name: string, x: Tensor) =>
      model.module(name, x, (z) => F.layerNorm(z, [d], P(`${name}.weight`), P(`${name}.bias`), c.normEps));
    const hidden: Tensor[] = [];

    let h = model.module("gpt_neox.embed_in", inp.inputIds, (ids) =>
      F.embedding(ids, P("gpt_neox.embed_in.weight")),
    );
    for (let l = 0; l < c.numLayers; l++) {
      const p = `gpt_neox.layers.${l}`;
      if (inp.outputHiddenStates) hidden.push(h);
      const attention = (x: Tensor) =>
        model.module(`${p}.attention`, x, (y) => {
          const qkv = linear(`${p}.attention.query_key_value`, y).view(B, T, H, 3 * hd);
          const q = rope(qkv.narrow(-1, 0, hd).permute(0, 2, 1, 3));
          const k0 = rope(qkv.narrow(-1, hd, hd).permute(0, 2, 1, 3));
          const v0 = qkv.narrow(-1, 2 * hd, hd).permute(0, 2, 1, 3);
          let k = k0;
          let v = v0;
          if (inp.cache) ({ keys: k, values: v } = inp.cache.update(l, k0, v0));
          const o = scaledDotProductAttention(q, k, v, mask, { multiply: hd ** -0.5 });
          return linear(`${p}.attention.dense`, o.permute(0, 2, 1, 3).contiguous().view(B, T, d));
        });
      const mlp = (x: Tensor) =>
        model.module(`${p}.mlp`, x, (y) => {
          const u = model.module(`${p}.mlp.act`, linear(`${p}.mlp.dense_h_to_4h`, y), act);
          return linear(`${p}.mlp.dense_4h_to_h`, u);
        });
      h = model.block(p, h, (x) => {
        const a = attention(ln(`${p}.input_layernorm`, x));
        if (c.parallelResidual)
          return mlp(ln(`${p}.post_attention_layernorm`, x))
            .add(a)
            .add(x);
        const x1 = a.add(x);
        return mlp(ln(`${p}.post_attention_layernorm`, x1)).add(x1);
      });
    }
    h = ln("gpt_neox.final_layer_norm", h);
    if (inp.outputHiddenStates) hidden.push(h);
    const last = headInput(h, inp);
    const logits = model.module("embed_out", last, (x) => F.linear(x, P("embed_out.weight")));
    return inp.outputHiddenStates ? { logits, hiddenStates: hidden } : { logits };
  },
};

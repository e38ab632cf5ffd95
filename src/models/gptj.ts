/**
 * GPT-J (transformers' GPTJForCausalLM), in the order of the math. Attention and MLP run in parallel
 * on one layer norm; rotary embeddings turn interleaved pairs (x0,x1), (x2,x3), ... of the first
 * rotary_dim dims of each head; scores are computed in float32 and divided by sqrt(head_dim).
 *
 *   h = wte[ids]
 *   for each block:  n = ln_1(h);  h = h + out_proj(attn(n)) + fc_out(gelu(fc_in(n)))
 *   logits = lm_head(ln_f(h))            (lm_head has a bias)
 */
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { ConfigReader, validateConfig, type ModelConfig } from "./config.js";
import {
  activation,
  applyRotaryInterleaved,
  buildAttentionMask,
  rotaryCosSinInterleaved,
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

export function parseGptjConfig(r: ConfigReader): ModelConfig {
  const d = r.int("n_embd", 4096);
  const heads = r.int("n_head", 16);
  const headDim = d / heads;
  return validateConfig(
    {
      modelType: "gptj",
      vocabSize: r.int("vocab_size", 50400),
      hiddenSize: d,
      numLayers: r.int("n_layer", 28),
      numHeads: heads,
      numKvHeads: heads,
      headDim,
      intermediateSize: r.optInt("n_inner") ?? 4 * d,
      maxPositions: r.int("n_positions", 2048),
      normEps: r.num("layer_norm_epsilon", 1e-5),
      activation: r.str("activation_function", "gelu_new"),
      tieWordEmbeddings: r.bool("tie_word_embeddings", false),
      bosTokenId: r.optInt("bos_token_id"),
      eosTokenId: r.tokenIds("eos_token_id"),
      padTokenId: r.optInt("pad_token_id"),
      rotaryDim: r.optInt("rotary_dim") ?? headDim,
      ropeTheta: 10000,
      ropeScaling: null,
      slidingWindow: null,
      parallelResidual: true,
      attentionBias: false,
      scaleAttnWeights: true,
      scaleAttnByInverseLayerIdx: false,
      raw: r.raw,
    },
    r.file,
  );
}

export const gptj: Architecture = {
  modelType: "gptj",

  parameterShapes(c) {
    const d = c.hiddenSize;
    const m = new Map<string, number[]>([["transformer.wte.weight", [c.vocabSize, d]]]);
    for (let l = 0; l < c.numLayers; l++) {
      const p = `transformer.h.${l}`;
      m.set(`${p}.ln_1.weight`, [d]).set(`${p}.ln_1.bias`, [d]);
      for (const x of ["q_proj", "k_proj", "v_proj", "out_proj"]) m.set(`${p}.attn.${x}.weight`, [d, d]);
      m.set(`${p}.mlp.fc_in.weight`, [c.intermediateSize, d]).set(`${p}.mlp.fc_in.bias`, [
        c.intermediateSize,
      ]);
      m.set(`${p}.mlp.fc_out.weight`, [d, c.intermediateSize]).set(`${p}.mlp.fc_out.bias`, [d]);
    }
    m.set("transformer.ln_f.weight", [d]).set("transformer.ln_f.bias", [d]);
    m.set("lm_head.weight", [c.vocabSize, d]).set("lm_head.bias", [c.vocabSize]);
    return m;
  },

  tiedParameters(c) {
    return c.tieWordEmbeddings ? new Map([["lm_head.weight", "transformer.wte.weight"]]) : new Map();
  },

  moduleNames() {
    return {
      global: ["transformer.wte", "transformer.ln_f", "lm_head"],
      perLayer: [
        "transformer.h.{}",
        "transformer.h.{}.ln_1",
        "transformer.h.{}.attn",
        "transformer.h.{}.attn.q_proj",
        "transformer.h.{}.attn.k_proj",
        "transformer.h.{}.attn.v_proj",
        "transformer.h.{}.attn.out_proj",
        "transformer.h.{}.mlp",
        "transformer.h.{}.mlp.fc_in",
        "transformer.h.{}.mlp.act",
        "transformer.h.{}.mlp.fc_out",
      ],
    };
  },

  ignoredCheckpointKeys: [/\.attn\.bias$/, /\.attn\.masked_bias$/, /\.attn\.embed_positions$/],

  forward(model: CausalLM, inp: ForwardInputs): ForwardOutput {
    const c = model.config;
    const P = (n: string) => model.param(n);
    const opt = (n: string) => model.params.get(n) ?? null;
    const [B, T] = inp.inputIds.shape as [number, number];
    const past = inp.cache?.length ?? 0;
    const mask = buildAttentionMask(B, T, past, inp.attentionMask ?? null);
    const pos = inp.positionIds ?? defaultPositionIds(B, T, past, inp.attentionMask ?? null);
    const act = activation(c.activation, "gptj activation_function");
    const d = c.hiddenSize;
    const H = c.numHeads;
    const hd = c.headDim;
    const rd = c.rotaryDim;
    const { cos, sin } = rotaryCosSinInterleaved(pos, rotaryInvFreq(rd, 10000, null, model.dtype));
    // x [B, T, H, hd]: rotate the first rd dims of each head
    const rope = (x: Tensor) => {
      const rot = applyRotaryInterleaved(x.narrow(-1, 0, rd), cos.to(x.dtype), sin.to(x.dtype));
      return rd === hd ? rot : torch.cat([rot, x.narrow(-1, rd, hd - rd)], -1);
    };
    const linear = (name: string, x: Tensor) =>
      model.module(name, x, (z) => F.linear(z, P(`${name}.weight`), opt(`${name}.bias`)));
    // transformers computes the scale as sqrt(float32(head_dim))
    const scaleAttn = Math.fround(Math.sqrt(hd));
    const hidden: Tensor[] = [];

    let h = model.module("transformer.wte", inp.inputIds, (ids) =>
      F.embedding(ids, P("transformer.wte.weight")),
    );
    for (let l = 0; l < c.numLayers; l++) {
      const p = `transformer.h.${l}`;
      if (inp.outputHiddenStates) hidden.push(h);
      h = model.block(p, h, (x) => {
        const n = model.module(`${p}.ln_1`, x, (y) =>
          F.layerNorm(y, [d], P(`${p}.ln_1.weight`), P(`${p}.ln_1.bias`), c.normEps),
        );
        const attnOut = model.module(`${p}.attn`, n, (y) => {
          const q = rope(linear(`${p}.attn.q_proj`, y).view(B, T, H, hd)).permute(0, 2, 1, 3);
          const k0 = rope(linear(`${p}.attn.k_proj`, y).view(B, T, H, hd)).permute(0, 2, 1, 3);
          const v0 = linear(`${p}.attn.v_proj`, y).view(B, T, H, hd).permute(0, 2, 1, 3);
          let k = k0;
          let v = v0;
          if (inp.cache) ({ keys: k, values: v } = inp.cache.update(l, k0, v0));
          const f32 = q.dtype !== "float32" && q.dtype !== "float64";
          let o = scaledDotProductAttention(
            f32 ? q.to("float32") : q,
            f32 ? k.to("float32") : k,
            f32 ? v.to("float32") : v,
            mask,
            { divide: scaleAttn },
          );
          if (f32) o = o.to(q.dtype);
          return linear(`${p}.attn.out_proj`, o.permute(0, 2, 1, 3).contiguous().view(B, T, d));
        });
        const mlpOut = model.module(`${p}.mlp`, n, (y) => {
          const u = model.module(`${p}.mlp.act`, linear(`${p}.mlp.fc_in`, y), act);
          return linear(`${p}.mlp.fc_out`, u);
        });
        return attnOut.add(mlpOut).add(x);
      });
    }
    h = model.module("transformer.ln_f", h, (x) =>
      F.layerNorm(x, [d], P("transformer.ln_f.weight"), P("transformer.ln_f.bias"), c.normEps),
    );
    if (inp.outputHiddenStates) hidden.push(h);
    const last = headInput(h, inp);
    const logits = model.module("lm_head", last, (x) =>
      F.linear(x, P("lm_head.weight"), opt("lm_head.bias")),
    );
    return inp.outputHiddenStates ? { logits, hiddenStates: hidden } : { logits };
  },
};

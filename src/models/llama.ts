/**
 * Llama, Mistral and Qwen2 (transformers' LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM), in
 * the order of the math. The three differ only in configuration: Mistral adds sliding-window attention,
 * Qwen2 has q/k/v biases (and a sliding window when use_sliding_window), Llama 3 scales rotary
 * frequencies (rope_scaling type "llama3").
 *
 *   h = embed_tokens[ids]
 *   for each layer:  h = h + o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))  with n = RMSNorm(h)
 *                    h = h + down_proj(silu(gate_proj(n)) * up_proj(n))                 with n = RMSNorm(h)
 *   logits = lm_head(RMSNorm(h))
 */
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { ConfigReader, validateConfig, type ModelConfig, type ModelType } from "./config.js";
import {
  activation,
  applyRotaryHalves,
  buildAttentionMask,
  repeatKv,
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

/** Defaults of LlamaConfig, MistralConfig and Qwen2Config (transformers 4.37) for fields a config.json omits. */
const DEFAULTS = {
  llama: {
    vocab: 32000,
    hidden: 4096,
    inter: 11008,
    layers: 32,
    heads: 32,
    kv: null,
    maxPos: 2048,
    eps: 1e-6,
    tie: false,
  },
  mistral: {
    vocab: 32000,
    hidden: 4096,
    inter: 14336,
    layers: 32,
    heads: 32,
    kv: 8,
    maxPos: 4096 * 32,
    eps: 1e-6,
    tie: false,
  },
  qwen2: {
    vocab: 151936,
    hidden: 4096,
    inter: 22016,
    layers: 32,
    heads: 32,
    kv: 32,
    maxPos: 32768,
    eps: 1e-6,
    tie: false,
  },
} as const;

export function parseLlamaConfig(r: ConfigReader, modelType: "llama" | "mistral" | "qwen2"): ModelConfig {
  const D = DEFAULTS[modelType];
  const d = r.int("hidden_size", D.hidden);
  const heads = r.int("num_attention_heads", D.heads);
  const kvHeads = r.int("num_key_value_heads", D.kv ?? heads);
  const headDim = r.int("head_dim", d / heads);
  // Qwen2 applies its window only with use_sliding_window (as transformers after 4.37; real windows,
  // >= 32768, are never reached by the sequences EditEval runs), and then on every layer.
  let sliding: number | null = null;
  // Mistral: absent -> MistralConfig's default 4096; an explicit null -> no window
  if (modelType === "mistral") sliding = "sliding_window" in r.raw ? r.optInt("sliding_window") : 4096;
  if (modelType === "qwen2" && r.bool("use_sliding_window", false)) sliding = r.optInt("sliding_window");
  return validateConfig(
    {
      modelType,
      vocabSize: r.int("vocab_size", D.vocab),
      hiddenSize: d,
      numLayers: r.int("num_hidden_layers", D.layers),
      numHeads: heads,
      numKvHeads: kvHeads,
      headDim,
      intermediateSize: r.int("intermediate_size", D.inter),
      maxPositions: r.int("max_position_embeddings", D.maxPos),
      normEps: r.num("rms_norm_eps", D.eps),
      activation: r.str("hidden_act", "silu"),
      tieWordEmbeddings: r.bool("tie_word_embeddings", false),
      bosTokenId: r.optInt("bos_token_id"),
      eosTokenId: r.tokenIds("eos_token_id"),
      padTokenId: r.optInt("pad_token_id"),
      rotaryDim: headDim,
      ropeTheta: r.num("rope_theta", 10000),
      ropeScaling: r.ropeScaling(),
      slidingWindow: sliding,
      parallelResidual: false,
      attentionBias: modelType === "llama" ? r.bool("attention_bias", false) : false,
      scaleAttnWeights: true,
      scaleAttnByInverseLayerIdx: false,
      raw: r.raw,
    },
    r.file,
  );
}

function makeArchitecture(modelType: ModelType): Architecture {
  const qkvBias = (c: ModelConfig) => modelType === "qwen2" || c.attentionBias;
  return {
    modelType,

    parameterShapes(c) {
      const d = c.hiddenSize;
      const q = c.numHeads * c.headDim;
      const kv = c.numKvHeads * c.headDim;
      const m = new Map<string, number[]>([["model.embed_tokens.weight", [c.vocabSize, d]]]);
      for (let l = 0; l < c.numLayers; l++) {
        const p = `model.layers.${l}`;
        m.set(`${p}.input_layernorm.weight`, [d]);
        m.set(`${p}.self_attn.q_proj.weight`, [q, d]);
        m.set(`${p}.self_attn.k_proj.weight`, [kv, d]);
        m.set(`${p}.self_attn.v_proj.weight`, [kv, d]);
        m.set(`${p}.self_attn.o_proj.weight`, [d, q]);
        if (qkvBias(c)) {
          m.set(`${p}.self_attn.q_proj.bias`, [q])
            .set(`${p}.self_attn.k_proj.bias`, [kv])
            .set(`${p}.self_attn.v_proj.bias`, [kv]);
        }
        if (c.attentionBias) m.set(`${p}.self_attn.o_proj.bias`, [d]);
        m.set(`${p}.post_attention_layernorm.weight`, [d]);
        m.set(`${p}.mlp.gate_proj.weight`, [c.intermediateSize, d]);
        m.set(`${p}.mlp.up_proj.weight`, [c.intermediateSize, d]);
        m.set(`${p}.mlp.down_proj.weight`, [d, c.intermediateSize]);
      }
      m.set("model.norm.weight", [d]);
      m.set("lm_head.weight", [c.vocabSize, d]);
      return m;
    },

    tiedParameters(c) {
      return c.tieWordEmbeddings ? new Map([["lm_head.weight", "model.embed_tokens.weight"]]) : new Map();
    },

    moduleNames() {
      return {
        global: ["model.embed_tokens", "model.norm", "lm_head"],
        perLayer: [
          "model.layers.{}",
          "model.layers.{}.input_layernorm",
          "model.layers.{}.self_attn",
          "model.layers.{}.self_attn.q_proj",
          "model.layers.{}.self_attn.k_proj",
          "model.layers.{}.self_attn.v_proj",
          "model.layers.{}.self_attn.o_proj",
          "model.layers.{}.post_attention_layernorm",
          "model.layers.{}.mlp",
          "model.layers.{}.mlp.gate_proj",
          "model.layers.{}.mlp.up_proj",
          "model.layers.{}.mlp.act_fn",
          "model.layers.{}.mlp.down_proj",
        ],
      };
    },

    ignoredCheckpointKeys: [/\.rotary_emb\.inv_freq$/],

    forward(model: CausalLM, inp: ForwardInputs): ForwardOutput {
      const c = model.config;
      const P = (n: string) => model.param(n);
      const opt = (n: string) => model.params.get(n) ?? null;
      const [B, T] = inp.inputIds.shape as [number, number];
      const past = inp.cache?.length ?? 0;
      const mask = buildAttentionMask(B, T, past, inp.attentionMask ?? null, c.slidingWindow);
      const pos = inp.positionIds ?? defaultPositionIds(B, T, past, inp.attentionMask ?? null);
      const act = activation(c.activation, `${modelType} hidden_act`);
      const { base, positionScale } = rotaryBaseAndScale(
        c.rotaryDim,
        c.ropeTheta,
        c.ropeScaling,
        past + T,
        c.maxPositions,
      );
      const { cos, sin } = rotaryCosSinHalves(
        pos,
        rotaryInvFreq(c.rotaryDim, base, c.ropeScaling, model.dtype),
        positionScale,
      );
      const rope = (x: Tensor) => applyRotaryHalves(x, cos.to(x.dtype), sin.to(x.dtype));
      const H = c.numHeads;
      const Hkv = c.numKvHeads;
      const hd = c.headDim;
      const hidden: Tensor[] = [];
      const linear = (name: string, x: Tensor) =>
        model.module(name, x, (z) => F.linear(z, P(`${name}.weight`), opt(`${name}.bias`)));

      let h = model.module("model.embed_tokens", inp.inputIds, (ids) =>
        F.embedding(ids, P("model.embed_tokens.weight")),
      );
      for (let l = 0; l < c.numLayers; l++) {
        const p = `model.layers.${l}`;
        if (inp.outputHiddenStates) hidden.push(h);
        h = model.block(p, h, (x) => {
          const n1 = model.module(`${p}.input_layernorm`, x, (y) =>
            F.rmsNorm(y, P(`${p}.input_layernorm.weight`), c.normEps),
          );
          const attnOut = model.module(`${p}.self_attn`, n1, (y) => {
            const q = rope(linear(`${p}.self_attn.q_proj`, y).view(B, T, H, hd).transpose(1, 2));
            const k0 = rope(linear(`${p}.self_attn.k_proj`, y).view(B, T, Hkv, hd).transpose(1, 2));
            const v0 = linear(`${p}.self_attn.v_proj`, y).view(B, T, Hkv, hd).transpose(1, 2);
            let k = k0;
            let v = v0;
            if (inp.cache) ({ keys: k, values: v } = inp.cache.update(l, k0, v0));
            const o = scaledDotProductAttention(q, repeatKv(k, H / Hkv), repeatKv(v, H / Hkv), mask, {
              divide: Math.sqrt(hd),
            });
            return linear(
              `${p}.self_attn.o_proj`,
              o
                .transpose(1, 2)
                .contiguous()
                .view(B, T, H * hd),
            );
          });
          const x1 = x.add(attnOut);
          const n2 = model.module(`${p}.post_attention_layernorm`, x1, (y) =>
            F.rmsNorm(y, P(`${p}.post_attention_layernorm.weight`), c.normEps),
          );
          const mlpOut = model.module(`${p}.mlp`, n2, (y) => {
            const gate = model.module(`${p}.mlp.act_fn`, linear(`${p}.mlp.gate_proj`, y), act);
            return linear(`${p}.mlp.down_proj`, gate.mul(linear(`${p}.mlp.up_proj`, y)));
          });
          return x1.add(mlpOut);
        });
      }
      h = model.module("model.norm", h, (x) => F.rmsNorm(x, P("model.norm.weight"), c.normEps));
      if (inp.outputHiddenStates) hidden.push(h);
      const last = headInput(h, inp);
      const logits = model.module("lm_head", last, (x) => F.linear(x, P("lm_head.weight")));
      return inp.outputHiddenStates ? { logits, hiddenStates: hidden } : { logits };
    },
  };
}

export const llama = makeArchitecture("llama");
export const mistral = makeArchitecture("mistral");
export const qwen2 = makeArchitecture("qwen2");

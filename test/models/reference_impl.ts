/**
 * An independent, deliberately naive float64 oracle of the causal-LM forward pass of five Hugging Face
 * families: GPT-J (`gptj`), GPT-NeoX / Pythia (`gpt_neox`), Llama (`llama`, incl. GQA and rope_scaling
 * linear / dynamic / llama3), Mistral (`mistral`, sliding window) and Qwen2 (`qwen2`).
 *
 * Written from the transformers v4.37.2 source (modeling_gptj.py, modeling_gpt_neox.py,
 * modeling_llama.py, modeling_mistral.py, modeling_qwen2.py, modeling_attn_mask_utils.py), plus
 * modeling_rope_utils.py of a later version for the `llama3` rope type, which v4.37.2 does not have.
 * It never calls anything from src/models/ and does not use the tensor library: plain JavaScript
 * numbers, explicit loops over positions, heads and dimensions, one batch row at a time.
 *
 * Semantics, as transformers computes them mathematically. Its float32 islands inside a float64 model
 * are left out on purpose (GPT-J's attention scores, Llama-family RMSNorm and softmax run in float32 in
 * transformers even for float64 models), except the rotary tables: by default they are built with
 * transformers' float32 rounding (RefOptions.rotaryTables), since those tables are constants of the
 * model rather than a precision choice of the computation; "float64" gives the exact-math tables.
 *
 *  - Attention: softmax(q k^T / sqrt(head_dim) + mask) v, per head. The mask is transformers' additive
 *    mask (finfo.min where masked), which for a row with at least one visible key is exactly "leave the
 *    masked keys out". A key j is visible from query i when j <= i (causal, over absolute indices
 *    including the cached past), attention_mask[j] == 1, and, with a sliding window W,
 *    i - j < W: `AttentionMaskConverter._make_causal_mask` of v4.37.2 uses
 *    `diagonal = past_key_values_length - sliding_window + 1; context_mask = 1 - triu(ones, diagonal)`,
 *    which masks i - j >= W, so a query sees W keys including itself. (Later versions changed this to
 *    `diagonal = past - sliding_window - 1` with `tril`, i.e. W + 1 keys; see transformers issue #29623.)
 *    Qwen2 v4.37.2 passes `sliding_window=config.sliding_window` to the eager mask unconditionally
 *    (use_sliding_window is only read by the flash-attention path), so the same window applies there.
 *    A query row that sees no key at all (a left-pad position) gets a zero output here (transformers
 *    gives an average over all keys); such rows never reach a real position.
 *  - Grouped-query attention (`repeat_kv`): query head h reads key/value head floor(h / (H / KV)).
 *  - Rotary embeddings, applied to q and k after the projection, before caching:
 *      GPT-J: `create_sinusoidal_positions(max_pos, rotary_dim)`, inv_freq_i = 10000^(-2i/rotary_dim),
 *        `rotate_every_two` on the first rotary_dim dims: pairs (2i, 2i+1) rotated by pos * inv_freq_i.
 *      GPT-NeoX: rotary_ndims = int(head_size * rotary_pct), base rotary_emb_base, `rotate_half` on the
 *        first rotary_ndims dims: dims (i, i + rotary_ndims/2) rotated by pos * inv_freq_i.
 *      Llama / Mistral / Qwen2: `rotate_half` on the whole head, base rope_theta, and for Llama
 *        rope_scaling: linear (t = pos / factor), dynamic NTK (v4.37.2
 *        `LlamaDynamicNTKScalingRotaryEmbedding`: when the key length seq_len (past + new) exceeds
 *        max_position_embeddings, base' = base * (factor * seq_len / max_pos - (factor - 1))^(dim / (dim - 2));
 *        computed from the key length of the current call, i.e. a freshly loaded model's behaviour), and
 *        llama3 (`_compute_llama3_parameters`: wavelengths above original_max / low_freq_factor are divided
 *        by factor, those below original_max / high_freq_factor are kept, those between are smoothed).
 *  - Blocks:
 *      GPT-J: h = attn(ln_1(h)) + mlp(ln_1(h)) + h (parallel, one layer norm); q/k/v/out_proj have no bias;
 *        mlp fc_in -> activation_function (default gelu_new) -> fc_out, with biases; ln_f; lm_head with bias.
 *      GPT-NeoX: attn(input_layernorm(h)) with the fused query_key_value laid out per head as
 *        [q | k | v] (view [.., heads, 3 * head_size]) and biases; parallel:
 *        h = mlp(post_attention_layernorm(h)) + attn + h; sequential: a = attn + h,
 *        h = mlp(post_attention_layernorm(a)) + a; hidden_act default gelu (exact erf); final_layer_norm;
 *        embed_out without bias.
 *      Llama family: h = h + o_proj(attn(rms(h))); h = h + down(act(gate(rms(h))) * up(rms(h)));
 *        RMSNorm x / sqrt(mean(x^2) + eps) * w; Qwen2 has q/k/v biases (o_proj none); Llama
 *        attention_bias puts biases on q, k, v and o; model.norm; lm_head, tied to embed_tokens when
 *        tie_word_embeddings.
 */

export interface RefTensor {
  shape: number[];
  data: Float64Array;
}
export type RefWeights = Map<string, RefTensor>;
export type HfConfig = Record<string, unknown>;

export interface RefInputs {
  /** [B][T] token ids */
  inputIds: number[][];
  /** [B][T] 1 real, 0 padding; default all ones */
  attentionMask?: number[][];
  /** [B][T]; default cumsum(mask) - 1 with padding at 1 (transformers' generate rule), i.e. 0..T-1 unpadded */
  positionIds?: number[][];
}

export interface RefOptions {
  /**
   * Precision of the rotary tables (inverse frequencies, angles, cos and sin). "float32" (default) is
   * what transformers does whatever the model dtype: v4.37.2 builds inv_freq from
   * `torch.arange(...).float()` and the cos/sin caches in float32 (GPT-J's `create_sinusoidal_positions`
   * likewise ends in `.float()`), and only then casts them to the model dtype; every rounding step is
   * emulated here with Math.fround. "float64" evaluates the same formulas exactly in float64.
   */
  rotaryTables?: "float32" | "float64";
  /**
   * Process the sequence in consecutive chunks of these lengths (summing to T) with a key/value cache,
   * as a cached forward does: keys are rotated when computed, and the dynamic-NTK base is taken from the
   * key length at each call. Default: one chunk of T.
   */
  chunks?: number[];
}

// ------------------------------------------------------------------------------------------------
// scalar functions
// ------------------------------------------------------------------------------------------------

/** erf in float64: erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)) (positive terms). */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax >= 6.5) return Math.sign(x);
  const x2 = ax * ax;
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 500; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  const r = (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
  return x < 0 ? -r : r;
}

const ACTIVATIONS: Record<string, (x: number) => number> = {
  // transformers GELUActivation: nn.functional.gelu (exact erf form)
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  // NewGELUActivation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  gelu_new: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
  gelu_pytorch_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
  silu: (x) => x / (1 + Math.exp(-x)),
  swish: (x) => x / (1 + Math.exp(-x)),
  relu: (x) => Math.max(0, x),
};

function act(name: string): (x: number) => number {
  const f = ACTIVATIONS[name];
  if (!f) throw new Error(`reference: activation '${name}' not implemented`);
  return f;
}

// ------------------------------------------------------------------------------------------------
// vector helpers
// ------------------------------------------------------------------------------------------------

function W(weights: RefWeights, name: string): RefTensor {
  const t = weights.get(name);
  if (!t) throw new Error(`reference: missing weight '${name}'`);
  return t;
}

/** y = W x + b with W [out, in] (nn.Linear). */
function linear(x: Float64Array, w: RefTensor, b?: RefTensor | null): Float64Array {
  const [out, inp] = w.shape as [number, number];
  if (x.length !== inp) throw new Error(`reference: linear expects ${inp} inputs, got ${x.length}`);
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    const row = o * inp;
    for (let i = 0; i < inp; i++) s += w.data[row + i]! * x[i]!;
    y[o] = b ? s + b.data[o]! : s;
  }
  return y;
}

/** nn.LayerNorm: (x - mean) / sqrt(var + eps) * g + b, biased variance. */
function layerNorm(x: Float64Array, g: RefTensor, b: RefTensor, eps: number): Float64Array {
  const n = x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i]!;
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[i]! - mean) * (x[i]! - mean);
  v /= n;
  const inv = 1 / Math.sqrt(v + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = (x[i]! - mean) * inv * g.data[i]! + b.data[i]!;
  return y;
}

/** LlamaRMSNorm: w * x / sqrt(mean(x^2) + eps). */
function rmsNorm(x: Float64Array, g: RefTensor, eps: number): Float64Array {
  const n = x.length;
  let ms = 0;
  for (let i = 0; i < n; i++) ms += x[i]! * x[i]!;
  ms /= n;
  const inv = 1 / Math.sqrt(ms + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = g.data[i]! * (x[i]! * inv);
  return y;
}

function addInto(a: Float64Array, b: Float64Array): Float64Array {
  const y = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i]! + b[i]!;
  return y;
}

// ------------------------------------------------------------------------------------------------
// config
// ------------------------------------------------------------------------------------------------

type Family = "gptj" | "gpt_neox" | "llama" | "mistral" | "qwen2";

interface RopeSpec {
  /** "every_two": GPT-J pairs (2i, 2i+1); "half": (i, i + dim/2) */
  style: "every_two" | "half";
  dim: number;
  base: number;
  scaling: {
    type: "linear" | "dynamic" | "llama3";
    factor: number;
    lowFreqFactor?: number;
    highFreqFactor?: number;
    originalMax?: number;
  } | null;
  maxPositions: number;
}

interface Spec {
  family: Family;
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  act: (x: number) => number;
  rope: RopeSpec;
  slidingWindow: number | null;
  parallelResidual: boolean;
  tied: boolean;
  attentionBias: boolean;
}

function num(c: HfConfig, k: string, def?: number): number {
  const v = c[k];
  if (v === undefined || v === null) {
    if (def === undefined) throw new Error(`reference: config field '${k}' is required`);
    return def;
  }
  if (typeof v !== "number") throw new Error(`reference: config field '${k}' must be a number`);
  return v;
}
function bool(c: HfConfig, k: string, def: boolean): boolean {
  const v = c[k];
  return typeof v === "boolean" ? v : def;
}
function str(c: HfConfig, k: string, def: string): string {
  const v = c[k];
  return typeof v === "string" ? v : def;
}

function ropeScaling(c: HfConfig): RopeSpec["scaling"] {
  const rs = c["rope_scaling"] as Record<string, unknown> | null | undefined;
  if (!rs) return null;
  const type = (rs["rope_type"] ?? rs["type"]) as string;
  if (type === "default") return null;
  if (type !== "linear" && type !== "dynamic" && type !== "llama3")
    throw new Error(`reference: rope_scaling type '${type}' not implemented`);
  return {
    type,
    factor: rs["factor"] as number,
    lowFreqFactor: rs["low_freq_factor"] as number | undefined,
    highFreqFactor: rs["high_freq_factor"] as number | undefined,
    originalMax: rs["original_max_position_embeddings"] as number | undefined,
  };
}

/** Reads config.json fields with the defaults of each transformers v4.37.2 configuration class. */
function parseSpec(c: HfConfig): Spec {
  const family = c["model_type"] as Family;
  switch (family) {
    case "gptj": {
      // GPTJConfig(vocab_size=50400, n_positions=2048, n_embd=4096, n_layer=28, n_head=16, rotary_dim=64,
      //   n_inner=None, activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=False)
      const hidden = num(c, "n_embd", 4096);
      const heads = num(c, "n_head", 16);
      const headDim = hidden / heads;
      const rd = c["rotary_dim"] === null ? headDim : num(c, "rotary_dim", 64);
      return {
        family,
        vocab: num(c, "vocab_size", 50400),
        hidden,
        layers: num(c, "n_layer", 28),
        heads,
        kvHeads: heads,
        headDim,
        eps: num(c, "layer_norm_epsilon", 1e-5),
        act: act(str(c, "activation_function", "gelu_new")),
        rope: {
          style: "every_two",
          dim: rd,
          base: 10000,
          scaling: null,
          maxPositions: num(c, "n_positions", 2048),
        },
        slidingWindow: null,
        parallelResidual: true,
        tied: bool(c, "tie_word_embeddings", false),
        attentionBias: false,
      };
    }
    case "gpt_neox": {
      // GPTNeoXConfig(vocab_size=50432, hidden_size=6144, num_hidden_layers=44, num_attention_heads=64,
      //   intermediate_size=24576, hidden_act="gelu", rotary_pct=0.25, rotary_emb_base=10000,
      //   max_position_embeddings=2048, layer_norm_eps=1e-5, use_parallel_residual=True,
      //   rope_scaling=None, tie_word_embeddings=False)
      const hidden = num(c, "hidden_size", 6144);
      const heads = num(c, "num_attention_heads", 64);
      const headDim = hidden / heads;
      return {
        family,
        vocab: num(c, "vocab_size", 50432),
        hidden,
        layers: num(c, "num_hidden_layers", 44),
        heads,
        kvHeads: heads,
        headDim,
        eps: num(c, "layer_norm_eps", 1e-5),
        act: act(str(c, "hidden_act", "gelu")),
        rope: {
          style: "half",
          dim: Math.trunc(headDim * num(c, "rotary_pct", 0.25)),
          base: num(c, "rotary_emb_base", 10000),
          scaling: ropeScaling(c),
          maxPositions: num(c, "max_position_embeddings", 2048),
        },
        slidingWindow: null,
        parallelResidual: bool(c, "use_parallel_residual", true),
        tied: bool(c, "tie_word_embeddings", false),
        attentionBias: true,
      };
    }
    case "llama":
    case "mistral":
    case "qwen2": {
      const hidden = num(c, "hidden_size", 4096);
      const heads = num(c, "num_attention_heads", 32);
      // LlamaConfig: num_key_value_heads=None -> num_attention_heads; MistralConfig default 8;
      // Qwen2Config default 32
      const kvDefault = family === "mistral" ? 8 : family === "qwen2" ? 32 : heads;
      const headDim = hidden / heads;
      const maxPos = num(
        c,
        "max_position_embeddings",
        family === "llama" ? 2048 : family === "mistral" ? 4096 * 32 : 32768,
      );
      let slidingWindow: number | null = null;
      if (family === "mistral")
        slidingWindow = c["sliding_window"] === null ? null : num(c, "sliding_window", 4096);
      if (family === "qwen2")
        slidingWindow = c["sliding_window"] === null ? null : num(c, "sliding_window", 4096);
      return {
        family,
        vocab: num(c, "vocab_size", family === "qwen2" ? 151936 : 32000),
        hidden,
        layers: num(c, "num_hidden_layers", 32),
        heads,
        // an explicit null becomes num_attention_heads ("for backward compatibility" in each config class)
        kvHeads: c["num_key_value_heads"] === null ? heads : num(c, "num_key_value_heads", kvDefault),
        headDim,
        eps: num(c, "rms_norm_eps", 1e-6),
        act: act(str(c, "hidden_act", "silu")),
        rope: {
          style: "half",
          dim: headDim,
          base: num(c, "rope_theta", 10000),
          scaling: family === "llama" ? ropeScaling(c) : null,
          maxPositions: maxPos,
        },
        slidingWindow,
        parallelResidual: false,
        tied: bool(c, "tie_word_embeddings", false),
        attentionBias: family === "llama" ? bool(c, "attention_bias", false) : false,
      };
    }
    default:
      throw new Error(`reference: model_type '${String(family)}' not implemented`);
  }
}

// ------------------------------------------------------------------------------------------------
// rotary
// ------------------------------------------------------------------------------------------------

/**
 * inv_freq_i = 1 / base^(2i / dim), i < dim / 2, with the rope scaling's change of frequencies. With
 * f32, each torch float32 operation of transformers is rounded as torch rounds it:
 * `1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))` (the Python-float base becomes a float32
 * scalar), and for llama3 `wavelen = 2 * math.pi / inv_freq` (torch evaluates scalar / tensor as
 * reciprocal(tensor) * scalar; tensor / scalar divides by the scalar rounded to float32), comparisons
 * against float32 scalars, `inv_freq / factor`, and the smoothing `(old / wavelen - low) / (high - low)`,
 * `(1 - s) * inv / factor + s * inv`, step by step as on the CPU.
 */
function invFreqs(rope: RopeSpec, keyLength: number, f32: boolean): number[] {
  const r = f32 ? Math.fround : (x: number) => x;
  let base = rope.base;
  const d = rope.dim;
  const sc = rope.scaling;
  if (sc?.type === "dynamic" && keyLength > rope.maxPositions) {
    // computed in Python floats (float64), then used as a scalar of the float32 power
    base = base * Math.pow((sc.factor * keyLength) / rope.maxPositions - (sc.factor - 1), d / (d - 2));
  }
  const inv: number[] = [];
  for (let i = 0; i < d / 2; i++) inv.push(r(1 / r(Math.pow(r(base), r((2 * i) / d)))));
  if (sc?.type === "llama3") {
    const factor = sc.factor;
    const low = sc.lowFreqFactor as number;
    const high = sc.highFreqFactor as number;
    const old = sc.originalMax as number;
    const lowWavelen = old / low;
    const highWavelen = old / high;
    // a float32 tensor divided by a Python scalar: the scalar is rounded to float32 first
    const divS = (x: number, s: number) => r(x / r(s));
    return inv.map((f) => {
      const wavelen = f32 ? r(r(1 / f) * r(2 * Math.PI)) : (2 * Math.PI) / f;
      const scaled = divS(f, factor);
      if (wavelen < r(highWavelen)) return f; // high frequency: kept
      if (wavelen > r(lowWavelen)) return scaled; // low frequency: divided by factor
      // medium: smoothed between the two (inv_freq_llama is still f here)
      const smooth = divS(r(r(r(1 / wavelen) * r(old)) - r(low)), r(high - low));
      return r(r(divS(r(r(1 - smooth) * f), factor)) + r(smooth * f));
    });
  }
  return inv;
}

/**
 * Rotates the first rope.dim dims of one head vector (a copy) for position pos. With f32, the angle
 * t * inv_freq and its cos / sin are float32 values, as in transformers' cos/sin caches (t = positions,
 * for linear scaling `t / scaling_factor` in float32).
 */
function rotate(x: Float64Array, pos: number, rope: RopeSpec, inv: number[], f32: boolean): Float64Array {
  const r = f32 ? Math.fround : (v: number) => v;
  const y = Float64Array.from(x);
  const t = rope.scaling?.type === "linear" ? r(pos / r(rope.scaling.factor)) : pos;
  const half = rope.dim / 2;
  for (let i = 0; i < half; i++) {
    const ang = r(t * inv[i]!);
    const c = r(Math.cos(ang));
    const s = r(Math.sin(ang));
    // every_two: (x[2i], x[2i+1]); half: (x[i], x[i + dim/2]); both rotate (a, b) -> (a c - b s, b c + a s)
    const ia = rope.style === "every_two" ? 2 * i : i;
    const ib = rope.style === "every_two" ? 2 * i + 1 : i + half;
    const a = x[ia]!;
    const b = x[ib]!;
    y[ia] = a * c - b * s;
    y[ib] = b * c + a * s;
  }
  return y;
}

// ------------------------------------------------------------------------------------------------
// forward
// ------------------------------------------------------------------------------------------------

interface LayerCache {
  /** per absolute position: per kv head: rotated key / value */
  k: Float64Array[][];
  v: Float64Array[][];
}

/** Per-position q / k / v, split into heads. */
interface QKV {
  q: Float64Array[];
  k: Float64Array[];
  v: Float64Array[];
}

function splitHeads(x: Float64Array, heads: number, hd: number, offset = 0): Float64Array[] {
  const out: Float64Array[] = [];
  for (let h = 0; h < heads; h++) out.push(x.slice(offset + h * hd, offset + (h + 1) * hd));
  return out;
}

function qkvFor(spec: Spec, weights: RefWeights, l: number, x: Float64Array): QKV {
  const { heads, kvHeads, headDim: hd } = spec;
  if (spec.family === "gptj") {
    const p = `transformer.h.${l}.attn.`;
    return {
      q: splitHeads(linear(x, W(weights, p + "q_proj.weight")), heads, hd),
      k: splitHeads(linear(x, W(weights, p + "k_proj.weight")), heads, hd),
      v: splitHeads(linear(x, W(weights, p + "v_proj.weight")), heads, hd),
    };
  }
  if (spec.family === "gpt_neox") {
    const p = `gpt_neox.layers.${l}.attention.`;
    const fused = linear(x, W(weights, p + "query_key_value.weight"), W(weights, p + "query_key_value.bias"));
    // view(..., heads, 3 * head_size): head h owns fused[h*3hd .. (h+1)*3hd) = [q | k | v]
    const q: Float64Array[] = [];
    const k: Float64Array[] = [];
    const v: Float64Array[] = [];
    for (let h = 0; h < heads; h++) {
      const o = h * 3 * hd;
      q.push(fused.slice(o, o + hd));
      k.push(fused.slice(o + hd, o + 2 * hd));
      v.push(fused.slice(o + 2 * hd, o + 3 * hd));
    }
    return { q, k, v };
  }
  const p = `model.layers.${l}.self_attn.`;
  const hasBias = spec.family === "qwen2" || spec.attentionBias;
  const b = (n: string) => (hasBias ? W(weights, p + n + "_proj.bias") : null);
  return {
    q: splitHeads(linear(x, W(weights, p + "q_proj.weight"), b("q")), heads, hd),
    k: splitHeads(linear(x, W(weights, p + "k_proj.weight"), b("k")), kvHeads, hd),
    v: splitHeads(linear(x, W(weights, p + "v_proj.weight"), b("v")), kvHeads, hd),
  };
}

function attnOut(spec: Spec, weights: RefWeights, l: number, merged: Float64Array): Float64Array {
  if (spec.family === "gptj") return linear(merged, W(weights, `transformer.h.${l}.attn.out_proj.weight`));
  if (spec.family === "gpt_neox")
    return linear(
      merged,
      W(weights, `gpt_neox.layers.${l}.attention.dense.weight`),
      W(weights, `gpt_neox.layers.${l}.attention.dense.bias`),
    );
  const p = `model.layers.${l}.self_attn.o_proj.`;
  return linear(merged, W(weights, p + "weight"), spec.attentionBias ? W(weights, p + "bias") : null);
}

function mlp(spec: Spec, weights: RefWeights, l: number, x: Float64Array): Float64Array {
  if (spec.family === "gptj") {
    const p = `transformer.h.${l}.mlp.`;
    const h = linear(x, W(weights, p + "fc_in.weight"), W(weights, p + "fc_in.bias")).map(spec.act);
    return linear(h, W(weights, p + "fc_out.weight"), W(weights, p + "fc_out.bias"));
  }
  if (spec.family === "gpt_neox") {
    const p = `gpt_neox.layers.${l}.mlp.`;
    const h = linear(x, W(weights, p + "dense_h_to_4h.weight"), W(weights, p + "dense_h_to_4h.bias")).map(
      spec.act,
    );
    return linear(h, W(weights, p + "dense_4h_to_h.weight"), W(weights, p + "dense_4h_to_h.bias"));
  }
  const p = `model.layers.${l}.mlp.`;
  const g = linear(x, W(weights, p + "gate_proj.weight"));
  const u = linear(x, W(weights, p + "up_proj.weight"));
  const h = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) h[i] = spec.act(g[i]!) * u[i]!;
  return linear(h, W(weights, p + "down_proj.weight"));
}

function embed(spec: Spec, weights: RefWeights, id: number): Float64Array {
  const name =
    spec.family === "gptj"
      ? "transformer.wte.weight"
      : spec.family === "gpt_neox"
        ? "gpt_neox.embed_in.weight"
        : "model.embed_tokens.weight";
  const e = W(weights, name);
  if (!(id >= 0 && id < spec.vocab)) throw new Error(`reference: token id ${id} out of range`);
  return e.data.slice(id * spec.hidden, (id + 1) * spec.hidden);
}

function finalLogits(spec: Spec, weights: RefWeights, h: Float64Array): Float64Array {
  if (spec.family === "gptj") {
    const x = layerNorm(
      h,
      W(weights, "transformer.ln_f.weight"),
      W(weights, "transformer.ln_f.bias"),
      spec.eps,
    );
    return linear(x, W(weights, "lm_head.weight"), W(weights, "lm_head.bias"));
  }
  if (spec.family === "gpt_neox") {
    const x = layerNorm(
      h,
      W(weights, "gpt_neox.final_layer_norm.weight"),
      W(weights, "gpt_neox.final_layer_norm.bias"),
      spec.eps,
    );
    return linear(
      x,
      W(
        weights,
        spec.tied && !weights.has("embed_out.weight") ? "gpt_neox.embed_in.weight" : "embed_out.weight",
      ),
    );
  }
  const x = rmsNorm(h, W(weights, "model.norm.weight"), spec.eps);
  const head = spec.tied && !weights.has("lm_head.weight") ? "model.embed_tokens.weight" : "lm_head.weight";
  return linear(x, W(weights, head));
}

/** Logits [T][V] of one batch row. */
function forwardRow(
  spec: Spec,
  weights: RefWeights,
  ids: number[],
  mask: number[],
  positions: number[],
  chunks: number[],
  f32: boolean,
): Float64Array[] {
  const T = ids.length;
  const { heads, kvHeads, headDim: hd, layers } = spec;
  const group = heads / kvHeads;
  const caches: LayerCache[] = Array.from({ length: layers }, () => ({ k: [], v: [] }));
  const logits: Float64Array[] = [];
  let start = 0;
  for (const len of chunks) {
    const end = start + len;
    const inv = invFreqs(spec.rope, end, f32); // key length of this call = past + new
    // hidden states of the new positions
    let hs: Float64Array[] = [];
    for (let i = start; i < end; i++) hs.push(embed(spec, weights, ids[i]!));
    for (let l = 0; l < layers; l++) {
      const cache = caches[l]!;
      const lnIn: Float64Array[] = hs.map((h) => {
        if (spec.family === "gptj")
          return layerNorm(
            h,
            W(weights, `transformer.h.${l}.ln_1.weight`),
            W(weights, `transformer.h.${l}.ln_1.bias`),
            spec.eps,
          );
        if (spec.family === "gpt_neox")
          return layerNorm(
            h,
            W(weights, `gpt_neox.layers.${l}.input_layernorm.weight`),
            W(weights, `gpt_neox.layers.${l}.input_layernorm.bias`),
            spec.eps,
          );
        return rmsNorm(h, W(weights, `model.layers.${l}.input_layernorm.weight`), spec.eps);
      });
      // projections, rotary, append to the cache
      const queries: Float64Array[][] = [];
      lnIn.forEach((x, n) => {
        const pos = positions[start + n]!;
        const { q, k, v } = qkvFor(spec, weights, l, x);
        queries.push(q.map((qh) => rotate(qh, pos, spec.rope, inv, f32)));
        cache.k.push(k.map((kh) => rotate(kh, pos, spec.rope, inv, f32)));
        cache.v.push(v);
      });
      // attention over the cache, one query position and one head at a time
      const attn: Float64Array[] = [];
      for (let n = 0; n < len; n++) {
        const i = start + n;
        const merged = new Float64Array(heads * hd);
        for (let h = 0; h < heads; h++) {
          const kvh = Math.floor(h / group);
          const qh = queries[n]![h]!;
          const visible: number[] = [];
          const scores: number[] = [];
          for (let j = 0; j <= i; j++) {
            if (mask[j] !== 1) continue;
            if (spec.slidingWindow !== null && i - j >= spec.slidingWindow) continue;
            const kh = cache.k[j]![kvh]!;
            let s = 0;
            for (let d = 0; d < hd; d++) s += qh[d]! * kh[d]!;
            visible.push(j);
            scores.push(s / Math.sqrt(hd));
          }
          if (visible.length === 0) continue; // a padding query: no visible key
          const m = Math.max(...scores);
          const e = scores.map((s) => Math.exp(s - m));
          const z = e.reduce((a, b) => a + b, 0);
          for (let t = 0; t < visible.length; t++) {
            const p = e[t]! / z;
            const vh = cache.v[visible[t]!]![kvh]!;
            for (let d = 0; d < hd; d++) merged[h * hd + d] = merged[h * hd + d]! + p * vh[d]!;
          }
        }
        attn.push(attnOut(spec, weights, l, merged));
      }
      // residual structure of each family
      hs = hs.map((h, n) => {
        const a = attn[n]!;
        if (spec.family === "gptj") return addInto(addInto(a, mlp(spec, weights, l, lnIn[n]!)), h);
        if (spec.family === "gpt_neox") {
          const ln2 = (x: Float64Array) =>
            layerNorm(
              x,
              W(weights, `gpt_neox.layers.${l}.post_attention_layernorm.weight`),
              W(weights, `gpt_neox.layers.${l}.post_attention_layernorm.bias`),
              spec.eps,
            );
          if (spec.parallelResidual) return addInto(addInto(mlp(spec, weights, l, ln2(h)), a), h);
          const r = addInto(a, h);
          return addInto(mlp(spec, weights, l, ln2(r)), r);
        }
        const r = addInto(h, a);
        const x = rmsNorm(r, W(weights, `model.layers.${l}.post_attention_layernorm.weight`), spec.eps);
        return addInto(r, mlp(spec, weights, l, x));
      });
    }
    for (const h of hs) logits.push(finalLogits(spec, weights, h));
    start = end;
  }
  if (start !== T) throw new Error(`reference: chunks sum to ${start}, but the sequence has ${T} tokens`);
  return logits;
}

/** Logits [B][T][V] (float64) of a batch, as the given family's transformers model computes them. */
export function referenceLogits(
  config: HfConfig,
  weights: RefWeights,
  inputs: RefInputs,
  opts: RefOptions = {},
): Float64Array[][] {
  const spec = parseSpec(config);
  if (spec.heads % spec.kvHeads !== 0) throw new Error("reference: heads must be a multiple of kv heads");
  return inputs.inputIds.map((ids, b) => {
    const T = ids.length;
    const mask = inputs.attentionMask?.[b] ?? new Array<number>(T).fill(1);
    let positions = inputs.positionIds?.[b];
    if (!positions) {
      let c = 0;
      positions = mask.map((m) => {
        c += m;
        return m === 0 ? 1 : c - 1;
      });
    }
    return forwardRow(
      spec,
      weights,
      ids,
      mask,
      positions,
      opts.chunks ?? [T],
      (opts.rotaryTables ?? "float32") === "float32",
    );
  });
}

/** Greedy continuation by the reference: full recomputation at each step, or a cached run (prompt, then 1-token chunks). */
export function referenceGreedy(
  config: HfConfig,
  weights: RefWeights,
  prompt: number[],
  maxNewTokens: number,
  opts: { cached?: boolean; rotaryTables?: "float32" | "float64" } = {},
): number[] {
  const ids = [...prompt];
  const out: number[] = [];
  for (let s = 0; s < maxNewTokens; s++) {
    const chunks = opts.cached ? [prompt.length, ...new Array<number>(s).fill(1)] : [ids.length];
    const [row] = referenceLogits(
      config,
      weights,
      { inputIds: [ids] },
      { chunks, rotaryTables: opts.rotaryTables },
    );
    const last = row![row!.length - 1]!;
    let best = 0;
    for (let v = 1; v < last.length; v++) if (last[v]! > last[best]!) best = v;
    out.push(best);
    ids.push(best);
  }
  return out;
}

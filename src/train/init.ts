/**
 * A GPT-2 CausalLM with fresh weights, initialised as transformers' GPT2PreTrainedModel._init_weights
 * does: Conv1D and embedding weights ~ N(0, initializer_range), biases 0, layer norms (1, 0), and the
 * residual projections (attn.c_proj, mlp.c_proj) ~ N(0, initializer_range / sqrt(2 n_layer)).
 * The lm_head is tied to the token embedding.
 */
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { ConfigReader } from "../models/config.js";
import { ARCHITECTURES } from "../models/load.js";
import { CausalLM } from "../models/model.js";

export interface Gpt2Dims {
  vocabSize: number;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  /** context length (n_positions) */
  nPositions: number;
  /** MLP width (default 4 * nEmbd) */
  nInner?: number | null;
  /** default 0.02 */
  initializerRange?: number;
}

/** config.json of a GPT-2 model with these dimensions, as transformers writes it (no dropout). */
export function gpt2ConfigJson(d: Gpt2Dims, tokens: { bos: number; eos: number }): Record<string, unknown> {
  if (d.nEmbd % d.nHead !== 0) throw new Error(`n_embd ${d.nEmbd} is not divisible by n_head ${d.nHead}`);
  return {
    activation_function: "gelu_new",
    architectures: ["GPT2LMHeadModel"],
    attn_pdrop: 0.0,
    bos_token_id: tokens.bos,
    embd_pdrop: 0.0,
    eos_token_id: tokens.eos,
    initializer_range: d.initializerRange ?? 0.02,
    layer_norm_epsilon: 1e-5,
    model_type: "gpt2",
    n_embd: d.nEmbd,
    n_head: d.nHead,
    n_inner: d.nInner ?? null,
    n_layer: d.nLayer,
    n_positions: d.nPositions,
    reorder_and_upcast_attn: false,
    resid_pdrop: 0.0,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    summary_activation: null,
    summary_first_dropout: 0.0,
    summary_proj_to_labels: true,
    summary_type: "cls_index",
    summary_use_proj: true,
    tie_word_embeddings: true,
    torch_dtype: "float32",
    use_cache: true,
    vocab_size: d.vocabSize,
  };
}

/** Whether a parameter is a residual projection (scaled init). */
function isResidualProjection(name: string): boolean {
  return /\.(attn|mlp)\.c_proj\.weight$/.test(name);
}

/**
 * A freshly initialised GPT-2 from a config.json object; parameters require gradients. The same seed
 * gives the same weights.
 */
export function initGpt2(configJson: Record<string, unknown>, seed: number): CausalLM {
  const entry = ARCHITECTURES.gpt2;
  if (!entry) throw new Error("gpt2 architecture is not registered");
  const config = entry.parse(new ConfigReader(configJson, "config.json"));
  const std = typeof configJson.initializer_range === "number" ? configJson.initializer_range : 0.02;
  const gen = new torch.Generator(seed);
  const tied = entry.arch.tiedParameters(config);
  const params = new Map<string, Tensor>();
  for (const [name, shape] of entry.arch.parameterShapes(config)) {
    if (tied.has(name)) continue;
    const t = torch.scope(() => {
      if (/\.(ln_\d|ln_f)\.weight$/.test(name)) return torch.ones(shape);
      if (name.endsWith(".bias")) return torch.zeros(shape);
      const s = isResidualProjection(name) ? std / Math.sqrt(2 * config.numLayers) : std;
      return torch.randn(shape, { generator: gen }).mul(s);
    });
    params.set(name, t.keep().requiresGrad_(true));
  }
  for (const [name, source] of tied) params.set(name, params.get(source) as Tensor);
  return new CausalLM(config, entry.arch, params);
}

// GPT-J, GPT-NeoX (parallel and sequential residual), Mistral (sliding window, GQA), Qwen2 (biases, tied
// embeddings) and Llama variants (GQA, rope_scaling linear / dynamic / llama3) against the independent
// float64 oracle of test/models/reference_impl.ts (written from the transformers v4.37.2 source).
// Each case writes a tiny random checkpoint in the Hugging Face layout, loads it through loadModel and
// checks: logits of one sequence (float64 and float32), a left-padded batch, a chunked KV-cached forward,
// and greedy generation with and without the cache. EditEval against itself (padded vs unpadded, cached
// vs one pass) must agree to 1e-10 in float64; against the oracle to TOL_F64_ORACLE, because EditEval's
// rotary tables follow transformers' float32 ones (the last test compares with a float64-exact oracle).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import { loadSafetensors, saveSafetensors } from "../../src/torch/io.js";
import { loadModel } from "../../src/models/load.js";
import { generate } from "../../src/models/generate.js";
import type { CausalLM } from "../../src/models/model.js";
import { FIXTURES, maxAbsDiff } from "../helpers.js";
import { referenceGreedy, referenceLogits, type HfConfig, type RefWeights } from "./reference_impl.js";

/** float64, where rotary tables do not enter (or are computed identically): EditEval against itself */
const TOL_F64_SELF = 1e-10;
/** the float64-exact target of the oracle (see the last test) */
const TOL64 = 1e-10;
/**
 * float64 EditEval against the oracle with transformers' float32 rotary tables: the oracle rounds each
 * table entry correctly (Math.fround of a float64 cos), libtorch's vectorised float32 sin/cos is off by
 * one ulp in ~1 entry of 8, which moves these tiny models' logits by up to ~2e-6. Structural errors
 * (a wrong window, layout, bias, scaling) move them by 1e-2 and more.
 */
const TOL_F64_ORACLE = 1e-5;
const TOL32 = 1e-4;

// ------------------------------------------------------------------------------------------------
// random numbers (own generator: mulberry32 + Box-Muller), so the checkpoints are reproducible
// ------------------------------------------------------------------------------------------------
function rng(seed: number): { normal: () => number; int: (n: number) => number } {
  let a = seed >>> 0;
  const uniform = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    normal: () => {
      const u = Math.max(uniform(), 1e-12);
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
    },
    int: (n: number) => Math.floor(uniform() * n),
  };
}

// ------------------------------------------------------------------------------------------------
// parameter names and shapes of each family, in the transformers layout
// ------------------------------------------------------------------------------------------------
function parameterShapes(cfg: HfConfig): [string, number[]][] {
  const n = (k: string) => cfg[k] as number;
  const out: [string, number[]][] = [];
  switch (cfg["model_type"]) {
    case "gptj": {
      const d = n("n_embd");
      const inner = (cfg["n_inner"] as number | null) ?? 4 * d;
      const V = n("vocab_size");
      out.push(["transformer.wte.weight", [V, d]]);
      for (let l = 0; l < n("n_layer"); l++) {
        const p = `transformer.h.${l}.`;
        out.push([p + "ln_1.weight", [d]], [p + "ln_1.bias", [d]]);
        for (const m of ["q_proj", "k_proj", "v_proj", "out_proj"])
          out.push([p + `attn.${m}.weight`, [d, d]]);
        out.push([p + "mlp.fc_in.weight", [inner, d]], [p + "mlp.fc_in.bias", [inner]]);
        out.push([p + "mlp.fc_out.weight", [d, inner]], [p + "mlp.fc_out.bias", [d]]);
      }
      out.push(["transformer.ln_f.weight", [d]], ["transformer.ln_f.bias", [d]]);
      out.push(["lm_head.weight", [V, d]], ["lm_head.bias", [V]]);
      return out;
    }
    case "gpt_neox": {
      const d = n("hidden_size");
      const I = n("intermediate_size");
      const V = n("vocab_size");
      out.push(["gpt_neox.embed_in.weight", [V, d]]);
      for (let l = 0; l < n("num_hidden_layers"); l++) {
        const p = `gpt_neox.layers.${l}.`;
        out.push([p + "input_layernorm.weight", [d]], [p + "input_layernorm.bias", [d]]);
        out.push([p + "post_attention_layernorm.weight", [d]], [p + "post_attention_layernorm.bias", [d]]);
        out.push(
          [p + "attention.query_key_value.weight", [3 * d, d]],
          [p + "attention.query_key_value.bias", [3 * d]],
        );
        out.push([p + "attention.dense.weight", [d, d]], [p + "attention.dense.bias", [d]]);
        out.push([p + "mlp.dense_h_to_4h.weight", [I, d]], [p + "mlp.dense_h_to_4h.bias", [I]]);
        out.push([p + "mlp.dense_4h_to_h.weight", [d, I]], [p + "mlp.dense_4h_to_h.bias", [d]]);
      }
      out.push(["gpt_neox.final_layer_norm.weight", [d]], ["gpt_neox.final_layer_norm.bias", [d]]);
      out.push(["embed_out.weight", [V, d]]);
      return out;
    }
    default: {
      const d = n("hidden_size");
      const H = n("num_attention_heads");
      const KV = n("num_key_value_heads");
      const hd = d / H;
      const I = n("intermediate_size");
      const V = n("vocab_size");
      const qkvBias = cfg["model_type"] === "qwen2" || cfg["attention_bias"] === true;
      out.push(["model.embed_tokens.weight", [V, d]]);
      for (let l = 0; l < n("num_hidden_layers"); l++) {
        const p = `model.layers.${l}.`;
        out.push([p + "input_layernorm.weight", [d]]);
        out.push([p + "self_attn.q_proj.weight", [H * hd, d]]);
        out.push([p + "self_attn.k_proj.weight", [KV * hd, d]]);
        out.push([p + "self_attn.v_proj.weight", [KV * hd, d]]);
        out.push([p + "self_attn.o_proj.weight", [d, H * hd]]);
        if (qkvBias) {
          out.push([p + "self_attn.q_proj.bias", [H * hd]]);
          out.push([p + "self_attn.k_proj.bias", [KV * hd]]);
          out.push([p + "self_attn.v_proj.bias", [KV * hd]]);
        }
        if (cfg["attention_bias"] === true) out.push([p + "self_attn.o_proj.bias", [d]]);
        out.push([p + "post_attention_layernorm.weight", [d]]);
        out.push(
          [p + "mlp.gate_proj.weight", [I, d]],
          [p + "mlp.up_proj.weight", [I, d]],
          [p + "mlp.down_proj.weight", [d, I]],
        );
      }
      out.push(["model.norm.weight", [d]]);
      if (cfg["tie_word_embeddings"] !== true) out.push(["lm_head.weight", [V, d]]);
      return out;
    }
  }
}

/**
 * Writes config.json and model.safetensors (float32, as save_pretrained writes them) into a fresh temp
 * dir. Matrices ~ N(0, 0.2^2); 1-D parameters re-drawn: biases 0.1 N(0,1), norm gains 1 + 0.1 N(0,1).
 * Returns the exact float32 values (as float64) for the reference.
 */
function writeCheckpoint(cfg: HfConfig, seed: number): { dir: string; weights: RefWeights } {
  const r = rng(seed);
  const dir = mkdtempSync(join(tmpdir(), `editeval-${String(cfg["model_type"])}-`));
  const weights: RefWeights = new Map();
  const tensors = new Map<string, torch.Tensor>();
  for (const [name, shape] of parameterShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      const v = shape.length === 2 ? 0.2 * z : name.endsWith(".bias") ? 0.1 * z : 1 + 0.1 * z;
      data[i] = Math.fround(v);
    }
    weights.set(name, { shape, data });
    tensors.set(name, torch.tensor(Float32Array.from(data), { shape }));
  }
  saveSafetensors(join(dir, "model.safetensors"), tensors);
  for (const t of tensors.values()) t.free();
  writeFileSync(join(dir, "config.json"), JSON.stringify(cfg, null, 2));
  return { dir, weights };
}

// ------------------------------------------------------------------------------------------------
// the cases
// ------------------------------------------------------------------------------------------------
const V = 64;
const common = {
  vocab_size: V,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: "float32",
  initializer_range: 0.2,
};
const llamaBase = {
  ...common,
  model_type: "llama",
  architectures: ["LlamaForCausalLM"],
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  hidden_act: "silu",
  max_position_embeddings: 128,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  attention_bias: false,
  tie_word_embeddings: false,
};

interface Case {
  name: string;
  config: HfConfig;
  /** dynamic NTK with sequences longer than max_position_embeddings: the rotary base depends on the key length */
  lengthDependentRope?: boolean;
}

const CASES: Case[] = [
  {
    name: "gptj (rotary_dim 6 < head_dim 16, gelu_new, lm_head bias)",
    config: {
      ...common,
      model_type: "gptj",
      architectures: ["GPTJForCausalLM"],
      n_embd: 32,
      n_head: 2,
      n_layer: 2,
      n_inner: null,
      rotary_dim: 6,
      n_positions: 64,
      activation_function: "gelu_new",
      layer_norm_epsilon: 1e-5,
      tie_word_embeddings: false,
    },
  },
  {
    name: "gpt_neox (rotary_pct 0.25, parallel residual, gelu)",
    config: {
      ...common,
      model_type: "gpt_neox",
      architectures: ["GPTNeoXForCausalLM"],
      hidden_size: 32,
      num_attention_heads: 2,
      num_hidden_layers: 2,
      intermediate_size: 80,
      hidden_act: "gelu",
      rotary_pct: 0.25,
      rotary_emb_base: 10000,
      max_position_embeddings: 64,
      layer_norm_eps: 1e-5,
      use_parallel_residual: true,
      tie_word_embeddings: false,
    },
  },
  {
    name: "gpt_neox (rotary_pct 0.5, sequential residual, base 500)",
    config: {
      ...common,
      model_type: "gpt_neox",
      architectures: ["GPTNeoXForCausalLM"],
      hidden_size: 32,
      num_attention_heads: 2,
      num_hidden_layers: 2,
      intermediate_size: 80,
      hidden_act: "gelu",
      rotary_pct: 0.5,
      rotary_emb_base: 500,
      max_position_embeddings: 64,
      layer_norm_eps: 1e-5,
      use_parallel_residual: false,
      tie_word_embeddings: false,
    },
  },
  {
    name: "mistral (sliding_window 4, 4 heads / 2 kv heads)",
    config: {
      ...common,
      model_type: "mistral",
      architectures: ["MistralForCausalLM"],
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      hidden_act: "silu",
      max_position_embeddings: 128,
      rms_norm_eps: 1e-6,
      rope_theta: 10000.0,
      sliding_window: 4,
      tie_word_embeddings: false,
    },
  },
  {
    name: "qwen2 (q/k/v biases, tied embeddings, 4 heads / 1 kv head)",
    config: {
      ...common,
      model_type: "qwen2",
      architectures: ["Qwen2ForCausalLM"],
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      hidden_act: "silu",
      max_position_embeddings: 128,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000.0,
      use_sliding_window: false,
      sliding_window: 4096,
      max_window_layers: 2,
      tie_word_embeddings: true,
    },
  },
  {
    name: "llama (GQA, rope_scaling linear 2)",
    config: { ...llamaBase, rope_scaling: { type: "linear", factor: 2.0 } },
  },
  {
    name: "llama (rope_scaling dynamic 2, sequences longer than max_position_embeddings 8)",
    config: { ...llamaBase, max_position_embeddings: 8, rope_scaling: { type: "dynamic", factor: 2.0 } },
    lengthDependentRope: true,
  },
  {
    name: "llama (rope_type llama3, factor 8, original_max_position_embeddings 16)",
    config: {
      ...llamaBase,
      max_position_embeddings: 256,
      rope_scaling: {
        rope_type: "llama3",
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 16,
      },
    },
  },
  {
    name: "llama (rope_type llama3, original_max_position_embeddings 32: kept, smoothed and scaled frequencies)",
    config: {
      ...llamaBase,
      max_position_embeddings: 256,
      rope_scaling: {
        rope_type: "llama3",
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 32,
      },
    },
  },
];

// ------------------------------------------------------------------------------------------------
// helpers around the model
// ------------------------------------------------------------------------------------------------
const ids2 = (rows: number[][]) => torch.tensor(rows, { dtype: "int64" });

/** logits [B][T] -> Float64 rows, from a forward output */
function rowsOf(logits: torch.Tensor): number[][][] {
  const [B, T, Vv] = logits.shape as [number, number, number];
  const flat = logits.to("float64").toNumbers();
  return Array.from({ length: B }, (_, b) =>
    Array.from({ length: T }, (_, t) => flat.slice((b * T + t) * Vv, (b * T + t + 1) * Vv)),
  );
}

function diffRows(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  assert.equal(a.length, b.length, "row count");
  let m = 0;
  for (let i = 0; i < a.length; i++)
    m = Math.max(m, maxAbsDiff(a[i] as ArrayLike<number>, b[i] as ArrayLike<number>));
  return m;
}

function forwardRows(model: CausalLM, inputs: Parameters<CausalLM["forward"]>[0]): number[][][] {
  return torch.scope(() => rowsOf(torch.noGrad(() => model.forward(inputs)).logits));
}

function withModel<T>(dir: string, dtype: torch.DType, fn: (m: CausalLM) => T): T {
  const model = loadModel(dir, { dtype });
  try {
    return fn(model);
  } finally {
    model.free();
  }
}

function leftPad(rows: number[][], pad: number): { ids: number[][]; mask: number[][]; pos: number[][] } {
  const T = Math.max(...rows.map((r) => r.length));
  const ids: number[][] = [];
  const mask: number[][] = [];
  const pos: number[][] = [];
  for (const r of rows) {
    const p = T - r.length;
    ids.push([...new Array<number>(p).fill(pad), ...r]);
    const m = [...new Array<number>(p).fill(0), ...new Array<number>(r.length).fill(1)];
    mask.push(m);
    let c = 0;
    pos.push(m.map((x) => ((c += x), x === 0 ? 1 : c - 1)));
  }
  return { ids, mask, pos };
}

// ------------------------------------------------------------------------------------------------
// the tests
// ------------------------------------------------------------------------------------------------
CASES.forEach((c, k) => {
  const cfg = c.config;
  const r = rng(1000 + k);
  const seq = Array.from({ length: 12 }, () => r.int(V));
  const short = Array.from({ length: 7 }, () => r.int(V));
  const maxPos = (cfg["max_position_embeddings"] ?? cfg["n_positions"]) as number;

  test(`${c.name}: forward, padded batch, KV cache and greedy generation match the reference`, (t) => {
    const { dir, weights } = writeCheckpoint(cfg, 2000 + k);
    try {
      const ref = referenceLogits(cfg, weights, { inputIds: [seq] })[0] as Float64Array[];

      // 1. one sequence: float64 (see TOL_F64_ORACLE), float32 to 1e-4
      withModel(dir, "float64", (m) => {
        const got = forwardRows(m, { inputIds: ids2([seq]) })[0] as number[][];
        const d = diffRows(got, ref);
        t.diagnostic(`float64 logits vs oracle: max |diff| ${d.toExponential(2)}`);
        assert.ok(d < TOL_F64_ORACLE, `float64 logits max |diff| ${d}`);
      });
      withModel(dir, "float32", (m) => {
        const got = forwardRows(m, { inputIds: ids2([seq]) })[0] as number[][];
        const d = diffRows(got, ref);
        t.diagnostic(`float32 logits vs oracle: max |diff| ${d.toExponential(2)}`);
        assert.ok(d < TOL32, `float32 logits max |diff| ${d}`);
      });

      withModel(dir, "float64", (m) => {
        // 2. left-padded batch of two lengths, with the mask and position ids cumsum(mask) - 1 (pads at 1)
        const pb = leftPad([seq, short], 0);
        const refPadded = referenceLogits(cfg, weights, {
          inputIds: pb.ids,
          attentionMask: pb.mask,
          positionIds: pb.pos,
        });
        const explicitPos = forwardRows(m, {
          inputIds: ids2(pb.ids),
          attentionMask: ids2(pb.mask),
          positionIds: ids2(pb.pos),
        });
        const defaultPos = forwardRows(m, { inputIds: ids2(pb.ids), attentionMask: ids2(pb.mask) });
        [seq, short].forEach((row, b) => {
          const first = pb.ids[b]!.length - row.length;
          const real = (x: ArrayLike<number>[]) => x.slice(first);
          const refRow = real(refPadded[b]!);
          const d1 = diffRows(real(explicitPos[b]!), refRow);
          t.diagnostic(`padded row ${b} vs oracle: max |diff| ${d1.toExponential(2)}`);
          assert.ok(
            d1 < TOL_F64_ORACLE,
            `padded row ${b}: logits at real positions vs oracle, max |diff| ${d1}`,
          );
          const d2 = diffRows(real(defaultPos[b]!), real(explicitPos[b]!));
          assert.ok(
            d2 < TOL_F64_SELF,
            `padded row ${b}: default position ids vs explicit ones, max |diff| ${d2}`,
          );
          const unpadded = forwardRows(m, { inputIds: ids2([row]) })[0]!;
          const du = diffRows(unpadded, referenceLogits(cfg, weights, { inputIds: [row] })[0]!);
          assert.ok(du < TOL_F64_ORACLE, `row ${b} alone vs oracle: max |diff| ${du}`);
          // the padded row equals its unpadded run, except where the rotary base depends on the
          // (padded) key length, as transformers' dynamic NTK does
          if (!c.lengthDependentRope || pb.ids[b]!.length <= maxPos || row.length === pb.ids[b]!.length) {
            const dp = diffRows(real(explicitPos[b]!), unpadded);
            t.diagnostic(`padded row ${b} vs its unpadded run: max |diff| ${dp.toExponential(2)}`);
            assert.ok(dp < TOL_F64_SELF, `padded row ${b} vs the unpadded run: max |diff| ${dp}`);
          }
        });

        // 3. KV cache: the sequence in chunks through one cache, against the oracle's cached run and the full pass
        const chunks = [5, 1, 4, 2];
        const refChunked = referenceLogits(cfg, weights, { inputIds: [seq] }, { chunks })[0]!;
        const cache = m.newCache();
        const gotChunked: number[][] = [];
        try {
          let s = 0;
          for (const len of chunks) {
            const part = seq.slice(s, s + len);
            gotChunked.push(...(forwardRows(m, { inputIds: ids2([part]), cache })[0] as number[][]));
            s += len;
          }
        } finally {
          cache.free();
        }
        const dc = diffRows(gotChunked, refChunked);
        t.diagnostic(`cached chunks vs oracle: max |diff| ${dc.toExponential(2)}`);
        assert.ok(dc < TOL_F64_ORACLE, `cached chunked logits vs the oracle's cached run: max |diff| ${dc}`);
        if (!c.lengthDependentRope) {
          const full = forwardRows(m, { inputIds: ids2([seq]) })[0] as number[][];
          const dl = diffRows(gotChunked, full);
          t.diagnostic(`cached chunks vs one pass: max |diff| ${dl.toExponential(2)}`);
          assert.ok(dl < TOL_F64_SELF, `cached chunks vs one pass: max |diff| ${dl}`);
        }

        // 4. greedy generation, with and without the cache, against the oracle's greedy
        const prompt = seq.slice(0, 6);
        const gCached = generate(m, [prompt], { maxNewTokens: 8, eosTokenId: null, useCache: true })[0]!
          .tokens;
        const gFull = generate(m, [prompt], { maxNewTokens: 8, eosTokenId: null, useCache: false })[0]!
          .tokens;
        const rFull = referenceGreedy(cfg, weights, prompt, 8);
        const rCached = c.lengthDependentRope
          ? referenceGreedy(cfg, weights, prompt, 8, { cached: true })
          : rFull;
        assert.deepEqual(gFull, rFull, "greedy without cache vs oracle");
        assert.deepEqual(gCached, rCached, "greedy with cache vs oracle (cached run)");
        if (!c.lengthDependentRope) assert.deepEqual(gCached, gFull, "greedy with and without cache");
        // a left-padded batch of two prompts, generated together, gives each prompt's own continuation
        if (!c.lengthDependentRope) {
          const prompts = [seq.slice(0, 9), short.slice(0, 4)];
          const gb = generate(m, prompts, {
            maxNewTokens: 8,
            eosTokenId: null,
            padTokenId: 0,
            useCache: true,
          });
          prompts.forEach((p, b) =>
            assert.deepEqual(
              gb[b]!.tokens,
              referenceGreedy(cfg, weights, p, 8),
              `batched generation row ${b}`,
            ),
          );
        }
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The float64 forward against the float64-exact oracle to 1e-10: a float64 model builds its rotary tables
// in float64 (src/models/layers.ts), so nothing is rounded to float32 on the way.
test("float64 forward of every case to 1e-10 of the float64-exact oracle", (t) => {
  let worst = 0;
  CASES.forEach((c, k) => {
    const r = rng(1000 + k);
    const seq = Array.from({ length: 12 }, () => r.int(V));
    const { dir, weights } = writeCheckpoint(c.config, 2000 + k);
    try {
      const ref = referenceLogits(c.config, weights, { inputIds: [seq] }, { rotaryTables: "float64" })[0]!;
      const d = withModel(dir, "float64", (m) =>
        diffRows(forwardRows(m, { inputIds: ids2([seq]) })[0]!, ref),
      );
      t.diagnostic(`${c.name}: max |diff| ${d.toExponential(2)}`);
      worst = Math.max(worst, d);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  assert.ok(worst < TOL64, `worst max |diff| ${worst}`);
});

// The oracle's own sanity: the sliding window of Mistral sees W keys (v4.37.2's mask), so logits at
// positions >= W differ from a full-causal model, and positions < W do not.
test("reference: mistral's window changes exactly the positions that lose a key", () => {
  const c = CASES.find((x) => x.config["model_type"] === "mistral") as Case;
  const { dir, weights } = writeCheckpoint(c.config, 77);
  try {
    const r = rng(5);
    const seq = Array.from({ length: 8 }, () => r.int(V));
    const win = referenceLogits(c.config, weights, { inputIds: [seq] })[0]!;
    const full = referenceLogits({ ...c.config, sliding_window: null }, weights, { inputIds: [seq] })[0]!;
    for (let i = 0; i < seq.length; i++) {
      const d = maxAbsDiff(win[i]!, full[i]!);
      if (i < 4) assert.ok(d === 0, `position ${i} sees all its ${i + 1} keys`);
      else assert.ok(d > 1e-6, `position ${i} loses ${i - 3} key(s)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The oracle itself against upstream numbers: llama-tiny's reference.json holds transformers v4.37.2
// float32 logits (GQA, rotate_half, RMSNorm, a left-padded batch). The float64 oracle with transformers'
// float32 rotary tables must land within float32 noise of them.
test("reference: llama path reproduces the upstream llama-tiny fixture (transformers 4.37.2, float32)", (t) => {
  const dir = join(FIXTURES, "llama-tiny");
  if (!existsSync(join(dir, "reference.json"))) {
    t.skip("no llama-tiny fixture");
    return;
  }
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as HfConfig;
  const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8")) as {
    sequences: { name: string; input_ids: number[]; logits: number[][] }[];
    padded_batch: {
      input_ids: number[][];
      attention_mask: number[][];
      position_ids: number[][];
      rows: { first_real_position: number; logits: number[][] }[];
    };
  };
  const weights: RefWeights = new Map();
  const tensors = loadSafetensors(join(dir, "model.safetensors"));
  for (const [name, tensor] of tensors) {
    weights.set(name, { shape: tensor.shape, data: Float64Array.from(tensor.toArray() as Float32Array) });
    tensor.free();
  }
  for (const s of ref.sequences) {
    const got = referenceLogits(cfg, weights, { inputIds: [s.input_ids] })[0]!;
    const d = diffRows(got, s.logits);
    t.diagnostic(`${s.name}: max |diff| ${d.toExponential(2)}`);
    assert.ok(d < TOL32, `${s.name}: oracle vs transformers, max |diff| ${d}`);
  }
  const pb = ref.padded_batch;
  const got = referenceLogits(cfg, weights, {
    inputIds: pb.input_ids,
    attentionMask: pb.attention_mask,
    positionIds: pb.position_ids,
  });
  pb.rows.forEach((row, b) => {
    const d = diffRows(got[b]!.slice(row.first_real_position), row.logits);
    t.diagnostic(`padded row ${b}: max |diff| ${d.toExponential(2)}`);
    assert.ok(d < TOL32, `padded row ${b}: oracle vs transformers, max |diff| ${d}`);
  });
});

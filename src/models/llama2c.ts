/**
 * llama2.c checkpoints (Karpathy's legacy "version 0" export) converted to a Hugging Face Llama
 * checkpoint directory: config.json, model.safetensors, generation_config.json (and the tokenizer when
 * a tok*.bin is given).
 *
 * Layout of the legacy file: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 * seq_len; a negative vocab_size means the classifier is not shared with the embedding), then float32
 * arrays in this order: token_embedding [V, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv, dim],
 * wv [L, kv, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim], w2 [L, dim, hidden],
 * w3 [L, hidden, dim], rms_final [dim], freq_cis_real and freq_cis_imag [seq_len, head/2] (unused),
 * then wcls [V, dim] when not shared. Matrices are stored [out, in], as nn.Linear keeps them.
 *
 * llama2.c rotates interleaved pairs (x0, x1), (x2, x3), ...; transformers' Llama rotates halves. As the
 * official conversion does, the rows of wq and wk are permuted per head so that the halves rotation
 * computes the same function: w.view(heads, head/2, 2, dim).transpose(1, 2).reshape(out, dim).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { saveSafetensors } from "../torch/io.js";

export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
}

export function readLlama2cHeader(buf: Buffer, path: string): Llama2cHeader {
  if (buf.length < 28) throw new Error(`${path}: too short for a llama2.c header (28 bytes)`);
  const v = Array.from({ length: 7 }, (_, i) => buf.readInt32LE(i * 4));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = v as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (dim === 0x616b3432 || buf.readUInt32LE(0) === 0x616b3432)
    throw new Error(
      `${path}: this is a llama2.c "version 1" export (magic 'ak42'); use the legacy (version 0) file`,
    );
  if (!(
    dim > 0 &&
    hiddenDim > 0 &&
    nLayers > 0 &&
    nHeads > 0 &&
    nKvHeads > 0 &&
    seqLen > 0 &&
    dim % nHeads === 0
  ))
    throw new Error(`${path}: implausible llama2.c header ${JSON.stringify(v)}`);
  return {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(vocab),
    seqLen,
    sharedClassifier: vocab > 0,
  };
}

/** Permutes q/k rows from llama2.c's interleaved rotary layout to transformers' halves layout. */
export function permuteRotary(w: Tensor, heads: number): Tensor {
  const [out, dim] = w.shape as [number, number];
  return w
    .view(heads, out / heads / 2, 2, dim)
    .transpose(1, 2)
    .reshape(out, dim);
}

/** Reads a legacy llama2.c checkpoint into Hugging Face Llama tensors and config. */
export function readLlama2c(path: string): { config: Record<string, unknown>; tensors: [string, Tensor][] } {
  const buf = readFileSync(path);
  const h = readLlama2cHeader(buf, path);
  const kv = (h.dim / h.nHeads) * h.nKvHeads;
  const headSize = h.dim / h.nHeads;
  const L = h.nLayers;
  const sizes: [string, number[]][] = [
    ["tok", [h.vocabSize, h.dim]],
    ["rms_att", [L, h.dim]],
    ["wq", [L, h.dim, h.dim]],
    ["wk", [L, kv, h.dim]],
    ["wv", [L, kv, h.dim]],
    ["wo", [L, h.dim, h.dim]],
    ["rms_ffn", [L, h.dim]],
    ["w1", [L, h.hiddenDim, h.dim]],
    ["w2", [L, h.dim, h.hiddenDim]],
    ["w3", [L, h.hiddenDim, h.dim]],
    ["rms_final", [h.dim]],
    ["freq_real", [h.seqLen, headSize / 2]],
    ["freq_imag", [h.seqLen, headSize / 2]],
  ];
  if (!h.sharedClassifier) sizes.push(["wcls", [h.vocabSize, h.dim]]);
  const need = 28 + 4 * sizes.reduce((s, [, sh]) => s + sh.reduce((a, b) => a * b, 1), 0);
  if (buf.length !== need)
    throw new Error(
      `${path}: ${buf.length} bytes, but the header (${JSON.stringify(h)}) implies ${need} bytes`,
    );
  const raw = new Map<string, Tensor>();
  let off = 28;
  for (const [name, shape] of sizes) {
    const n = shape.reduce((a, b) => a * b, 1) * 4;
    raw.set(name, torch.fromBytes(new Uint8Array(buf.buffer, buf.byteOffset + off, n), "float32", shape));
    off += n;
  }
  const g = (n: string) => raw.get(n) as Tensor;
  const tensors: [string, Tensor][] = [["model.embed_tokens.weight", g("tok")]];
  torch.scope(() => {
    for (let l = 0; l < L; l++) {
      const p = `model.layers.${l}`;
      const keep = (t: Tensor) => t.contiguous().keep();
      tensors.push([`${p}.input_layernorm.weight`, keep(g("rms_att").select(0, l))]);
      tensors.push([`${p}.self_attn.q_proj.weight`, keep(permuteRotary(g("wq").select(0, l), h.nHeads))]);
      tensors.push([`${p}.self_attn.k_proj.weight`, keep(permuteRotary(g("wk").select(0, l), h.nKvHeads))]);
      tensors.push([`${p}.self_attn.v_proj.weight`, keep(g("wv").select(0, l))]);
      tensors.push([`${p}.self_attn.o_proj.weight`, keep(g("wo").select(0, l))]);
      tensors.push([`${p}.post_attention_layernorm.weight`, keep(g("rms_ffn").select(0, l))]);
      tensors.push([`${p}.mlp.gate_proj.weight`, keep(g("w1").select(0, l))]);
      tensors.push([`${p}.mlp.down_proj.weight`, keep(g("w2").select(0, l))]);
      tensors.push([`${p}.mlp.up_proj.weight`, keep(g("w3").select(0, l))]);
    }
  });
  tensors.push(["model.norm.weight", g("rms_final")]);
  if (!h.sharedClassifier) tensors.push(["lm_head.weight", g("wcls")]);
  for (const k of ["rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "freq_real", "freq_imag"])
    g(k).free();
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: h.dim,
    intermediate_size: h.hiddenDim,
    num_hidden_layers: h.nLayers,
    num_attention_heads: h.nHeads,
    num_key_value_heads: h.nKvHeads,
    vocab_size: h.vocabSize,
    max_position_embeddings: h.seqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    hidden_act: "silu",
    tie_word_embeddings: h.sharedClassifier,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: "float32",
  };
  return { config, tensors };
}

/**
 * Converts a llama2.c checkpoint to a Hugging Face checkpoint directory. `tokenizerJson`, when given,
 * is written as tokenizer.json (see src/models/tokenizer for the tok*.bin converter).
 */
export function convertLlama2c(
  binPath: string,
  outDir: string,
  tokenizer?: { tokenizerJson: object; tokenizerConfig: object },
): void {
  const { config, tensors } = readLlama2c(binPath);
  mkdirSync(outDir, { recursive: true });
  try {
    const unique = tensors.filter(([n]) => !(config.tie_word_embeddings && n === "lm_head.weight"));
    saveSafetensors(join(outDir, "model.safetensors"), unique, { format: "pt" });
  } finally {
    for (const t of new Set(tensors.map(([, t]) => t))) t.free();
  }
  writeFileSync(join(outDir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  writeFileSync(
    join(outDir, "generation_config.json"),
    JSON.stringify({ bos_token_id: 1, eos_token_id: 2, _from_model_config: true }, null, 2) + "\n",
  );
  if (tokenizer) {
    writeFileSync(join(outDir, "tokenizer.json"), JSON.stringify(tokenizer.tokenizerJson));
    writeFileSync(
      join(outDir, "tokenizer_config.json"),
      JSON.stringify(tokenizer.tokenizerConfig, null, 2) + "\n",
    );
  }
}

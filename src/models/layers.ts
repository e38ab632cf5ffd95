/**
 * Pieces shared by the architectures: activations, rotary position embeddings, the attention core
 * with its masks, and the key/value cache. Each follows the transformers source (v4.37, the version
 * of the reference fixtures) where it changes a number.
 */
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

const { F } = torch;

// ------------------------------------------------------------------------------------------------
// Activations (transformers' ACT2FN names)
// ------------------------------------------------------------------------------------------------
export type Activation = (x: Tensor) => Tensor;

export function activation(name: string, where: string): Activation {
  switch (name) {
    case "gelu":
      return (x) => F.gelu(x);
    case "gelu_new":
    case "gelu_pytorch_tanh":
    case "gelu_fast":
      // gelu_fast is the same tanh approximation written with different constants; differences < 1e-6
      return (x) => F.gelu(x, "tanh");
    case "relu":
      return (x) => F.relu(x);
    case "silu":
    case "swish":
      return (x) => F.silu(x);
    case "tanh":
      return (x) => x.tanh();
    case "sigmoid":
      return (x) => x.sigmoid();
    default:
      throw new Error(
        `${where}: unsupported activation '${name}' (supported: gelu, gelu_new, gelu_pytorch_tanh, relu, silu)`,
      );
  }
}

// ------------------------------------------------------------------------------------------------
// Rotary position embeddings
// ------------------------------------------------------------------------------------------------
export interface RopeScaling {
  type: "linear" | "dynamic" | "llama3" | "default";
  factor: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
}

/**
 * inv_freq = 1 / base^(arange(0, dim, 2) / dim), computed with torch in float32 as transformers does
 * (so frequencies match to the bit); the llama3 rope_scaling rule is then applied per frequency.
 */
export function rotaryInvFreq(
  dim: number,
  base: number,
  scaling?: RopeScaling | null,
  dtype: torch.DType = "float32",
): Tensor {
  // float32 as transformers does; float64 models get float64 tables (transformers would use float32 here too)
  const dt: torch.DType = dtype === "float64" ? "float64" : "float32";
  const inv = torch.scope(() => {
    const expo = torch.arange(0, dim, 2).to(dt).div(dim);
    return torch
      .full([dim / 2], base, { dtype: dt })
      .pow(expo)
      .reciprocal();
  });
  if (scaling?.type !== "llama3") return inv;
  const f = inv.toNumbers();
  inv.free();
  const factor = scaling.factor;
  const low = scaling.lowFreqFactor ?? 1;
  const high = scaling.highFreqFactor ?? 4;
  const oldCtx = scaling.originalMaxPositionEmbeddings ?? 8192;
  const lowWavelen = oldCtx / low;
  const highWavelen = oldCtx / high;
  const out = f.map((fi) => {
    const wavelen = (2 * Math.PI) / fi;
    let v = wavelen > lowWavelen ? fi / factor : fi;
    const isMedium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
    if (isMedium) {
      const smooth = (oldCtx / wavelen - low) / (high - low);
      v = ((1 - smooth) * v) / factor + smooth * v;
    }
    return v;
  });
  return torch.tensor(out, { dtype: dt });
}

/**
 * Position scaling of rope_scaling "linear" (positions / factor) and "dynamic" NTK (a larger base when
 * the sequence exceeds max_position_embeddings), as transformers' Llama/NeoX rotary classes apply them.
 */
export function rotaryBaseAndScale(
  dim: number,
  base: number,
  scaling: RopeScaling | null,
  seqLen: number,
  maxPositions: number,
): { base: number; positionScale: number } {
  if (!scaling) return { base, positionScale: 1 };
  if (scaling.type === "linear") return { base, positionScale: scaling.factor };
  if (scaling.type === "dynamic" && seqLen > maxPositions) {
    const f = scaling.factor;
    return { base: base * ((f * seqLen) / maxPositions - (f - 1)) ** (dim / (dim - 2)), positionScale: 1 };
  }
  return { base, positionScale: 1 };
}

/**
 * cos and sin tables [B, T, dim] for position ids [B, T] (in invFreq's dtype), in the "halves" layout
 * (emb = cat(freqs, freqs)) used by Llama, Mistral, Qwen2 and GPT-NeoX.
 */
export function rotaryCosSinHalves(
  positionIds: Tensor,
  invFreq: Tensor,
  positionScale = 1,
): { cos: Tensor; sin: Tensor } {
  let t = positionIds.to(invFreq.dtype);
  if (positionScale !== 1) t = t.div(positionScale);
  const freqs = t.unsqueeze(-1).mul(invFreq); // [B, T, dim/2]
  const emb = torch.cat([freqs, freqs], -1);
  return { cos: emb.cos(), sin: emb.sin() };
}

/** rotate_half: [-x2, x1] for x = [x1, x2] split in halves along the last dim. */
export function rotateHalf(x: Tensor): Tensor {
  const d = x.size(-1);
  const [x1, x2] = x.split(d / 2, -1) as [Tensor, Tensor];
  return torch.cat([x2.neg(), x1], -1);
}

/** x * cos + rotate_half(x) * sin, with cos/sin [B, T, dim] broadcast over heads (x: [B, H, T, dim]). */
export function applyRotaryHalves(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const c = cos.unsqueeze(1);
  const s = sin.unsqueeze(1);
  return x.mul(c).add(rotateHalf(x).mul(s));
}

/**
 * GPT-J's interleaved rotary: pairs (x0, x1), (x2, x3), ... are rotated; sin/cos per pair are repeated
 * twice (repeat_interleave). Returns cos/sin [B, T, rotaryDim].
 */
export function rotaryCosSinInterleaved(positionIds: Tensor, invFreq: Tensor): { cos: Tensor; sin: Tensor } {
  const freqs = positionIds.to(invFreq.dtype).unsqueeze(-1).mul(invFreq); // [B, T, dim/2]
  return { cos: freqs.cos().repeatInterleave(2, -1), sin: freqs.sin().repeatInterleave(2, -1) };
}

/** rotate_every_two: (x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...). */
export function rotateEveryTwo(x: Tensor): Tensor {
  const even = x.index("...", "::2");
  const odd = x.index("...", "1::2");
  return torch.stack([odd.neg(), even], -1).flatten(-2);
}

/** GPT-J layout: x [B, T, H, dim] (heads not yet transposed), cos/sin [B, T, dim]. */
export function applyRotaryInterleaved(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const c = cos.unsqueeze(2);
  const s = sin.unsqueeze(2);
  return x.mul(c).add(rotateEveryTwo(x).mul(s));
}

// ------------------------------------------------------------------------------------------------
// Masks and the attention core
// ------------------------------------------------------------------------------------------------
/** The most negative finite value of a dtype (torch.finfo(dtype).min), used as the masked score. */
export function finfoMin(dtype: torch.DType): number {
  switch (dtype) {
    case "float64":
      return -1.7976931348623157e308;
    case "float16":
      return -65504;
    case "bfloat16":
      return -3.3895313892515355e38;
    default:
      return -3.4028234663852886e38;
  }
}

/**
 * Which keys each query may attend to: a bool tensor [B, 1, Tq, Tk], true = masked out.
 * Query i (absolute index past + i) sees keys k <= past + i that are not padding (attentionMask 0),
 * and, with a sliding window w, only keys with (past + i) - k < w (Mistral).
 */
export function buildAttentionMask(
  batch: number,
  queryLen: number,
  pastLen: number,
  attentionMask: Tensor | null,
  slidingWindow: number | null = null,
): Tensor | null {
  const keyLen = pastLen + queryLen;
  const needCausal = queryLen > 1;
  if (!needCausal && attentionMask === null && (slidingWindow === null || keyLen <= slidingWindow))
    return null;
  const q = torch.arange(pastLen, keyLen).unsqueeze(1); // [Tq, 1]
  const k = torch.arange(keyLen).unsqueeze(0); // [1, Tk]
  let masked = k.gt(q); // future keys
  if (slidingWindow !== null) masked = masked.logicalOr(q.sub(k).ge(slidingWindow));
  let m = masked.unsqueeze(0).unsqueeze(0).expand(batch, 1, queryLen, keyLen);
  if (attentionMask !== null) {
    if (attentionMask.size(-1) !== keyLen)
      throw new Error(
        `attention mask covers ${attentionMask.size(-1)} positions, expected ${keyLen} (past ${pastLen} + new ${queryLen})`,
      );
    const pad = attentionMask.eq(0).unsqueeze(1).unsqueeze(1); // [B, 1, 1, Tk]
    m = m.logicalOr(pad);
  }
  return m;
}

/** How raw scores q k^T are scaled: divided (GPT-2, GPT-J, Llama) or multiplied (GPT-NeoX) as the source does. */
export type ScoreScale = { divide: number } | { multiply: number };

/**
 * softmax(scale(q k^T) + mask) v, with q [B, H, Tq, d], k/v [B, H, Tk, d]; masked scores get
 * finfo.min (so a fully masked row, a padding query, is uniform instead of NaN). Scores are
 * softmaxed in float32 when the inputs are half precision, as transformers does.
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  scale: ScoreScale,
): Tensor {
  const kp = SHARED_PREFIX.get(k);
  const vp = SHARED_PREFIX.get(v);
  if (kp && vp) return prefixedAttention(q, k, v, kp, vp, mask, scale);
  const half = q.dtype === "float16" || q.dtype === "bfloat16";
  let scores = q.matmul(k.transpose(-1, -2));
  if ("divide" in scale) {
    if (scale.divide !== 1) scores = scores.div(scale.divide);
  } else if (scale.multiply !== 1) scores = scores.mul(scale.multiply);
  if (mask !== null) scores = scores.maskedFill(mask, finfoMin(scores.dtype));
  let probs = half ? scores.softmax(-1, "float32").to(q.dtype) : scores.softmax(-1);
  if (half && probs.dtype !== v.dtype) probs = probs.to(v.dtype);
  return probs.matmul(v);
}

/**
 * Keys/values that a KVCache returns when its first positions are a prefix shared by every row (a
 * few-shot prompt, stored once as [1, Hkv, P, d]): the tensor holds the rows' own positions, and this
 * records the shared part and how many query heads share each of its heads (grouped-query attention).
 * scaledDotProductAttention then attends over [prefix, own] without materialising the prefix per row.
 */
interface SharedPrefix {
  prefix: Tensor;
  rep: number;
}
const SHARED_PREFIX = new WeakMap<Tensor, SharedPrefix>();

/** [B, Hkv*n, Tq, X] -> [Hkv, B*n*Tq, X]: the rows of every batch row and head group as one matrix per kv head. */
function foldRows(x: Tensor, hkv: number, n: number): Tensor {
  const [b, , t, e] = x.shape as [number, number, number, number];
  return x
    .view(b, hkv, n, t, e)
    .permute(1, 0, 2, 3, 4)
    .reshape(hkv, b * n * t, e);
}

/** The inverse of foldRows. */
function unfoldRows(x: Tensor, b: number, hkv: number, n: number, t: number): Tensor {
  const e = x.size(-1);
  return x
    .view(hkv, b, n, t, e)
    .permute(1, 0, 2, 3, 4)
    .reshape(b, hkv * n, t, e);
}

/**
 * Attention over a shared prefix (one copy, [1, Hkv, P, d]) and each row's own keys: scores against the
 * prefix as one matrix product per kv head (all rows and queries folded together, so no per-row copy of
 * the prefix), scores against the own keys as usual, one softmax over both, and the two weighted sums added.
 */
function prefixedAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  kp: SharedPrefix,
  vp: SharedPrefix,
  mask: Tensor | null,
  scale: ScoreScale,
): Tensor {
  const half = q.dtype === "float16" || q.dtype === "bfloat16";
  const [b, h, t] = q.shape as [number, number, number, number];
  const hkv = kp.prefix.size(1);
  const n = h / hkv;
  const P = kp.prefix.size(2);
  const sp = unfoldRows(foldRows(q, hkv, n).matmul(kp.prefix.select(0, 0).transpose(-1, -2)), b, hkv, n, t);
  // in place on the fresh scores (generation runs without gradients; a fresh tensor costs page faults)
  const scores = torch.cat([sp, q.matmul(k.transpose(-1, -2))], -1);
  if ("divide" in scale) {
    if (scale.divide !== 1) scores.div_(scale.divide);
  } else if (scale.multiply !== 1) scores.mul_(scale.multiply);
  if (mask !== null) scores.maskedFill_(mask, finfoMin(scores.dtype));
  let probs = half ? scores.softmax(-1, "float32").to(q.dtype) : scores.softmax(-1);
  if (half && probs.dtype !== v.dtype) probs = probs.to(v.dtype);
  const own = probs.narrow(-1, P, probs.size(-1) - P).matmul(v);
  const fromPrefix = unfoldRows(
    foldRows(probs.narrow(-1, 0, P), hkv, n).matmul(vp.prefix.select(0, 0)),
    b,
    hkv,
    n,
    t,
  );
  return fromPrefix.add_(own);
}

/** Grouped-query attention: repeats each key/value head n times ([B, Hkv, T, d] -> [B, Hkv*n, T, d]). */
export function repeatKv(x: Tensor, n: number): Tensor {
  if (n === 1) return x;
  const [b, h, t, d] = x.shape as [number, number, number, number];
  const out = x
    .unsqueeze(2)
    .expand(b, h, n, t, d)
    .reshape(b, h * n, t, d);
  const sp = SHARED_PREFIX.get(x);
  if (sp) SHARED_PREFIX.set(out, { prefix: sp.prefix, rep: sp.rep * n });
  return out;
}

// ------------------------------------------------------------------------------------------------
// Key/value cache
// ------------------------------------------------------------------------------------------------
/**
 * Keys and values of past positions, per layer, [B, Hkv, T, d]. Storage grows by doubling, so a long
 * generation appends in place instead of re-concatenating the whole cache at every step.
 * The cache owns its tensors: free() it when done.
 */
export class KVCache {
  private keys: (Tensor | null)[];
  private values: (Tensor | null)[];
  private lengths: number[];
  /** a prefix shared by every row ([1, Hkv, P, d] per layer, views of another cache), or null */
  private sharedKeys: Tensor[] | null = null;
  private sharedValues: Tensor[] | null = null;
  private sharedLength = 0;

  constructor(readonly numLayers: number) {
    this.keys = new Array<Tensor | null>(numLayers).fill(null);
    this.values = new Array<Tensor | null>(numLayers).fill(null);
    this.lengths = new Array<number>(numLayers).fill(0);
  }

  /**
   * A cache whose first positions are `prefix`'s (a batch-1 cache, e.g. an encoded few-shot prompt),
   * shared by every row without copying: its keys and values are referenced once, and attention
   * (scaledDotProductAttention) reads them as one matrix for all rows. The rows' own positions are
   * appended after them as usual. `prefix` may be freed or reused afterwards (the views keep its memory).
   */
  static sharing(prefix: KVCache): KVCache {
    if (prefix.sharedKeys) throw new Error("KVCache.sharing: the prefix cache itself shares a prefix");
    const c = new KVCache(prefix.numLayers);
    const P = prefix.length;
    const ks: Tensor[] = [];
    const vs: Tensor[] = [];
    for (let l = 0; l < prefix.numLayers; l++) {
      const K = prefix.keys[l];
      const V = prefix.values[l];
      if (!K || !V || prefix.lengths[l] !== P)
        throw new Error(`KVCache.sharing: layer ${l} of the prefix is not filled`);
      if (K.size(0) !== 1) throw new Error(`KVCache.sharing: the prefix has ${K.size(0)} rows, expected 1`);
      ks.push(K.narrow(2, 0, P).keep());
      vs.push(V.narrow(2, 0, P).keep());
    }
    c.sharedKeys = ks;
    c.sharedValues = vs;
    c.sharedLength = P;
    return c;
  }

  /** Number of cached positions (of layer 0), the shared prefix included. */
  get length(): number {
    return this.sharedLength + (this.lengths[0] ?? 0);
  }

  /** Appends k, v [B, H, Tnew, d] for a layer and returns views of all keys and values so far. */
  update(layer: number, k: Tensor, v: Tensor): { keys: Tensor; values: Tensor } {
    const len = this.lengths[layer] as number;
    const add = k.size(2);
    const need = len + add;
    let K = this.keys[layer] ?? null;
    let V = this.values[layer] ?? null;
    if (K === null || V === null || K.size(2) < need) {
      const cap = Math.max(need, K === null ? need : 2 * K.size(2));
      const [b, h, , d] = k.shape as [number, number, number, number];
      const nk = torch.zeros([b, h, cap, d], { dtype: k.dtype, device: k.device }).keep();
      const nv = torch.zeros([b, h, cap, d], { dtype: v.dtype, device: v.device }).keep();
      if (K !== null && V !== null && len > 0) {
        torch.noGrad(() => {
          nk.narrow(2, 0, len).copy_((K as Tensor).narrow(2, 0, len));
          nv.narrow(2, 0, len).copy_((V as Tensor).narrow(2, 0, len));
        });
      }
      K?.free();
      V?.free();
      K = nk;
      V = nv;
      this.keys[layer] = K;
      this.values[layer] = V;
    }
    torch.noGrad(() => {
      (K as Tensor).narrow(2, len, add).copy_(k);
      (V as Tensor).narrow(2, len, add).copy_(v);
    });
    this.lengths[layer] = need;
    const keys = K.narrow(2, 0, need);
    const values = V.narrow(2, 0, need);
    if (this.sharedKeys && this.sharedValues) {
      SHARED_PREFIX.set(keys, { prefix: this.sharedKeys[layer] as Tensor, rep: 1 });
      SHARED_PREFIX.set(values, { prefix: this.sharedValues[layer] as Tensor, rep: 1 });
    }
    return { keys, values };
  }

  /**
   * Keeps only the given batch rows (finished sequences dropped), or repeats rows. A shared prefix
   * stays shared (it belongs to every row).
   */
  selectRows(rows: number[]): void {
    const idx = torch.tensor(rows, { dtype: "int64" });
    for (let l = 0; l < this.numLayers; l++) {
      const K = this.keys[l];
      const V = this.values[l];
      if (!K || !V) continue;
      this.keys[l] = K.indexSelect(0, idx).keep();
      this.values[l] = V.indexSelect(0, idx).keep();
      K.free();
      V.free();
    }
    idx.free();
  }

  /** An independent copy (for reusing a shared prefix). */
  clone(): KVCache {
    const c = new KVCache(this.numLayers);
    for (let l = 0; l < this.numLayers; l++) {
      const len = this.lengths[l] as number;
      const K = this.keys[l];
      const V = this.values[l];
      if (K && V) {
        c.keys[l] = K.clone().keep();
        c.values[l] = V.clone().keep();
      }
      c.lengths[l] = len;
    }
    if (this.sharedKeys && this.sharedValues) {
      c.sharedKeys = this.sharedKeys.map((t) => t.narrow(2, 0, this.sharedLength).keep());
      c.sharedValues = this.sharedValues.map((t) => t.narrow(2, 0, this.sharedLength).keep());
      c.sharedLength = this.sharedLength;
    }
    return c;
  }

  free(): void {
    for (const t of [...this.keys, ...this.values]) t?.free();
    for (const t of [...(this.sharedKeys ?? []), ...(this.sharedValues ?? [])]) t.free();
    this.keys.fill(null);
    this.values.fill(null);
    this.lengths.fill(0);
    this.sharedKeys = null;
    this.sharedValues = null;
    this.sharedLength = 0;
  }
  [Symbol.dispose](): void {
    this.free();
  }
}

/**
 * torch.nn.functional, with torch's names in camelCase: activations, normalisation, embedding,
 * losses. Every function is differentiable through libtorch's autograd.
 */
import { N, type Handle } from "./native.js";
import { Tensor } from "./tensor.js";
import { dtypeCode, type DType } from "./dtype.js";

const wrap = (h: Handle) => new Tensor(h);
const REDUCTIONS = { none: 0, mean: 1, sum: 2 } as const;
export type Reduction = keyof typeof REDUCTIONS;

function reductionCode(r: Reduction): number {
  const c = REDUCTIONS[r];
  if (c === undefined) throw new Error(`reduction: expected 'none', 'mean' or 'sum', got '${String(r)}'`);
  return c;
}

export function softmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return x.softmax(dim, dtype);
}
export function logSoftmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return x.logSoftmax(dim, dtype);
}
/** GELU: approximate "none" is the exact erf form (HF "gelu"); "tanh" is GPT-2's "gelu_new". */
export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  return wrap(N.gelu(x._handle, approximate) as Handle);
}
export function silu(x: Tensor): Tensor {
  return wrap(N.silu(x._handle) as Handle);
}
export function relu(x: Tensor): Tensor {
  return x.relu();
}
export function sigmoid(x: Tensor): Tensor {
  return x.sigmoid();
}
/** y = x W^T + b with W stored [out, in] (torch.nn.Linear's layout). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return wrap(N.linear(x._handle, weight._handle, bias?._handle ?? null) as Handle);
}
export function layerNorm(
  x: Tensor,
  normalizedShape: number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  return wrap(
    N.layerNorm(x._handle, normalizedShape, weight?._handle ?? null, bias?._handle ?? null, eps) as Handle,
  );
}
/**
 * RMSNorm as Llama / Mistral / Qwen2 compute it in transformers: half-precision inputs are upcast to
 * float32 for the variance, x * rsqrt(mean(x^2) + eps) is cast back to the input dtype, then multiplied
 * by the weight. (transformers also downcasts float64 to float32 here; we keep float64 in float64.)
 */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const inDtype = x.dtype;
  const upcast = inDtype === "bfloat16" || inDtype === "float16";
  const xf = upcast ? x.to("float32") : x;
  const variance = xf.square().mean(-1, true);
  const normed = xf.mul(variance.add(eps).rsqrt());
  const back = upcast ? normed.to(inDtype) : normed;
  return weight.mul(back);
}
export function embedding(indices: Tensor, weight: Tensor): Tensor {
  return wrap(N.embedding(weight._handle, indices._handle) as Handle);
}
/** Cross-entropy over logits [N, C] and int64 targets [N] (ignoreIndex -100 as in torch). */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  opts: { ignoreIndex?: number; reduction?: Reduction } = {},
): Tensor {
  return wrap(
    N.crossEntropy(
      logits._handle,
      target._handle,
      opts.ignoreIndex ?? -100,
      reductionCode(opts.reduction ?? "mean"),
    ) as Handle,
  );
}
export function nllLoss(
  logProbs: Tensor,
  target: Tensor,
  opts: { ignoreIndex?: number; reduction?: Reduction } = {},
): Tensor {
  return wrap(
    N.nllLoss(
      logProbs._handle,
      target._handle,
      opts.ignoreIndex ?? -100,
      reductionCode(opts.reduction ?? "mean"),
    ) as Handle,
  );
}
/**
 * KL divergence as torch.nn.functional.kl_div: `input` holds log-probabilities, `target` probabilities
 * (or log-probabilities with logTarget). "batchmean" divides the sum by input.size(0), as torch does.
 */
export function klDiv(
  input: Tensor,
  target: Tensor,
  opts: { reduction?: Reduction | "batchmean"; logTarget?: boolean } = {},
): Tensor {
  const r = opts.reduction ?? "mean";
  if (r === "batchmean") {
    const s = wrap(N.klDiv(input._handle, target._handle, REDUCTIONS.sum, opts.logTarget ?? false) as Handle);
    return s.div(input.ndim === 0 ? 1 : input.size(0));
  }
  return wrap(N.klDiv(input._handle, target._handle, reductionCode(r), opts.logTarget ?? false) as Handle);
}
/** dtype code helper for other modules of src/torch */
export const _dtypeCode = dtypeCode;

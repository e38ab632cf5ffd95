/**
 * Engine benchmarks, the EditEval side: the same work as bench/engine_torch.py, timed the same way.
 */
import * as torch from "../src/torch/index.js";

const { F } = torch;

export function medianMs(fn: () => void, iters: number, warmup = 3): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  const mid = Math.floor(ts.length / 2);
  return ts.length % 2 ? (ts[mid] as number) : ((ts[mid - 1] as number) + (ts[mid] as number)) / 2;
}

interface BlockParams {
  [k: string]: torch.Tensor;
}

function blockSetup(T = 128, d = 768, vocab = 768) {
  const g = new torch.Generator(0);
  const p = (...s: number[]) =>
    torch.scope(() => torch.randn(s, { generator: g }).mul(0.02).keep()).requiresGrad_();
  const ones = (n: number) => torch.ones(n).requiresGrad_();
  const zeros = (n: number) => torch.zeros(n).requiresGrad_();
  const P: BlockParams = {
    ln1_w: ones(d),
    ln1_b: zeros(d),
    attn_w: p(d, 3 * d),
    attn_b: zeros(3 * d),
    proj_w: p(d, d),
    proj_b: zeros(d),
    ln2_w: ones(d),
    ln2_b: zeros(d),
    fc_w: p(d, 4 * d),
    fc_b: zeros(4 * d),
    fc2_w: p(4 * d, d),
    fc2_b: zeros(d),
    lnf_w: ones(d),
    lnf_b: zeros(d),
    head: p(vocab, d),
  };
  const x = torch.randn([1, T, d], { generator: g });
  const y = torch.randint(0, vocab, [T], { generator: g });
  const mask = torch.ones([T, T], { dtype: "bool" }).triu(1);
  return { P, x, y, mask, heads: 12 };
}

function blockStep(
  P: BlockParams,
  x0: torch.Tensor,
  y: torch.Tensor,
  mask: torch.Tensor,
  heads: number,
): number {
  return torch.scope(() => {
    const [B, T, d] = x0.shape as [number, number, number];
    const hd = d / heads;
    const g = (k: string) => P[k] as torch.Tensor;
    let x = x0;
    let h = F.layerNorm(x, [d], g("ln1_w"), g("ln1_b"), 1e-5);
    const qkv = torch.addmm(g("attn_b"), h.view(T, d), g("attn_w")).view(B, T, 3 * d);
    const [q, k, v] = qkv.split(d, 2).map((t) => t.view(B, T, heads, hd).transpose(1, 2)) as [
      torch.Tensor,
      torch.Tensor,
      torch.Tensor,
    ];
    const att = q.matmul(k.transpose(-1, -2)).div(Math.sqrt(hd)).maskedFill(mask, -Infinity).softmax(-1);
    const o = att.matmul(v).transpose(1, 2).contiguous().view(T, d);
    x = x.add(torch.addmm(g("proj_b"), o, g("proj_w")).view(B, T, d));
    h = F.layerNorm(x, [d], g("ln2_w"), g("ln2_b"), 1e-5);
    const m = F.gelu(torch.addmm(g("fc_b"), h.view(T, d), g("fc_w")), "tanh");
    x = x.add(torch.addmm(g("fc2_b"), m, g("fc2_w")).view(B, T, d));
    h = F.layerNorm(x, [d], g("lnf_w"), g("lnf_b"), 1e-5);
    const logits = F.linear(h.view(T, d), g("head"));
    const loss = F.crossEntropy(logits, y);
    for (const t of Object.values(P)) t.grad = null;
    loss.backward();
    return loss.item();
  });
}

export function runEngineBench(quick: boolean): Record<string, number> {
  const it = quick ? 5 : 30;
  const res: Record<string, number> = {};
  for (const [m, k, n] of [
    [128, 768, 3072],
    [128, 3072, 768],
    [2048, 2048, 2048],
  ] as const) {
    const a = torch.randn([m, k]);
    const b = torch.randn([k, n]);
    res[`matmul ${m}x${k} @ ${k}x${n}`] = medianMs(() => a.matmul(b).free(), m === 2048 ? 3 : it * 3);
    a.free();
    b.free();
  }
  const { P, x, y, mask, heads } = blockSetup();
  res["gpt2 block fwd+bwd (T=128, d=768)"] = medianMs(() => void blockStep(P, x, y, mask, heads), it);
  const n = 3072;
  const c = torch.scope(() => {
    const a = torch.randn([n, n]);
    return a.matmul(a.T).div(n).add(torch.eye(n));
  });
  res[`cholesky ${n}`] = medianMs(() => torch.linalg.cholesky(c).free(), 3, 1);
  res[`eigh ${n} (float32 via float64)`] = medianMs(
    () => {
      const { eigenvalues, eigenvectors } = torch.linalg.eigh(c);
      eigenvalues.free();
      eigenvectors.free();
    },
    quick ? 1 : 3,
    0,
  );
  return res;
}

/** The loss of one block step, for the cross-check that both sides compute the same thing. */
export { blockSetup, blockStep };

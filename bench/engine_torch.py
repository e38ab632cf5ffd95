"""The Python PyTorch side of bench/engine.ts: the same work, timed the same way (median ms).

Run by bench/run.ts with Debian's interpreter (/usr/bin/python3 with python3-torch). Prints JSON.
"""
import json
import statistics
import sys
import time

import os
import torch
import torch.nn.functional as F

_omp = os.environ.get("OMP_NUM_THREADS", "")
torch.set_num_threads(int(_omp) if _omp.isdigit() and int(_omp) > 0 else 1)  # the addon's rule: OMP_NUM_THREADS, else 1


def median_ms(fn, iters, warmup=3):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ts)


def block_setup(T=128, d=768, heads=12, vocab=768, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = lambda *s: (torch.randn(*s, generator=g) * 0.02).requires_grad_(True)
    ones = lambda n: torch.ones(n).requires_grad_(True)
    zeros = lambda n: torch.zeros(n).requires_grad_(True)
    P = dict(ln1_w=ones(d), ln1_b=zeros(d), attn_w=p(d, 3 * d), attn_b=zeros(3 * d), proj_w=p(d, d), proj_b=zeros(d),
             ln2_w=ones(d), ln2_b=zeros(d), fc_w=p(d, 4 * d), fc_b=zeros(4 * d), fc2_w=p(4 * d, d), fc2_b=zeros(d),
             lnf_w=ones(d), lnf_b=zeros(d), head=p(vocab, d))
    x = torch.randn(1, T, d, generator=g)
    y = torch.randint(0, vocab, (T,), generator=g)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    return P, x, y, mask, heads


def block_step(P, x, y, mask, heads):
    B, T, d = x.shape
    hd = d // heads
    h = F.layer_norm(x, (d,), P["ln1_w"], P["ln1_b"], 1e-5)
    qkv = torch.addmm(P["attn_b"], h.view(T, d), P["attn_w"]).view(B, T, 3 * d)  # GPT-2 Conv1D layout [in, out]
    q, k, v = qkv.split(d, dim=2)
    q = q.view(B, T, heads, hd).transpose(1, 2)
    k = k.view(B, T, heads, hd).transpose(1, 2)
    v = v.view(B, T, heads, hd).transpose(1, 2)
    att = q.matmul(k.transpose(-1, -2)) / (hd ** 0.5)
    att = att.masked_fill(mask, float("-inf")).softmax(-1)
    o = att.matmul(v).transpose(1, 2).contiguous().view(T, d)
    x = x + torch.addmm(P["proj_b"], o, P["proj_w"]).view(B, T, d)
    h = F.layer_norm(x, (d,), P["ln2_w"], P["ln2_b"], 1e-5)
    m = F.gelu(torch.addmm(P["fc_b"], h.view(T, d), P["fc_w"]), approximate="tanh")
    x = x + torch.addmm(P["fc2_b"], m, P["fc2_w"]).view(B, T, d)
    h = F.layer_norm(x, (d,), P["lnf_w"], P["lnf_b"], 1e-5)
    logits = F.linear(h.view(T, d), P["head"])
    loss = F.cross_entropy(logits, y)
    for t in P.values():
        t.grad = None
    loss.backward()
    return loss.item()


def main():
    quick = "--quick" in sys.argv
    it = 5 if quick else 30
    res = {}
    for (m, k, n) in [(128, 768, 3072), (128, 3072, 768), (2048, 2048, 2048)]:
        a = torch.randn(m, k)
        b = torch.randn(k, n)
        res[f"matmul {m}x{k} @ {k}x{n}"] = median_ms(lambda: torch.matmul(a, b), 3 if m == 2048 else it * 3)
    P, x, y, mask, heads = block_setup()
    res["gpt2 block fwd+bwd (T=128, d=768)"] = median_ms(lambda: block_step(P, x, y, mask, heads), it)
    n = 3072
    a = torch.randn(n, n)
    c = a @ a.T / n + torch.eye(n)
    res[f"cholesky {n}"] = median_ms(lambda: torch.linalg.cholesky(c), 3, warmup=1)
    # float32 eigh fails in Debian's LAPACK at this size (ssyevd workspace rounded in float32); both sides
    # run it in float64 and cast back, which is what the addon does by itself.
    def eigh_f32_via_f64():
        w, v = torch.linalg.eigh(c.double())
        return w.float(), v.float()
    res[f"eigh {n} (float32 via float64)"] = median_ms(eigh_f32_via_f64, 1 if quick else 3, warmup=0)
    print(json.dumps({"torch": torch.__version__, "results": res}))


if __name__ == "__main__":
    main()

"""The Python side of bench/prefix.ts: batched greedy generation on GPT-2-small-shaped random weights,
as transformers' generate does it for a decoder-only model (Python transformers is not installed on
these machines, so this is the same loop written out in plain PyTorch): the full prompts left-padded,
attention mask, position ids cumsum(mask) - 1 (1 where masked), a KV cache grown by torch.cat at each
step (DynamicCache), eager attention with finfo.min masking, greedy argmax, no EOS.

usage: prefix_torch.py CHECKPOINT_DIR INPUT.json  (INPUT: {"prompts": [[ids]], "new_tokens": N, "pad": id})
prints one JSON line: {"torch", "results": {tokens/s}, "tokens": [[generated ids]]}
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models_torch import load_safetensors  # noqa: E402

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))


def forward(P, cfg, ids, pos, mask, cache):
    """One forward over new tokens ids [B, T] with positions pos [B, T]; mask [B, past + T] (1 = real)."""
    B, T = ids.shape
    d, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    hd = d // H
    h = F.embedding(ids, P["transformer.wte.weight"]) + F.embedding(pos, P["transformer.wpe.weight"])
    past = cache[0][0].shape[2] if cache[0] is not None else 0
    S = past + T
    causal = torch.ones(T, S, dtype=torch.bool).triu(past + 1)  # key j > past + i is in the future
    masked = causal.unsqueeze(0).unsqueeze(0) | (mask == 0).view(B, 1, 1, S)
    for l in range(L):
        p = f"transformer.h.{l}."
        x = F.layer_norm(h, (d,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], 1e-5)
        qkv = torch.addmm(P[p + "attn.c_attn.bias"], x.reshape(-1, d), P[p + "attn.c_attn.weight"]).view(B, T, 3 * d)
        q, k, v = [t.view(B, T, H, hd).transpose(1, 2) for t in qkv.split(d, 2)]
        if cache[l] is not None:
            k = torch.cat([cache[l][0], k], 2)
            v = torch.cat([cache[l][1], v], 2)
        cache[l] = (k, v)
        w = q.matmul(k.transpose(-1, -2)) / math.sqrt(hd)
        w = w.masked_fill(masked, torch.finfo(w.dtype).min).softmax(-1)
        o = w.matmul(v).transpose(1, 2).reshape(B, T, d)
        h = h + torch.addmm(P[p + "attn.c_proj.bias"], o.reshape(-1, d), P[p + "attn.c_proj.weight"]).view(B, T, d)
        x = F.layer_norm(h, (d,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], 1e-5)
        m = F.gelu(torch.addmm(P[p + "mlp.c_fc.bias"], x.reshape(-1, d), P[p + "mlp.c_fc.weight"]), approximate="tanh")
        h = h + torch.addmm(P[p + "mlp.c_proj.bias"], m, P[p + "mlp.c_proj.weight"]).view(B, T, d)
    h = F.layer_norm(h[:, -1:], (d,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], 1e-5)
    return F.linear(h, P["transformer.wte.weight"])[:, -1]


def greedy(P, cfg, prompts, new_tokens, pad):
    B = len(prompts)
    W = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (W - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (W - len(p)) + [1] * len(p) for p in prompts])
    cache = [None] * cfg["n_layer"]
    out = [[] for _ in range(B)]
    inp = ids
    for step in range(new_tokens):
        pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)[:, -inp.shape[1]:]
        logits = forward(P, cfg, inp, pos, mask, cache)
        nxt = logits.argmax(-1)
        for b in range(B):
            out[b].append(int(nxt[b]))
        inp = nxt.view(B, 1)
        mask = torch.cat([mask, torch.ones(B, 1, dtype=mask.dtype)], 1)
    return out


def main():
    d, inp = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(d, "config.json")))
    P = load_safetensors(os.path.join(d, "model.safetensors"))
    job = json.load(open(inp))
    prompts, n, pad = job["prompts"], job["new_tokens"], job["pad"]
    with torch.no_grad():
        greedy(P, cfg, [p[:64] for p in prompts[:2]], 2, pad)  # warm-up
        t0 = time.perf_counter()
        toks = greedy(P, cfg, prompts, n, pad)
        secs = time.perf_counter() - t0
    res = {"PyTorch greedy loop, full prompts, KV cache (tokens/s)": len(prompts) * n / secs}
    print(json.dumps({"torch": torch.__version__, "results": res, "seconds": secs, "tokens": toks}))


if __name__ == "__main__":
    main()

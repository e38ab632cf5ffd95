"""The Python PyTorch side of bench/models.ts: GPT-2-small forward throughput (tokens/s) at batch 8 x 256,
written out with the same ops as transformers' GPT2LMHeadModel (eager attention), on the same random
weights (read from the safetensors file the TypeScript side wrote, parsed here with the standard library).
"""
import json
import math
import statistics
import struct
import sys
import time

import os
import torch
import torch.nn.functional as F

_omp = os.environ.get("OMP_NUM_THREADS", "")
torch.set_num_threads(int(_omp) if _omp.isdigit() and int(_omp) > 0 else 1)  # the addon's rule: OMP_NUM_THREADS, else 1


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).view(v["shape"])
    return out


def forward(P, ids, cfg):
    B, T = ids.shape
    d, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    hd = d // H
    pos = torch.arange(T).unsqueeze(0)
    h = F.embedding(ids, P["transformer.wte.weight"]) + F.embedding(pos, P["transformer.wpe.weight"])
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)
    for l in range(L):
        p = f"transformer.h.{l}."
        x = F.layer_norm(h, (d,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], 1e-5)
        qkv = torch.addmm(P[p + "attn.c_attn.bias"], x.view(-1, d), P[p + "attn.c_attn.weight"]).view(B, T, 3 * d)
        q, k, v = [t.view(B, T, H, hd).transpose(1, 2) for t in qkv.split(d, 2)]
        w = q.matmul(k.transpose(-1, -2)) / math.sqrt(hd)
        w = w.masked_fill(causal, torch.finfo(w.dtype).min).softmax(-1)
        o = w.matmul(v).transpose(1, 2).contiguous().view(B, T, d)
        h = h + torch.addmm(P[p + "attn.c_proj.bias"], o.view(-1, d), P[p + "attn.c_proj.weight"]).view(B, T, d)
        x = F.layer_norm(h, (d,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], 1e-5)
        m = F.gelu(torch.addmm(P[p + "mlp.c_fc.bias"], x.view(-1, d), P[p + "mlp.c_fc.weight"]), approximate="tanh")
        h = h + torch.addmm(P[p + "mlp.c_proj.bias"], m, P[p + "mlp.c_proj.weight"]).view(B, T, d)
    h = F.layer_norm(h, (d,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], 1e-5)
    return F.linear(h, P["transformer.wte.weight"])


def main():
    d = sys.argv[1]
    quick = "--quick" in sys.argv
    cfg = json.load(open(f"{d}/config.json"))
    P = load_safetensors(f"{d}/model.safetensors")
    ids = torch.randint(0, cfg["vocab_size"], (8, 256), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        forward(P, ids, cfg)
        ts = []
        for _ in range(2 if quick else 5):
            t0 = time.perf_counter()
            logits = forward(P, ids, cfg)
            ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    print(json.dumps({"torch": torch.__version__, "results": {"gpt2-small forward 8x256 (tokens/s)": 8 * 256 / med}, "checksum": float(logits[0, -1, :5].sum())}))


if __name__ == "__main__":
    main()

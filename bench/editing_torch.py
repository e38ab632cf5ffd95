"""The Python PyTorch side of bench/editing.ts: one ROME edit and one MEMIT batch on the same random
GPT-2-medium-shaped checkpoint, written in plain PyTorch (a functional GPT-2 forward with hooks on the
MLP output, the block output and the down-projection's input/output), following kmeng01/rome and
kmeng01/memit as docs/reference/rome.md and docs/reference/memit-family.md specify them.

The token ids, subject positions and target ids come from the JSON file bench/editing.ts writes, so
both sides run on identical inputs (the tokenizer and the subject-index rule are EditEval's). The
covariance C is read from a safetensors file ("mom2", [4096, 4096]); no statistics are computed.

Usage: editing_torch.py MODEL_DIR MOM2.safetensors INPUTS.json OUT_PREFIX [--n N] [--quick]
(N: MEMIT batch size; default 100, --quick 10)
Prints JSON {"torch", "results"} (median ms) on its last line; writes OUT_PREFIX.json (losses, norms) and
OUT_PREFIX.safetensors (ROME's u and v, MEMIT's dense per-layer updates) for the cross-check.
"""
import json
import math
import os
import statistics
import struct
import sys
import time

import torch
import torch.nn.functional as F

# the addon's rule (native/addon.cc): OMP_NUM_THREADS intra-op threads when set, else 1; with Debian's
# OpenMP OpenBLAS this also sets BLAS's threads, on both sides
_omp = os.environ.get("OMP_NUM_THREADS", "")
torch.set_num_threads(int(_omp) if _omp.isdigit() and int(_omp) > 0 else 1)


# ----------------------------------------------------------------------------------------------------
# safetensors with the standard library
# ----------------------------------------------------------------------------------------------------
DTYPES = {"F32": torch.float32, "F64": torch.float64}


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
        out[k] = torch.frombuffer(bytearray(data[b:e]), dtype=DTYPES[v["dtype"]]).view(v["shape"])
    return out


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        b = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ----------------------------------------------------------------------------------------------------
# GPT-2 (transformers' GPT2LMHeadModel, eager attention) with the hooks the editing methods need
# ----------------------------------------------------------------------------------------------------
class GPT2:
    def __init__(self, P, cfg):
        self.P, self.cfg = P, cfg
        self.d, self.H, self.L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
        self.hooks = {}  # ("mlp" | "block", layer) -> fn(out) -> out;  ("c_proj", layer) -> fn(inp, out)

    def forward(self, ids, mask, last_only=False):
        P, d, H = self.P, self.d, self.H
        B, T = ids.shape
        hd = d // H
        # positions as transformers' generate() rule (cumsum(mask) - 1, padding 1); right padding: 0..n-1
        pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
        masked = torch.ones(T, T, dtype=torch.bool).triu(1).view(1, 1, T, T) | (mask == 0).view(B, 1, 1, T)
        neg = torch.finfo(torch.float32).min
        h = F.embedding(ids, P["transformer.wte.weight"]) + F.embedding(pos, P["transformer.wpe.weight"])
        for l in range(self.L):
            p = f"transformer.h.{l}."
            x = F.layer_norm(h, (d,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], 1e-5)
            qkv = torch.addmm(P[p + "attn.c_attn.bias"], x.reshape(-1, d), P[p + "attn.c_attn.weight"]).view(B, T, 3 * d)
            q, k, v = [t.view(B, T, H, hd).transpose(1, 2) for t in qkv.split(d, 2)]
            w = q.matmul(k.transpose(-1, -2)) / math.sqrt(hd)
            w = w.masked_fill(masked, neg).softmax(-1)
            o = w.matmul(v).transpose(1, 2).contiguous().view(B, T, d)
            h1 = torch.addmm(P[p + "attn.c_proj.bias"], o.view(-1, d), P[p + "attn.c_proj.weight"]).view(B, T, d) + h
            x = F.layer_norm(h1, (d,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], 1e-5)
            f = torch.addmm(P[p + "mlp.c_fc.bias"], x.reshape(-1, d), P[p + "mlp.c_fc.weight"])
            g = F.gelu(f, approximate="tanh")
            m = torch.addmm(P[p + "mlp.c_proj.bias"], g, P[p + "mlp.c_proj.weight"]).view(B, T, d)
            if ("c_proj", l) in self.hooks:
                self.hooks[("c_proj", l)](g.view(B, T, -1), m)
            if ("mlp", l) in self.hooks:
                m = self.hooks[("mlp", l)](m)
            h = h1 + m
            if ("block", l) in self.hooks:
                h = self.hooks[("block", l)](h)
        h = F.layer_norm(h, (d,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], 1e-5)
        if last_only:
            h = h[:, T - 1 :]
        return F.linear(h, P["transformer.wte.weight"])


def right_padded(ids, pad):
    width = max(len(r) for r in ids)
    t = torch.tensor([r + [pad] * (width - len(r)) for r in ids], dtype=torch.int64)
    m = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in ids], dtype=torch.int64)
    return t, m, [len(r) for r in ids]


def reprs_at(M, kind, layer, rows, pad):
    """(inputs, outputs) of c_proj ("c_proj") or the block output ("block") at each row's position."""
    ids, mask, _ = right_padded(rows["ids"], pad)
    r = torch.arange(len(rows["ids"]))
    pos = torch.tensor(rows["pos"], dtype=torch.int64)
    got = {}

    def c_proj(inp, out):
        got["in"], got["out"] = inp[r, pos], out[r, pos]

    def block(out):
        got["out"] = out[r, pos]
        return out

    M.hooks = {(kind, layer): c_proj if kind == "c_proj" else block}
    try:
        with torch.no_grad():
            M.forward(ids, mask, last_only=True)
    finally:
        M.hooks = {}
    return got.get("in"), got["out"]


# ----------------------------------------------------------------------------------------------------
# ROME's compute_v up to v* / MEMIT's compute_z (rome.md §7, memit-family.md §1.4)
# ----------------------------------------------------------------------------------------------------
def optimise_value(M, vrows, kind, layer, h, pad):
    ids, mask, lengths = right_padded(vrows["ids"], pad)
    n_all, width = ids.shape
    n_rw = vrows["nRewrite"]
    target = vrows["target"]
    T = len(target)
    tgt = torch.full((n_rw, width), -100, dtype=torch.int64)
    for i in range(n_rw):
        tgt[i, lengths[i] - T : lengths[i]] = torch.tensor(target)
    tgt_mask = (tgt != -100).float()
    tgt_idx = torch.where(tgt != -100, tgt, 0)
    rows = torch.arange(n_all)
    lookup = vrows["pos"]
    pos = torch.tensor(lookup, dtype=torch.int64)
    kl_rows = torch.arange(n_rw, n_all)
    kl_pos = torch.tensor(lookup[n_rw:], dtype=torch.int64)

    delta = torch.zeros(M.d, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=h["v_lr"])
    state = {"v_init": None, "kl_init": None}

    def hook(out):
        if state["v_init"] is None:
            state["v_init"] = out[0, lookup[0]].detach().clone()
        add = torch.zeros_like(out).index_put((rows, pos), delta)
        return out + add

    losses = []
    M.hooks = {(kind, layer): hook}
    try:
        for it in range(h["v_num_grad_steps"]):
            opt.zero_grad()
            logits = M.forward(ids, mask)
            kl_log_probs = logits[kl_rows, kl_pos].log_softmax(-1)
            if state["kl_init"] is None:
                state["kl_init"] = kl_log_probs.detach().clone()
            log_probs = logits[:n_rw].log_softmax(2)
            picked = log_probs.gather(2, tgt_idx.unsqueeze(2)).squeeze(2)
            nll = (-(picked * tgt_mask).sum(1) / T).mean()
            kl = h["kl_factor"] * F.kl_div(state["kl_init"], kl_log_probs, log_target=True, reduction="batchmean")
            wd = h["v_weight_decay"] * (delta.norm() / state["v_init"].norm() ** 2)
            loss = nll + kl + wd
            value = loss.item()
            losses.append(value)
            if not math.isfinite(value):
                raise RuntimeError(f"value optimisation diverged at step {it}")
            if value < 5e-2 or it == h["v_num_grad_steps"] - 1:
                break
            loss.backward()
            opt.step()
            with torch.no_grad():
                max_norm = state["v_init"].norm().item() * h["clamp_norm_factor"]
                n = delta.norm().item()
                if n > max_norm:
                    delta.mul_(max_norm / n)
    finally:
        M.hooks = {}
    return state["v_init"] + delta.detach(), losses


# ----------------------------------------------------------------------------------------------------
# ROME (rome.md §5, §7, §8)
# ----------------------------------------------------------------------------------------------------
def rome_inv_cov(mom2_path):
    C = load_safetensors(mom2_path)["mom2"]
    return torch.linalg.inv(C.to(torch.float32)).to(torch.float32)


def rome_edit(M, inp, inv_cov, pad):
    h, layer = inp["hparams"], inp["hparams"]["layers"][0]
    # compute_u: the key at the subject's last token, averaged over the templates; C^-1 k; unit norm
    k_in, _ = reprs_at(M, "c_proj", layer, inp["key"], pad)
    u = inv_cov @ k_in.mean(0).float()
    u = u / u.norm()
    # compute_v: delta on the MLP output, then (v* - W k) / (k . u) with the bare prompt's k, W k
    v_star, losses = optimise_value(M, inp["value"], "mlp", layer, h, pad)
    k, wk = reprs_at(M, "c_proj", layer, inp["bare"], pad)
    right = (v_star.float() - wk[0].float()) / k[0].float().dot(u)
    # the update, in Conv1D's [in, out] layout
    with torch.no_grad():
        M.P[f"transformer.h.{layer}.mlp.c_proj.weight"].add_(torch.outer(u, right))
    return u, right, losses


# ----------------------------------------------------------------------------------------------------
# MEMIT (memit-family.md §1.4-§2)
# ----------------------------------------------------------------------------------------------------
def memit_edit(M, inp, reqs, mom2_path, pad):
    h = inp["hparams"]
    layers = sorted(h["layers"])
    z_layer = h["layers"][-1]
    sizes = inp["groupSizes"]
    # compute_z per request (block output of the last edited layer), on the unedited model
    zs, all_losses = [], []
    for r in reqs:
        z, losses = optimise_value(M, r["value"], "block", z_layer, h, pad)
        zs.append(z.float())
        all_losses.append(losses)
    Z = torch.stack(zs, 1)  # [d, n]
    key_rows = {"ids": [x for r in reqs for x in r["keys"]["ids"]], "pos": [x for r in reqs for x in r["keys"]["pos"]]}
    bare_rows = {"ids": [r["bare"]["ids"][0] for r in reqs], "pos": [r["bare"]["pos"][0] for r in reqs]}
    per = sum(sizes)
    saved, deltas = [], []
    try:
        for i, layer in enumerate(layers):
            name = f"transformer.h.{layer}.mlp.c_proj.weight"
            # keys: per request, the mean over template groups of the mean within each group
            k_in, _ = reprs_at(M, "c_proj", layer, key_rows, pad)
            ks = []
            for j in range(len(reqs)):
                off, means = j * per, []
                for s in sizes:
                    means.append(k_in[off : off + s].mean(0))
                    off += s
                ks.append(torch.stack(means).mean(0))
            K = torch.stack(ks).T.double()  # [d_in, n]
            _, cur = reprs_at(M, "block", z_layer, bare_rows, pad)
            R = (Z - cur.T.float()).double() / (len(layers) - i)
            C = load_safetensors(mom2_path)["mom2"].float().double()
            A = C * h["mom2_update_weight"] + K @ K.T
            adj_k = torch.linalg.solve(A, K)
            W = M.P[name]
            copy = W.clone()
            saved.append((W, copy))
            with torch.no_grad():
                W.copy_(copy + (adj_k @ R.T).to(torch.float32))
            deltas.append((name, adj_k, R))
    finally:
        with torch.no_grad():
            for W, copy in reversed(saved):
                W.copy_(copy)
    # apply: W += adj_k R^T (computed again, as MEMIT's apply_memit_to_model)
    dense = {}
    with torch.no_grad():
        for name, adj_k, R in deltas:
            upd = (adj_k @ R.T).to(torch.float32)
            M.P[name].add_(upd)
            dense[name] = upd
    return dense, all_losses


def start_timing():
    """Wall time and the process's CPU time (all threads: OpenBLAS's too), in ms."""
    w0, c0 = time.perf_counter(), time.process_time()
    return lambda: ((time.perf_counter() - w0) * 1000, (time.process_time() - c0) * 1000)


def record(res, name, ts):
    """Medians of wall and CPU time under `name` and `name [CPU]` (the machine may be shared)."""
    res[name] = statistics.median(w for w, _ in ts)
    res[name + " [CPU]"] = statistics.median(c for _, c in ts)


def main():
    model_dir, mom2_path, inputs_path, out_prefix = sys.argv[1:5]
    quick = "--quick" in sys.argv
    reps = 1 if quick else 3
    n_memit = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 10 if quick else 100
    cfg = json.load(open(f"{model_dir}/config.json"))
    inp = json.load(open(inputs_path))
    pad = inp["pad"]
    P = load_safetensors(f"{model_dir}/model.safetensors")
    M = GPT2(P, cfg)
    with torch.no_grad():
        M.forward(torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.int64))
    res = {}
    rome_layer = inp["rome"]["hparams"]["layers"][0]
    rome_name = f"transformer.h.{rome_layer}.mlp.c_proj.weight"
    original = P[rome_name].clone()

    # ROME: `reps` edits reading C and inverting it, then `reps` with C^-1 cached; restore after each
    cold, warm, first = [], [], None
    inv = None
    for i in range(2 * reps):
        t = start_timing()
        if i < reps:
            inv = rome_inv_cov(mom2_path)
        u, v, losses = rome_edit(M, inp["rome"], inv, pad)
        (cold if i < reps else warm).append(t())
        if first is None:
            first = (u, v, losses)
        elif not torch.equal(v, first[1]):
            print(f"note: ROME repetition {i} differs from the first", file=sys.stderr)
        P[rome_name].copy_(original)
    record(res, f"ROME edit, layer {rome_layer} (reading C, C^-1 in the edit)", cold)
    record(res, f"ROME edit, layer {rome_layer} (C^-1 cached)", warm)

    # MEMIT: one batch
    layers = inp["memit"]["hparams"]["layers"]
    originals = {l: P[f"transformer.h.{l}.mlp.c_proj.weight"].clone() for l in layers}
    t = start_timing()
    dense, mlosses = memit_edit(M, inp["memit"], inp["memit"]["requests"][:n_memit], mom2_path, pad)
    tm = t()
    record(res, f"MEMIT batch of {n_memit}, layers {','.join(map(str, layers))} (one run)", [tm])
    record(res, "MEMIT per request (batch / n)", [(tm[0] / n_memit, tm[1] / n_memit)])
    for l, w in originals.items():
        P[f"transformer.h.{l}.mlp.c_proj.weight"].copy_(w)

    u, v, losses = first
    out = {
        "rome": {
            "losses": [losses],
            "steps": [len(losses)],
            "norm_uv": u.norm().item() * v.norm().item(),
            "norm_v": v.norm().item(),
        },
        "memit": {
            "n": n_memit,
            "losses0": mlosses[0],
            "steps": [len(l) for l in mlosses],
            "final_losses": [l[-1] for l in mlosses],
            "norms": {k: t.norm().item() for k, t in dense.items()},
        },
    }
    with open(out_prefix + ".json", "w") as f:
        json.dump(out, f)
    save_safetensors(out_prefix + ".safetensors", {"rome.u": u, "rome.v": v, **{f"memit.{k}": t for k, t in dense.items()}})
    print(json.dumps({"torch": torch.__version__, "results": res}))


if __name__ == "__main__":
    main()

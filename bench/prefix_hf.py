"""The transformers side of bench/prefix.ts: `GPT2LMHeadModel.generate` (greedy, KV cache, left padding,
its default attention implementation) on the same random checkpoint and the same token ids.

Runs with a Python that has `transformers` (bench/setup-transformers.sh makes bench/.venv-hf from a local
wheel mirror); bench/prefix.ts finds it through EDITEVAL_BENCH_HF_PYTHON or bench/.venv-hf/bin/python.

usage: prefix_hf.py CHECKPOINT_DIR INPUT.json  (INPUT: {"prompts": [[ids]], "new_tokens": N, "pad": id})
prints one JSON line: {"torch", "transformers", "attn", "threads", "results": {tokens/s}, "tokens": [[generated ids]]}
"""
import json
import os
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, GenerationConfig

# torch 2.x from PyPI does its matrix products with MKL inside torch's own thread pool, so it gets as
# many threads as EditEval's OpenBLAS takes by default: one per core (EDITEVAL_BENCH_HF_THREADS to change)
THREADS = int(os.environ.get("EDITEVAL_BENCH_HF_THREADS") or os.cpu_count() or 1)
torch.set_num_threads(THREADS)


def run(model, prompts, new_tokens, pad):
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    # no EOS and no minimum length: exactly new_tokens greedy steps, nothing masked in the logits
    cfg = GenerationConfig(
        max_new_tokens=new_tokens, do_sample=False, num_beams=1, eos_token_id=None, bos_token_id=None, pad_token_id=pad
    )
    out = model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
    return out[:, width:].tolist()


def main():
    d, inp = sys.argv[1], sys.argv[2]
    job = json.load(open(inp))
    prompts, n, pad = job["prompts"], job["new_tokens"], job["pad"]
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        run(model, [p[:64] for p in prompts[:2]], 2, pad)  # warm-up
        t0 = time.perf_counter()
        toks = run(model, prompts, n, pad)
        secs = time.perf_counter() - t0
    attn = getattr(model.config, "_attn_implementation", "?")
    res = {f"transformers generate ({attn} attention, {THREADS} threads), full prompts (tokens/s)": len(prompts) * n / secs}
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "attn": attn,
                "threads": THREADS,
                "results": res,
                "seconds": secs,
                "tokens": toks,
            }
        )
    )


if __name__ == "__main__":
    main()

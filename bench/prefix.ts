/**
 * Shared-prefix benchmarks on a GPT-2-small-shaped random model (124M parameters):
 *  - MMLU-shaped scoring: a ~600-token 5-shot context and 4 one-token choices per question, scored per
 *    pair (4 sequences per question, as the harness does) and with the context shared;
 *  - generation on gsm8k_cot_hub prompts (the 8-shot chain-of-thought prompt + the first 8 test (EDITEVAL_BENCH_QUESTIONS)
 *    questions, tokenized with the fixture tokenizer, left-truncated to leave room for the new tokens),
 *    one batch of all of them, greedy, no EOS: the full prompts (prefix re-encoded per question), the prefix
 *    encoded once and its KV cache shared by every row (KVCache.sharing), Python's twin
 *    (prefix_torch.py: transformers' generate loop in plain PyTorch, Debian's python3-torch) and
 *    transformers' own generate (prefix_hf.py, in bench/.venv-hf made by bench/setup-transformers.sh)
 *    on the same token ids; all must give the same tokens.
 */
import * as torch from "../src/torch/index.js";
import { loadModel } from "../src/models/load.js";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { GPT2_SMALL, randomCheckpoint } from "./models.js";
import { fileURLToPath } from "node:url";
import type { CausalLM } from "../src/models/model.js";
import { encodePrefix, generate } from "../src/models/generate.js";
import { loadTokenizer } from "../src/models/tokenizer/index.js";
import { resolveTasks } from "../src/harness/registry.js";
import { buildInstances } from "../src/harness/evaluate.js";
import { loglikelihoodShared, loglikelihoodTokens } from "../src/models/scoring.js";

function randIds(n: number, seed: number, vocab: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % vocab;
  });
}

export function runPrefixBench(dir: string, quick: boolean): Record<string, number> {
  const model = loadModel(dir);
  const V = model.config.vocabSize;
  const res: Record<string, number> = {};
  const nq = quick ? 4 : 12;
  const questions = Array.from({ length: nq }, (_, q) => ({
    context: randIds(600, 100 + q, V),
    continuations: [0, 1, 2, 3].map((c) => [randIds(1, 1000 * q + c, V)[0] as number]),
  }));
  let t0 = performance.now();
  for (const q of questions)
    loglikelihoodTokens(
      model,
      q.continuations.map((c) => ({ context: q.context, continuation: c })),
      { batchSize: 4 },
    );
  const perPair = (performance.now() - t0) / nq;
  t0 = performance.now();
  loglikelihoodShared(model, questions);
  const shared = (performance.now() - t0) / nq;
  res["MMLU-shaped scoring, per pair (ms/question)"] = perPair;
  res["MMLU-shaped scoring, shared context (ms/question)"] = shared;
  res["speed-up of shared context (x)"] = perPair / shared;

  model.free();
  // the 8-shot prompt is ~1,100 tokens with the fixture's 768-token BPE: a 2,048-position GPT-2 small
  const dir2k = randomCheckpoint(join(dirname(dir), "gpt2-small-2k-random"), {
    ...GPT2_SMALL,
    n_positions: 2048,
  });
  const model2k = loadModel(dir2k);
  Object.assign(res, gsm8kGeneration(model2k, dir2k, quick));
  model2k.free();
  torch.scope(() => undefined);
  return res;
}

const benchSrc = join(fileURLToPath(new URL(".", import.meta.url)), "..", "..", "bench");
const fixtureTokenizer = join(benchSrc, "..", "..", "shared", "fixtures", "gpt2-tiny");

/** The gsm8k_cot_hub prompts of the first n test questions as token ids (the fixture's 768-token BPE). */
export function gsm8kCotHubPromptIds(n: number, maxLen: number): number[][] {
  const { tasks } = resolveTasks(["gsm8k_cot_hub"]);
  const { instances } = buildInstances(tasks, { limit: n });
  const tok = loadTokenizer(process.env.EDITEVAL_BENCH_TOKENIZER ?? fixtureTokenizer);
  return (instances.get("gsm8k_cot_hub") ?? []).map((inst) => {
    const ids = tok.encode(inst.context, { addSpecialTokens: false });
    return ids.length > maxLen ? ids.slice(-maxLen) : ids;
  });
}

function commonPrefix(rows: number[][]): number {
  const first = rows[0] as number[];
  let n = Math.min(...rows.map((r) => r.length)) - 1;
  for (const r of rows) {
    let i = 0;
    while (i < n && r[i] === first[i]) i++;
    n = i;
  }
  return n;
}

export function gsm8kGeneration(model: CausalLM, dir: string, quick: boolean): Record<string, number> {
  const res: Record<string, number> = {};
  const newTokens = Number(process.env.EDITEVAL_BENCH_NEW_TOKENS ?? (quick ? 16 : 64));
  // one batch of all questions (EDITEVAL_BENCH_QUESTIONS, default 8; the harness's --batch_size)
  const nQuestions = Number(process.env.EDITEVAL_BENCH_QUESTIONS ?? 8);
  const prompts = gsm8kCotHubPromptIds(nQuestions, model.config.maxPositions - newTokens);
  const common = commonPrefix(prompts);
  const opts = { maxNewTokens: newTokens, eosTokenId: null, padTokenId: 0 };
  console.log(
    `  gsm8k_cot_hub prompts (one batch of ${prompts.length}): ${prompts.map((p) => p.length).join(", ")} tokens, shared prefix ${common}, ${newTokens} new tokens each`,
  );
  let t0 = performance.now();
  const full = generate(model, prompts, opts).map((g) => g.tokens);
  const fullS = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const p = encodePrefix(model, (prompts[0] as number[]).slice(0, common));
  const shared = generate(
    model,
    prompts.map((r) => r.slice(common)),
    { ...opts, prefix: p },
  ).map((g) => g.tokens);
  p.free();
  const sharedS = (performance.now() - t0) / 1000;
  const same = shared.every((t, i) => JSON.stringify(t) === JSON.stringify(full[i]));
  console.log(
    `  prefix encoded once: ${same ? "the same tokens as" : "DIFFERENT tokens from"} the full prompts`,
  );
  const n = prompts.length * newTokens;
  res["gsm8k_cot_hub generation, prefix re-encoded (tokens/s)"] = n / fullS;
  res["gsm8k_cot_hub generation, prefix encoded once and shared (tokens/s)"] = n / sharedS;
  res["speed-up of prefix reuse (x)"] = fullS / sharedS;
  res["prefix reuse = full prompts, token for token (1 = yes)"] = same ? 1 : 0;

  const tmp = mkdtempSync(join(tmpdir(), "ee-prefix-"));
  try {
    const job = join(tmp, "job.json");
    writeFileSync(job, JSON.stringify({ prompts, new_tokens: newTokens, pad: 0 }));
    const runPython = (python: string, script: string, what: string) => {
      if (!existsSync(python)) {
        console.log(`  (no ${python}: the ${what} comparison is skipped)`);
        return null;
      }
      const r = spawnSync(python, [join(benchSrc, script), dir, job], {
        encoding: "utf8",
        maxBuffer: 1 << 26,
        env: { ...process.env, OMP_NUM_THREADS: String(torch.getNumThreads()) },
      });
      if (r.status !== 0) {
        console.log(`  ${what} side failed: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
        return null;
      }
      const out = JSON.parse(r.stdout.trim().split("\n").pop() as string) as {
        torch: string;
        transformers?: string;
        threads?: number;
        results: Record<string, number>;
        tokens: number[][];
      };
      const agree = out.tokens.filter((t, i) => JSON.stringify(t) === JSON.stringify(full[i])).length;
      return { out, rate: Object.values(out.results)[0] as number, agree };
    };
    // plain PyTorch (Debian's python3-torch): transformers' greedy loop written out
    const pt = runPython(
      process.env.EDITEVAL_BENCH_PYTHON ?? "/usr/bin/python3",
      "prefix_torch.py",
      "PyTorch",
    );
    if (pt) {
      console.log(
        `  PyTorch ${pt.out.torch} greedy loop: ${pt.agree}/${prompts.length} rows give the same tokens`,
      );
      res[`PyTorch ${pt.out.torch} greedy loop with KV cache, full prompts (tokens/s)`] = pt.rate;
      res["EditEval prefix shared / PyTorch full prompts (x)"] = n / sharedS / pt.rate;
      res["EditEval full prompts / PyTorch full prompts (x)"] = n / fullS / pt.rate;
    }
    // transformers' own generate (bench/setup-transformers.sh makes bench/.venv-hf)
    const hf = runPython(
      process.env.EDITEVAL_BENCH_HF_PYTHON ?? join(benchSrc, ".venv-hf", "bin", "python"),
      "prefix_hf.py",
      "transformers",
    );
    if (hf) {
      const name = `transformers ${hf.out.transformers} (torch ${hf.out.torch}, ${hf.out.threads} threads)`;
      console.log(`  ${name} generate: ${hf.agree}/${prompts.length} rows give the same tokens`);
      res[`${name} generate, full prompts (tokens/s)`] = hf.rate;
      res["EditEval prefix shared / transformers generate (x)"] = n / sharedS / hf.rate;
      res["EditEval full prompts / transformers generate (x)"] = n / fullS / hf.rate;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return res;
}

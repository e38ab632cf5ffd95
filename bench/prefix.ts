/**
 * Shared-prefix benchmarks (EditEval only; Python transformers is not installed on these machines, so
 * the comparison with transformers' generate is left to machines that have it):
 *  - MMLU-shaped scoring: a ~600-token 5-shot context and 4 one-token choices per question, scored per
 *    pair (4 sequences per question, as the harness does) and with the context shared;
 *  - GSM8K-shaped generation: a ~900-token 8-shot prefix, a ~50-token question, 32 new tokens, batches of
 *    8, with the prefix re-encoded for every question and with it encoded once.
 * GPT-2-small-shaped random model (124M parameters).
 */
import * as torch from "../src/torch/index.js";
import { loadModel } from "../src/models/load.js";
import { encodePrefix, generate } from "../src/models/generate.js";
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

  const prefix = randIds(900, 7, V);
  const qs = Array.from({ length: 8 }, (_, i) => randIds(40 + 3 * i, 50 + i, V));
  const newTokens = quick ? 8 : 32;
  t0 = performance.now();
  generate(
    model,
    qs.map((q) => [...prefix, ...q]),
    { maxNewTokens: newTokens, eosTokenId: null, padTokenId: 0 },
  );
  const full = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const p = encodePrefix(model, prefix);
  generate(model, qs, { maxNewTokens: newTokens, eosTokenId: null, padTokenId: 0, prefix: p });
  p.free();
  const reuse = (performance.now() - t0) / 1000;
  res["GSM8K-shaped generation, prefix re-encoded (tokens/s)"] = (8 * newTokens) / full;
  res["GSM8K-shaped generation, prefix encoded once (tokens/s)"] = (8 * newTokens) / reuse;
  res["speed-up of prefix reuse, one batch of 8 (x)"] = full / reuse;
  model.free();
  torch.scope(() => undefined);
  return res;
}

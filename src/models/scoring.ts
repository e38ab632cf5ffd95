/**
 * Scoring for evaluation, with lm-evaluation-harness's semantics (lm_eval/models/huggingface.py):
 * - loglikelihood(context, continuation): the sum of the continuation tokens' log-probabilities and
 *   whether greedy decoding would produce them all (is_greedy);
 * - loglikelihoodRolling(text): the log-likelihood of a whole text in disjoint windows of the model's
 *   maximum length, the first window predicted from a prefix token (perplexity).
 * Token-level functions batch requests (sorted by length, right-padded, as the harness does);
 * string-level ones tokenise the pair as the harness does (trailing spaces of the context move to the
 * continuation; the continuation's tokens are those of context+continuation after the context's).
 */
import * as torch from "../torch/index.js";
import type { CausalLM } from "./model.js";

export interface TokenScore {
  /** sum of log P(continuation token | prefix) */
  logprob: number;
  /** every continuation token is the argmax of its position */
  isGreedy: boolean;
  /** per-token log-probabilities */
  tokenLogprobs: number[];
}

export interface TextTokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[]): string;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
}

/** The harness's maximum length: max_position_embeddings / n_positions of the config (or 2048). */
export function maxLength(model: CausalLM): number {
  return model.config.maxPositions > 0 ? model.config.maxPositions : 2048;
}

/**
 * Scores token-level requests. Each request's input is (context + continuation)[-(maxLen+1):][:-1];
 * the last len(continuation) positions predict the continuation. Requests are sorted by total length
 * (longest first) and run in batches of `batchSize`, right-padded.
 */
export function loglikelihoodTokens(
  model: CausalLM,
  requests: { context: number[]; continuation: number[] }[],
  opts: { batchSize?: number } = {},
): TokenScore[] {
  const maxLen = maxLength(model);
  const batchSize = Math.max(1, opts.batchSize ?? 8);
  const order = requests
    .map((r, i) => ({ i, len: r.context.length + r.continuation.length }))
    .sort((a, b) => b.len - a.len || a.i - b.i);
  const out: TokenScore[] = new Array(requests.length);
  for (let s = 0; s < order.length; s += batchSize) {
    const chunk = order.slice(s, s + batchSize);
    const prepared = chunk.map(({ i }) => {
      const r = requests[i] as { context: number[]; continuation: number[] };
      if (r.continuation.length === 0)
        throw new Error(`loglikelihood: request ${i} has an empty continuation`);
      if (r.context.length === 0)
        throw new Error(`loglikelihood: request ${i} has an empty context (use a prefix token)`);
      const whole = [...r.context, ...r.continuation].slice(-(maxLen + 1));
      const inp = whole.slice(0, -1);
      return { i, inp, cont: r.continuation.slice(-Math.min(r.continuation.length, inp.length)) };
    });
    const width = Math.max(...prepared.map((p) => p.inp.length));
    const scores = torch.scope(() =>
      torch.noGrad(() => {
        const ids = torch.tensor(
          prepared.map((p) => [...p.inp, ...new Array<number>(width - p.inp.length).fill(0)]),
          { dtype: "int64" },
        );
        // the padding's mask (only when a row is padded), so hooks that decide per sequence (WISE,
        // MELO) see the real tokens; for the causal rows it changes nothing
        const attentionMask = prepared.some((p) => p.inp.length < width)
          ? torch.tensor(
              prepared.map((p) => Array.from({ length: width }, (_, t) => (t < p.inp.length ? 1 : 0))),
              { dtype: "int64" },
            )
          : null;
        const logp = model.forward({ inputIds: ids, attentionMask }).logits.to("float32").logSoftmax(-1);
        return prepared.map((p, b) => {
          const n = p.cont.length;
          const rows = logp.select(0, b).narrow(0, p.inp.length - n, n); // [n, V]
          const contIdx = torch.tensor(p.cont, { dtype: "int64" }).unsqueeze(1);
          const lps = rows.gather(1, contIdx).squeeze(1).toNumbers();
          const greedy = rows.argmax(-1).toNumbers();
          return { lps, greedy };
        });
      }),
    );
    prepared.forEach((p, b) => {
      const { lps, greedy } = scores[b] as { lps: number[]; greedy: number[] };
      out[p.i] = {
        logprob: lps.reduce((a, x) => a + x, 0),
        isGreedy: greedy.every((g, k) => g === p.cont[k]),
        tokenLogprobs: lps,
      };
    });
  }
  return out;
}

/** The harness's prefix token for an empty context and for rolling windows: BOS, else EOS. */
export function prefixTokenId(tok: TextTokenizer): number {
  const id = tok.bosTokenId ?? tok.eosTokenId;
  if (id === null) throw new Error("the tokenizer has neither a BOS nor an EOS token to use as prefix");
  return id;
}

/** lm-evaluation-harness's _encode_pair: context and continuation token ids. */
export function encodePair(
  tok: TextTokenizer,
  context: string,
  continuation: string,
): { context: number[]; continuation: number[] } {
  const nSpaces = context.length - context.trimEnd().length;
  if (nSpaces > 0) {
    continuation = context.slice(context.length - nSpaces) + continuation;
    context = context.slice(0, context.length - nSpaces);
  }
  const whole = tok.encode(context + continuation, { addSpecialTokens: false });
  const ctx = tok.encode(context, { addSpecialTokens: false });
  return { context: ctx, continuation: whole.slice(ctx.length) };
}

/** String-level log-likelihoods, as the harness's loglikelihood requests. */
export function loglikelihood(
  model: CausalLM,
  tok: TextTokenizer,
  requests: { context: string; continuation: string }[],
  opts: { batchSize?: number } = {},
): TokenScore[] {
  const tokenReqs = requests.map((r) => {
    if (r.context === "") {
      return {
        context: [prefixTokenId(tok)],
        continuation: tok.encode(r.continuation, { addSpecialTokens: false }),
      };
    }
    return encodePair(tok, r.context, r.continuation);
  });
  return loglikelihoodTokens(model, tokenReqs, opts);
}

/** The harness's get_rolling_token_windows + make_disjoint_window: (context, continuation) pairs covering every token once. */
export function rollingWindows(
  tokens: number[],
  prefixToken: number,
  maxSeqLen: number,
  contextLen = 1,
): [number[], number[]][] {
  if (!(contextLen >= 1 && contextLen <= maxSeqLen))
    throw new Error("rollingWindows: need 1 <= contextLen <= maxSeqLen");
  const out: [number[], number[]][] = [];
  if (tokens.length === 0) return out;
  const predLen = maxSeqLen - contextLen + 1;
  let predicted = 0;
  const firstLen = Math.min(maxSeqLen, tokens.length);
  const disjoint = (a: number[], b: number[]): [number[], number[]] => [
    a.slice(0, a.length - (b.length - 1)),
    b,
  ];
  out.push(disjoint([prefixToken, ...tokens.slice(0, firstLen - 1)], tokens.slice(0, firstLen)));
  predicted += firstLen;
  while (predicted < tokens.length) {
    const windowPredLen = Math.min(tokens.length - predicted, predLen);
    const windowEnd = predicted + windowPredLen;
    out.push(
      disjoint(
        tokens.slice(Math.max(0, windowEnd - maxSeqLen - 1), windowEnd - 1),
        tokens.slice(windowEnd - windowPredLen, windowEnd),
      ),
    );
    predicted += windowPredLen;
  }
  return out;
}

/** Rolling log-likelihood of a text (sum over all its tokens) and its token count, for perplexity. */
export function loglikelihoodRolling(
  model: CausalLM,
  tok: TextTokenizer,
  text: string,
  opts: { batchSize?: number; maxLength?: number } = {},
): { logprob: number; tokens: number } {
  const ids = tok.encode(text, { addSpecialTokens: false });
  const windows = rollingWindows(ids, prefixTokenId(tok), opts.maxLength ?? maxLength(model));
  const scores = loglikelihoodTokens(
    model,
    windows.map(([context, continuation]) => ({ context, continuation })),
    opts,
  );
  return { logprob: scores.reduce((s, x) => s + x.logprob, 0), tokens: ids.length };
}

/**
 * Log-likelihoods of several continuations of one context (the choices of a multiple-choice question),
 * with the context encoded once: a forward pass over context[:-1] fills a KV cache, which is then
 * broadcast to one row per choice, and each row runs [context[-1], ...continuation[:-1]]. The result
 * equals loglikelihoodTokens on each (context, continuation) pair (the harness's input is
 * context + continuation, so the context is a shared prefix); groups whose longest input exceeds the
 * model's maximum length fall back to per-pair scoring (left truncation breaks the sharing).
 */
export function loglikelihoodShared(
  model: CausalLM,
  groups: { context: number[]; continuations: number[][] }[],
): TokenScore[][] {
  const maxLen = maxLength(model);
  return groups.map((g, gi) => {
    if (g.context.length === 0) throw new Error(`loglikelihoodShared: group ${gi} has an empty context`);
    if (g.continuations.some((c) => c.length === 0))
      throw new Error(`loglikelihoodShared: group ${gi} has an empty continuation`);
    const longest = g.context.length + Math.max(...g.continuations.map((c) => c.length));
    if (longest > maxLen + 1 || g.context.length < 2)
      return loglikelihoodTokens(
        model,
        g.continuations.map((c) => ({ context: g.context, continuation: c })),
        { batchSize: g.continuations.length },
      );
    const cache = model.newCache();
    try {
      return torch.scope(() =>
        torch.noGrad(() => {
          model.forward({
            inputIds: torch.tensor([g.context.slice(0, -1)], { dtype: "int64" }),
            cache,
            lastOnly: true,
          });
          const n = g.continuations.length;
          cache.selectRows(new Array<number>(n).fill(0));
          const last = g.context[g.context.length - 1] as number;
          const rows = g.continuations.map((c) => [last, ...c.slice(0, -1)]);
          const width = Math.max(...rows.map((r) => r.length));
          const ids = torch.tensor(
            rows.map((r) => [...r, ...new Array<number>(width - r.length).fill(0)]),
            { dtype: "int64" },
          );
          const past = g.context.length - 1;
          const mask = torch.tensor(
            rows.map((r) => [
              ...new Array<number>(past + r.length).fill(1),
              ...new Array<number>(width - r.length).fill(0),
            ]),
            { dtype: "int64" },
          );
          const pos = torch
            .arange(past, past + width)
            .unsqueeze(0)
            .expand(n, width);
          const logp = model
            .forward({ inputIds: ids, attentionMask: mask, positionIds: pos, cache })
            .logits.to("float32")
            .logSoftmax(-1);
          return g.continuations.map((c, b) => {
            const rowsLp = logp.select(0, b).narrow(0, 0, c.length);
            const lps = rowsLp
              .gather(1, torch.tensor(c, { dtype: "int64" }).unsqueeze(1))
              .squeeze(1)
              .toNumbers();
            const greedy = rowsLp.argmax(-1).toNumbers();
            return {
              logprob: lps.reduce((a, x) => a + x, 0),
              isGreedy: greedy.every((t, k) => t === c[k]),
              tokenLogprobs: lps,
            };
          });
        }),
      );
    } finally {
      cache.free();
    }
  });
}

/**
 * The model side of the harness: the three request types of lm-evaluation-harness
 * (lm_eval/api/model.py: loglikelihood, loglikelihood_rolling, generate_until), a model-backed
 * implementation with the semantics of lm_eval/models/huggingface.py, and a caching wrapper.
 *
 * ModelLM answers loglikelihood requests in three ways, all equal to scoring each (context,
 * continuation) pair alone (the harness's input is (context + continuation)[-(max_len+1):][:-1]):
 * - requests sharing a context whose continuations are all one token (MMLU's " A".." D"): one row per
 *   context, batched, the choices read from the logits of the context's last position;
 * - a context shared by several longer continuations (TruthfulQA, cloze choices): the context is
 *   encoded once into a KV cache and the continuations run on it (scoring.ts loglikelihoodShared),
 *   when that saves enough tokens;
 * - the rest: batches sorted by length (scoring.ts loglikelihoodTokens).
 * generate_until batches requests with the same generation arguments (greedy or sampling, stop
 * strings plus the EOS token's text, max_gen_toks, default 256), left-truncating contexts to
 * max_length - max_gen_toks, and encodes a token prefix shared by a whole batch (a few-shot prompt)
 * once.
 */
import * as torch from "../torch/index.js";
import type { CausalLM } from "../models/model.js";
import type { ChatMessage, Tokenizer } from "../models/tokenizer/index.js";
import {
  encodePair,
  loglikelihoodShared,
  loglikelihoodTokens,
  maxLength,
  prefixTokenId,
  rollingWindows,
} from "../models/scoring.js";
import { encodePrefix, generate, type EncodedPrefix } from "../models/generate.js";
import { modelFingerprint } from "../models/fingerprint.js";
import { sha256 } from "../util/hash.js";
import { Progress } from "../util/progress.js";
import { RequestCache } from "./cache.js";
import { renderChatForHarness } from "./chat.js";

export interface LoglikelihoodRequest {
  context: string;
  continuation: string;
}

export interface LoglikelihoodResult {
  logprob: number;
  isGreedy: boolean;
}

export interface GenerationKwargs {
  until?: string[];
  max_gen_toks?: number;
  temperature?: number;
  do_sample?: boolean;
  /** seed of the sampler when do_sample (default 0) */
  seed?: number;
  /** encode the context with the tokenizer's special tokens (a BOS), as `tokenizer(prompt)` does (default false) */
  add_special_tokens?: boolean;
  /**
   * stop a row once its decoded output matches this (JavaScript) regular expression; unlike `until`,
   * the output is not cut (for answer rules that ignore everything after a point, e.g. the first line
   * containing "answer is")
   */
  stop_regex?: string;
}

export interface GenerationRequest extends GenerationKwargs {
  context: string;
}

/** What a model must answer (lm-evaluation-harness's LM). */
export interface LM {
  loglikelihood(requests: LoglikelihoodRequest[]): LoglikelihoodResult[];
  /** total log-likelihood of each text (perplexity), in disjoint windows of the model's length */
  loglikelihoodRolling(texts: string[]): number[];
  generateUntil(requests: GenerationRequest[]): string[];
  /** tokens of a text without special tokens (for prompt rules that count them), when known */
  countTokens?(text: string): number;
  /** the model's maximum sequence length, when known */
  readonly maxLength?: number;
  /**
   * renders a chat history into a prompt (lm-eval's `apply_chat_template`), for
   * `applyChatTemplate`; `chatTemplate` names one of several templates
   */
  applyChatTemplate?(
    messages: ChatMessage[],
    opts: { addGenerationPrompt: boolean; chatTemplate?: string },
  ): string;
  /** the chat template's text (lm-eval's `chat_template()`, written into the results) */
  chatTemplate?(name?: string): string;
}

export interface ModelLMOptions {
  /** rows per forward pass (default 8) */
  batchSize?: number;
  /** default max_gen_toks (the harness's 256) */
  maxGenToks?: number;
  /** override the model's maximum length */
  maxLength?: number;
  /** show progress on stderr (default true unless EDITEVAL_QUIET=1) */
  progress?: boolean;
  /**
   * share a context across its continuations with a KV cache: "auto" (default) when it saves at
   * least 128 token positions, true always, false never (per-pair batches)
   */
  shareContext?: boolean | "auto";
}

function commonPrefixLength(rows: number[][]): number {
  if (rows.length === 0) return 0;
  const first = rows[0] as number[];
  let n = Math.min(...rows.map((r) => r.length));
  for (const r of rows) {
    let i = 0;
    while (i < n && r[i] === first[i]) i++;
    n = i;
  }
  return n;
}

/** A loaded model and its tokenizer answering harness requests. */
export class ModelLM implements LM {
  readonly batchSize: number;
  readonly maxLength: number;
  readonly maxGenToks: number;
  private warned = new Set<string>();

  constructor(
    readonly model: CausalLM,
    readonly tok: Tokenizer,
    readonly opts: ModelLMOptions = {},
  ) {
    this.batchSize = Math.max(1, opts.batchSize ?? 8);
    this.maxLength = opts.maxLength ?? maxLength(model);
    this.maxGenToks = opts.maxGenToks ?? 256;
  }

  private warnOnce(msg: string): void {
    if (this.warned.has(msg)) return;
    this.warned.add(msg);
    process.stderr.write(`editeval harness: ${msg}\n`);
  }

  countTokens(text: string): number {
    return this.tok.encode(text, { addSpecialTokens: false }).length;
  }

  applyChatTemplate(
    messages: ChatMessage[],
    opts: { addGenerationPrompt: boolean; chatTemplate?: string },
  ): string {
    return renderChatForHarness(this.tok, messages, opts, (m) => this.warnOnce(m));
  }

  chatTemplate(name?: string): string {
    return this.tok.resolveChatTemplate(name);
  }

  /** The harness's token form of a request (empty context: the prefix token). */
  encodeRequest(r: LoglikelihoodRequest): { context: number[]; continuation: number[] } {
    if (r.context === "")
      return {
        context: [prefixTokenId(this.tok)],
        continuation: this.tok.encode(r.continuation, { addSpecialTokens: false }),
      };
    return encodePair(this.tok, r.context, r.continuation);
  }

  loglikelihood(requests: LoglikelihoodRequest[]): LoglikelihoodResult[] {
    const enc = requests.map((r) => this.encodeRequest(r));
    enc.forEach((e, i) => {
      if (e.continuation.length === 0)
        throw new Error(
          `loglikelihood: the continuation ${JSON.stringify(requests[i]?.continuation)} has no tokens`,
        );
    });
    const out: LoglikelihoodResult[] = new Array(requests.length);
    // group requests by context tokens
    const groups = new Map<string, number[]>();
    enc.forEach((e, i) => {
      const k = e.context.join(",");
      const g = groups.get(k);
      if (g) g.push(i);
      else groups.set(k, [i]);
    });
    const single: number[][] = []; // groups whose continuations are all one token
    const shared: number[][] = [];
    const loose: number[] = [];
    const share = this.opts.shareContext ?? "auto";
    for (const idx of groups.values()) {
      const ctx = (enc[idx[0] as number] as { context: number[] }).context;
      const conts = idx.map((i) => (enc[i] as { continuation: number[] }).continuation);
      if (conts.every((c) => c.length === 1)) single.push(idx);
      else if (
        idx.length > 1 &&
        share !== false &&
        ctx.length >= 2 &&
        ctx.length + Math.max(...conts.map((c) => c.length)) <= this.maxLength + 1 &&
        (share === true || (idx.length - 1) * ctx.length >= 128)
      )
        shared.push(idx);
      else loose.push(...idx);
    }
    this.scoreSingleToken(
      single.map((idx) => ({
        context: (enc[idx[0] as number] as { context: number[] }).context,
        tokens: idx.map((i) => (enc[i] as { continuation: number[] }).continuation[0] as number),
        idx,
      })),
      out,
    );
    if (shared.length > 0) {
      const scores = loglikelihoodShared(
        this.model,
        shared.map((idx) => ({
          context: (enc[idx[0] as number] as { context: number[] }).context,
          continuations: idx.map((i) => (enc[i] as { continuation: number[] }).continuation),
        })),
      );
      shared.forEach((idx, g) =>
        idx.forEach((i, c) => {
          const s = scores[g]?.[c] as { logprob: number; isGreedy: boolean };
          out[i] = { logprob: s.logprob, isGreedy: s.isGreedy };
        }),
      );
    }
    if (loose.length > 0) {
      const scores = loglikelihoodTokens(
        this.model,
        loose.map((i) => enc[i] as { context: number[]; continuation: number[] }),
        { batchSize: this.batchSize },
      );
      loose.forEach((i, k) => {
        const s = scores[k] as { logprob: number; isGreedy: boolean };
        out[i] = { logprob: s.logprob, isGreedy: s.isGreedy };
      });
    }
    return out;
  }

  /** One row per context (its last max_length tokens), the continuations' tokens read at the last position. */
  private scoreSingleToken(
    groups: { context: number[]; tokens: number[]; idx: number[] }[],
    out: LoglikelihoodResult[],
  ): void {
    const order = groups
      .map((g, i) => ({ g, i, len: Math.min(g.context.length, this.maxLength) }))
      .sort((a, b) => b.len - a.len || a.i - b.i);
    for (let s = 0; s < order.length; s += this.batchSize) {
      const chunk = order.slice(s, s + this.batchSize);
      const rows = chunk.map(({ g }) => g.context.slice(-this.maxLength));
      const width = Math.max(...rows.map((r) => r.length));
      const res = torch.scope(() =>
        torch.noGrad(() => {
          const ids = torch.tensor(
            rows.map((r) => [...r, ...new Array<number>(width - r.length).fill(0)]),
            { dtype: "int64" },
          );
          // the padding's mask when a row is padded (hooks deciding per sequence read it)
          const attentionMask = rows.some((r) => r.length < width)
            ? torch.tensor(
                rows.map((r) => Array.from({ length: width }, (_, t) => (t < r.length ? 1 : 0))),
                { dtype: "int64" },
              )
            : null;
          const logits = this.model.forward({ inputIds: ids, attentionMask }).logits; // [B, T, V]
          const last = torch.tensor(
            rows.map((r) => r.length - 1),
            { dtype: "int64" },
          );
          const picked = logits
            .gather(1, last.view(-1, 1, 1).expand(rows.length, 1, logits.size(2)))
            .squeeze(1)
            .to("float32")
            .logSoftmax(-1); // [B, V]
          const argmax = picked.argmax(-1).toNumbers();
          const lps = chunk.map(({ g }, b) =>
            picked
              .select(0, b)
              .indexSelect(0, torch.tensor(g.tokens, { dtype: "int64" }))
              .toNumbers(),
          );
          return { argmax, lps };
        }),
      );
      chunk.forEach(({ g }, b) => {
        g.idx.forEach((i, c) => {
          out[i] = {
            logprob: res.lps[b]?.[c] as number,
            isGreedy: res.argmax[b] === g.tokens[c],
          };
        });
      });
    }
  }

  loglikelihoodRolling(texts: string[]): number[] {
    const prefix = prefixTokenId(this.tok);
    const windows: { text: number; context: number[]; continuation: number[] }[] = [];
    texts.forEach((t, ti) => {
      const ids = this.tok.encode(t, { addSpecialTokens: false });
      for (const [context, continuation] of rollingWindows(ids, prefix, this.maxLength))
        windows.push({ text: ti, context, continuation });
    });
    const scores = loglikelihoodTokens(this.model, windows, { batchSize: this.batchSize });
    const out = texts.map(() => 0);
    windows.forEach((w, k) => (out[w.text] = (out[w.text] as number) + (scores[k]?.logprob as number)));
    return out;
  }

  generateUntil(requests: GenerationRequest[]): string[] {
    const out: string[] = new Array(requests.length);
    const eosText =
      this.tok.eosTokenId !== null
        ? this.tok.decode([this.tok.eosTokenId], { skipSpecialTokens: false })
        : null;
    // group by generation arguments
    const groups = new Map<string, number[]>();
    requests.forEach((r, i) => {
      const { context: _c, ...kw } = r;
      const k = JSON.stringify(kw);
      const g = groups.get(k);
      if (g) g.push(i);
      else groups.set(k, [i]);
    });
    for (const idx of groups.values()) {
      const r0 = requests[idx[0] as number] as GenerationRequest;
      let maxGen = r0.max_gen_toks ?? this.maxGenToks;
      if (maxGen >= this.maxLength) {
        const clamped = Math.floor(this.maxLength / 2);
        this.warnOnce(
          `max_gen_toks ${maxGen} >= the model's maximum length ${this.maxLength}; generating at most ${clamped} tokens after contexts of at most ${this.maxLength - clamped} (lm-evaluation-harness would refuse)`,
        );
        maxGen = clamped;
      }
      const maxCtx = this.maxLength - maxGen;
      const until = [...(r0.until ?? [])];
      const stopRe = r0.stop_regex ? new RegExp(r0.stop_regex) : null;
      if (eosText && !until.includes(eosText)) until.push(eosText);
      const bosText = this.tok.bosTokenId === null ? null : this.tok.idToToken(this.tok.bosTokenId);
      const enc = idx.map((i) => {
        const ctx = (requests[i] as GenerationRequest).context;
        // a prompt that already starts with the BOS text (a chat template's) gets no second one (has_bos_prefix)
        const ids = this.tok.encode(ctx, {
          addSpecialTokens: (r0.add_special_tokens ?? false) && !(bosText && ctx.startsWith(bosText)),
        });
        const cut = ids.length > maxCtx ? ids.slice(-maxCtx) : ids;
        return cut.length > 0 ? cut : [prefixTokenId(this.tok)];
      });
      // families of requests sharing their first characters (a few-shot prompt) run together,
      // longest first within a family (the harness's order)
      const family = (i: number): string => (requests[i] as GenerationRequest).context.slice(0, 256);
      const order = idx
        .map((i, k) => ({ i, k }))
        .sort((a, b) => {
          const fa = family(a.i);
          const fb = family(b.i);
          if (fa !== fb) return fa < fb ? -1 : 1;
          return (enc[b.k] as number[]).length - (enc[a.k] as number[]).length || a.k - b.k;
        });
      let cached: EncodedPrefix | null = null;
      try {
        for (let s = 0; s < order.length; s += this.batchSize) {
          const chunk = order.slice(s, s + this.batchSize);
          const rows = chunk.map(({ k }) => enc[k] as number[]);
          const common = Math.min(commonPrefixLength(rows), Math.min(...rows.map((r) => r.length)) - 1);
          let prefix: EncodedPrefix | undefined;
          if (common >= 16) {
            const ptoks = (rows[0] as number[]).slice(0, common);
            if (
              !cached ||
              cached.tokens.length !== ptoks.length ||
              cached.tokens.some((t, j) => t !== ptoks[j])
            ) {
              cached?.free();
              cached = null;
              cached = encodePrefix(this.model, ptoks);
            }
            prefix = cached;
          }
          const gens = generate(this.model, prefix ? rows.map((r) => r.slice(common)) : rows, {
            maxNewTokens: maxGen,
            doSample: r0.do_sample ?? false,
            temperature: r0.do_sample ? r0.temperature : undefined,
            seed: r0.seed,
            eosTokenId: this.tok.eosTokenId,
            padTokenId: this.tok.padTokenId ?? this.tok.eosTokenId ?? 0,
            stopStrings: until,
            decode: (ids) => this.tok.decode(ids, { skipSpecialTokens: true }),
            ...(stopRe ? { stopWhen: (text: string) => stopRe.test(text) } : {}),
            prefix,
          });
          chunk.forEach(({ i }, b) => (out[i] = gens[b]?.text ?? ""));
        }
      } finally {
        cached?.free();
      }
    }
    return out;
  }
}

/** What a request cache needs to know of a model: its fingerprint and its tokenizer's. */
export function lmFingerprint(model: CausalLM, tok: Tokenizer): string {
  const probe = tok.encode("The quick brown fox: 12,345 ü€ \n\n Answer:", { addSpecialTokens: false });
  return sha256(
    JSON.stringify([modelFingerprint(model), tok.vocabSize, tok.bosTokenId, tok.eosTokenId, probe]),
  ).slice(0, 16);
}

function encodeLogprob(x: number): number | string {
  return Number.isFinite(x) ? x : String(x);
}

function decodeLogprob(x: unknown): number {
  return typeof x === "number" ? x : Number(x);
}

/**
 * An LM whose answers go through a RequestCache: answered requests are read back, the others are sent
 * to the inner LM in chunks, each chunk's answers appended to the cache as soon as it is done (so an
 * interruption loses at most one chunk). `calls` counts requests actually sent to the inner LM.
 */
export class CachingLM implements LM {
  calls = { loglikelihood: 0, loglikelihoodRolling: 0, generateUntil: 0 };
  hits = 0;

  constructor(
    readonly inner: LM,
    readonly cache: RequestCache,
    readonly opts: { chunkSize?: number; progress?: boolean } = {},
  ) {}

  private run<Q, R>(
    type: keyof CachingLM["calls"],
    requests: Q[],
    keyArgs: (q: Q) => unknown,
    // chunk boundaries only where this changes (the choices of one context stay together)
    groupKey: ((q: Q) => string) | null,
    call: (qs: Q[]) => R[],
    enc: (r: R) => unknown,
    dec: (v: unknown) => R,
  ): R[] {
    const out: R[] = new Array(requests.length);
    const keys = requests.map((q) => RequestCache.key(type, keyArgs(q)));
    const todo: number[] = [];
    keys.forEach((k, i) => {
      if (this.cache.has(k)) {
        out[i] = dec(this.cache.get(k));
        this.hits++;
      } else todo.push(i);
    });
    if (todo.length === 0) return out;
    const chunkSize = this.opts.chunkSize ?? 64;
    const progress = new Progress(
      `${type} requests`,
      todo.length,
      (this.opts.progress ?? true) && process.env.EDITEVAL_QUIET !== "1",
    );
    let s = 0;
    while (s < todo.length) {
      let e = Math.min(todo.length, s + chunkSize);
      while (
        groupKey &&
        e < todo.length &&
        groupKey(requests[todo[e] as number] as Q) === groupKey(requests[todo[e - 1] as number] as Q)
      )
        e++;
      const part = todo.slice(s, e);
      const res = call(part.map((i) => requests[i] as Q));
      this.calls[type] += part.length;
      const entries: [string, unknown][] = [];
      part.forEach((i, j) => {
        out[i] = res[j] as R;
        entries.push([keys[i] as string, enc(res[j] as R)]);
      });
      this.cache.add(entries);
      progress.tick(part.length);
      s = e;
    }
    return out;
  }

  loglikelihood(requests: LoglikelihoodRequest[]): LoglikelihoodResult[] {
    return this.run(
      "loglikelihood",
      requests,
      (q) => [q.context, q.continuation],
      (q) => q.context,
      (qs) => this.inner.loglikelihood(qs),
      (r) => [encodeLogprob(r.logprob), r.isGreedy],
      (v) => {
        const [lp, g] = v as [unknown, boolean];
        return { logprob: decodeLogprob(lp), isGreedy: g };
      },
    );
  }

  loglikelihoodRolling(texts: string[]): number[] {
    return this.run(
      "loglikelihoodRolling",
      texts,
      (t) => t,
      null,
      (ts) => this.inner.loglikelihoodRolling(ts),
      encodeLogprob,
      decodeLogprob,
    );
  }

  countTokens(text: string): number {
    if (!this.inner.countTokens) throw new Error("countTokens: the model side cannot count tokens");
    return this.inner.countTokens(text);
  }

  get maxLength(): number | undefined {
    return this.inner.maxLength;
  }

  applyChatTemplate(
    messages: ChatMessage[],
    opts: { addGenerationPrompt: boolean; chatTemplate?: string },
  ): string {
    if (!this.inner.applyChatTemplate)
      throw new Error("applyChatTemplate: the model side has no chat template");
    return this.inner.applyChatTemplate(messages, opts);
  }

  chatTemplate(name?: string): string {
    if (!this.inner.chatTemplate) throw new Error("chatTemplate: the model side has no chat template");
    return this.inner.chatTemplate(name);
  }

  generateUntil(requests: GenerationRequest[]): string[] {
    return this.run(
      "generateUntil",
      requests,
      (q) => q,
      null,
      (qs) => this.inner.generateUntil(qs),
      (r) => r,
      (v) => String(v),
    );
  }
}

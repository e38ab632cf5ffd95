/**
 * Generation: greedy and sampling (temperature, top-k, top-p, seeded), batches of prompts of different
 * lengths (left padding, positions cumsum(mask) - 1 as transformers' generate), a KV cache, EOS and
 * stop strings. Logits processors follow transformers' order: temperature, top-k, top-p.
 */
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { positionsFromMask, type CausalLM } from "./model.js";
import { KVCache } from "./layers.js";

export interface GenerateOptions {
  maxNewTokens: number;
  /** generate at least this many tokens before EOS can stop a row (default 0) */
  minNewTokens?: number;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  /** seed of the sampling generator (default 0), so sampling is reproducible */
  seed?: number;
  /** stop a row when it generates one of these ids; null: never (default: the config's eos) */
  eosTokenId?: number | number[] | null;
  /** id used to pad prompts on the left (default: the config's pad, else eos, else 0) */
  padTokenId?: number;
  /** stop a row once its decoded continuation contains one of these strings (needs decode) */
  stopStrings?: string[];
  decode?: (ids: number[]) => string;
  /** stop a row once this holds for its decoded continuation (needs decode); the text is not cut */
  stopWhen?: (text: string) => boolean;
  /** use the KV cache (default true); false recomputes the whole sequence at each step */
  useCache?: boolean;
  /**
   * A prefix shared by every prompt (e.g. the few-shot examples of a task), already encoded with
   * encodePrefix(): the prompts are then the parts after it. The prefix's keys and values are computed
   * once and shared by every row (one copy, read by attention for all rows at once: KVCache.sharing)
   * instead of re-encoding the prefix per prompt; the result is the same as generating from prefix +
   * prompt (padding sits between prefix and prompt, masked out, and positions continue from the prefix).
   */
  prefix?: EncodedPrefix;
}

/** A token prefix with its KV cache (batch 1), reusable across generate() calls. Free it when done. */
export interface EncodedPrefix {
  tokens: number[];
  cache: KVCache;
  free(): void;
}

/** Encodes a shared prefix once (see GenerateOptions.prefix). */
export function encodePrefix(model: CausalLM, tokens: number[]): EncodedPrefix {
  if (tokens.length === 0) throw new Error("encodePrefix: empty prefix");
  const cache = model.newCache();
  torch.scope(() =>
    torch.noGrad(() =>
      model.forward({ inputIds: torch.tensor([tokens], { dtype: "int64" }), cache, lastOnly: true }),
    ),
  );
  return { tokens, cache, free: () => cache.free() };
}

export interface Generation {
  /** the new tokens (EOS included when it stopped the row; nothing after it) */
  tokens: number[];
  /** decoded continuation cut before the first stop string, when decode is given */
  text?: string;
  finishReason: "eos" | "stop_string" | "length";
}

function eosSet(model: CausalLM, opt: number | number[] | null | undefined): Set<number> {
  const v = opt === undefined ? model.config.eosTokenId : opt;
  if (v === null || v === undefined) return new Set();
  return new Set(Array.isArray(v) ? v : [v]);
}

/** Left-pads prompts: ids [B, T] and attention mask [B, T]. */
export function leftPad(prompts: number[][], padId: number): { ids: Tensor; mask: Tensor; width: number } {
  const width = Math.max(...prompts.map((p) => p.length));
  const ids: number[][] = [];
  const mask: number[][] = [];
  for (const p of prompts) {
    const pad = width - p.length;
    ids.push([...new Array<number>(pad).fill(padId), ...p]);
    mask.push([...new Array<number>(pad).fill(0), ...new Array<number>(p.length).fill(1)]);
  }
  return { ids: torch.tensor(ids, { dtype: "int64" }), mask: torch.tensor(mask, { dtype: "int64" }), width };
}

/** Applies temperature, top-k and top-p to logits [B, V] (transformers' warpers) and returns new logits. */
export function warpLogits(
  logits: Tensor,
  o: { temperature?: number; topK?: number; topP?: number },
): Tensor {
  let s = logits;
  if (o.temperature !== undefined && o.temperature !== 1) {
    if (!(o.temperature > 0)) throw new Error(`temperature must be > 0, got ${o.temperature}`);
    s = s.div(o.temperature);
  }
  if (o.topK !== undefined && o.topK > 0) {
    const k = Math.min(o.topK, s.size(-1));
    const kth = s.topk(k, -1).values.narrow(-1, k - 1, 1);
    s = s.maskedFill(s.lt(kth), -Infinity);
  }
  if (o.topP !== undefined && o.topP < 1) {
    if (!(o.topP > 0)) throw new Error(`top_p must be in (0, 1], got ${o.topP}`);
    const { values: sorted, indices } = s.sort(-1, false);
    const cum = sorted.softmax(-1).cumsum(-1);
    const removeSorted = cum.le(1 - o.topP);
    removeSorted.indexPut_(["...", -1], false); // keep at least one token
    const remove = removeSorted.scatter(-1, indices, removeSorted);
    s = s.maskedFill(remove, -Infinity);
  }
  return s;
}

/**
 * Whether attention can read a shared prefix in place (layers.ts scaledDotProductAttention): every
 * family passes the cache's keys to it as they are, except GPT-J in half precision (cast to float32
 * first), which gets a per-row copy of the prefix instead.
 */
function shareablePrefix(model: CausalLM): boolean {
  const dt = model.dtype;
  return model.config.modelType !== "gptj" || dt === "float32" || dt === "float64";
}

/** ForwardInputs.pastIds of a cached step: the shared prefix's ids ([1, P] when alone), then the ids fed. */
function pastIdsOf(prefixIds: Tensor | null, fed: Tensor | null): Tensor | null {
  if (!fed) return prefixIds;
  if (!prefixIds) return fed;
  return torch.cat([prefixIds.expand(fed.size(0), prefixIds.size(1)), fed], 1);
}

/** Generates continuations for token-id prompts. Rows are independent; finished rows leave the batch. */
export function generate(model: CausalLM, prompts: number[][], opts: GenerateOptions): Generation[] {
  if (prompts.length === 0) return [];
  if (prompts.some((p) => p.length === 0)) throw new Error("generate: a prompt is empty (add a BOS token)");
  const eos = eosSet(model, opts.eosTokenId);
  const pad = opts.padTokenId ?? model.config.padTokenId ?? [...eos][0] ?? 0;
  const useCache = opts.useCache ?? true;
  const gen = opts.doSample ? new torch.Generator(opts.seed ?? 0) : null;
  if ((opts.stopStrings?.length || opts.stopWhen) && !opts.decode)
    throw new Error("generate: stopStrings and stopWhen need a decode function");

  const results: Generation[] = prompts.map(() => ({ tokens: [], finishReason: "length" }));
  let active = prompts.map((_, i) => i); // original row index of each batch row
  const prefix = opts.prefix ?? null;
  if (prefix && !useCache) throw new Error("generate: a shared prefix needs the KV cache");
  const state = torch.scope(() => {
    const { ids, mask } = leftPad(prompts, pad);
    // with a prefix the mask covers prefix + (left-padded) prompt
    const m = prefix
      ? torch.cat([torch.ones([prompts.length, prefix.tokens.length], { dtype: "int64" }), mask], 1)
      : mask;
    return { ids: ids.keep(), mask: m.keep() };
  });
  let allIds = state.ids; // [B, T] all tokens so far (only needed without cache)
  let mask = state.mask;
  let cache: KVCache | null = null;
  if (prefix) {
    if (shareablePrefix(model)) cache = KVCache.sharing(prefix.cache);
    else {
      cache = prefix.cache.clone();
      cache.selectRows(prompts.map(() => 0));
    }
  } else if (useCache) cache = model.newCache();
  let nextInput = allIds;
  // with the cache: the ids already fed, for ForwardInputs.pastIds (the prefix's go in front of them)
  const prefixIds = prefix && useCache ? torch.tensor([prefix.tokens], { dtype: "int64" }).keep() : null;
  let fed: Tensor | null = null;

  try {
    for (let step = 0; step < opts.maxNewTokens && active.length > 0; step++) {
      const next = torch.scope(() => {
        const out = torch.noGrad(() =>
          model.forward({
            inputIds: useCache ? nextInput : allIds,
            attentionMask: mask,
            positionIds: positionsFromMask(
              mask,
              mask.size(1) - (useCache ? nextInput : allIds).size(1),
              (useCache ? nextInput : allIds).size(1),
            ),
            cache,
            lastOnly: true,
            pastIds: useCache ? pastIdsOf(prefixIds, fed) : null,
          }),
        );
        let logits = out.logits.select(1, 0).to("float32"); // [B, V]
        if (step < (opts.minNewTokens ?? 0) && eos.size > 0) {
          const eosIdx = torch.tensor([...eos], { dtype: "int64" });
          logits = logits.indexPut_([":", eosIdx], -Infinity);
        }
        if (!opts.doSample) return logits.argmax(-1).toNumbers();
        const warped = warpLogits(logits, opts);
        return torch.multinomial(warped.softmax(-1), 1, { generator: gen as torch.Generator }).toNumbers();
      });

      const keepRows: number[] = [];
      next.forEach((tok, b) => {
        const row = active[b] as number;
        const r = results[row] as Generation;
        r.tokens.push(tok);
        if (eos.has(tok)) {
          r.finishReason = "eos";
          return;
        }
        if ((opts.stopStrings?.length || opts.stopWhen) && opts.decode) {
          const text = opts.decode(r.tokens);
          if (
            opts.stopStrings?.some((s) => s.length > 0 && text.includes(s)) ||
            (opts.stopWhen && opts.stopWhen(text))
          ) {
            r.finishReason = "stop_string";
            return;
          }
        }
        keepRows.push(b);
      });

      const prevIds = allIds;
      const prevMask = mask;
      const prevInput = nextInput;
      const grown = torch.scope(() => {
        const nt = torch.tensor(
          next.map((t) => [t]),
          { dtype: "int64" },
        );
        let m = torch.cat([mask, torch.ones([mask.size(0), 1], { dtype: "int64" })], 1);
        let ids = useCache ? prevIds : torch.cat([allIds, nt], 1);
        let ni = nt;
        if (keepRows.length < active.length) {
          const sel = torch.tensor(keepRows, { dtype: "int64" });
          m = m.indexSelect(0, sel);
          ni = ni.indexSelect(0, sel);
          if (!useCache) ids = ids.indexSelect(0, sel);
        }
        let f = useCache ? (fed ? torch.cat([fed, prevInput], 1) : prevInput.clone()) : null;
        if (f && keepRows.length < active.length)
          f = f.indexSelect(0, torch.tensor(keepRows, { dtype: "int64" }));
        return { m: m.keep(), ids: useCache ? null : ids.keep(), ni: ni.keep(), fed: f?.keep() ?? null };
      });
      fed?.free();
      fed = grown.fed;
      if (keepRows.length < active.length) cache?.selectRows(keepRows);
      mask = grown.m;
      nextInput = grown.ni;
      if (grown.ids) allIds = grown.ids;
      prevMask.free();
      if (prevInput !== prevIds) prevInput.free();
      if (grown.ids) prevIds.free();
      active = keepRows.map((b) => active[b] as number);
    }
  } finally {
    cache?.free();
    for (const t of new Set([allIds, mask, nextInput, state.ids, state.mask])) t.free();
    fed?.free();
    prefixIds?.free();
  }

  if (opts.decode) {
    for (const r of results) {
      let text = opts.decode(r.tokens);
      for (const s of opts.stopStrings ?? []) {
        if (s.length === 0) continue;
        const i = text.indexOf(s);
        if (i >= 0) text = text.slice(0, i);
      }
      r.text = text;
    }
  }
  return results;
}

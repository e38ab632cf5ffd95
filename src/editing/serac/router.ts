/**
 * The router: a hook on a model's logits module that answers some positions of a forward pass with
 * another model (or the same one) reading a text before the input. SERAC (./index.ts) routes a position
 * to its counterfactual model with an edit in front when the scope classifier puts the sequence so far
 * in an edit's scope; IKE (../ike/) answers every position with the base model reading demonstrations
 * and the retrieved new fact in front. Neither changes a weight.
 *
 * What the edited system computes, for a sequence x_1..x_n (its real tokens: padding removed):
 *   logits_t(x) = route_t ? M(input(context, x))[offset + t] : base(x)_t,
 * where route_t = decide(x_1..x_t) is made on the sequence up to t only. So the system is a causal
 * LM: a position's logits depend on the tokens before it and not on the batch, the padding, the KV
 * cache or the tokens after it, and the harness's paths (right-padded scoring without a mask, left-padded
 * teacher forcing, shared-context scoring with a cache, batched cached generation with a shared prefix)
 * all see the same system. A position that is not routed gets the base model's logits of that very
 * forward pass, bit for bit.
 *
 * The routed input joins the context text and the input's first real token as text, tokenised together
 * (so "... Prompt: " and "The" become "... Prompt:" " The" as the references' string concatenation
 * tokenises them), followed by the input's remaining tokens as they are: position t of the input lands
 * at offset + t. A leading BOS of the input is not carried over (the routed input starts with the
 * tokenizer's own special tokens), and the position of a lone BOS is never routed. When the routed input
 * is longer than the answering model's window, its first tokens are dropped (lm-evaluation-harness's
 * left truncation); a position that falls out of the window keeps the base model's logits.
 *
 * How it sees whole sequences: the hook reads the pass's inputs from `CausalLM.activeForwards` (ids,
 * attention mask, cache). A pass that continues a KV cache needs the ids of the cached positions:
 * `ForwardInputs.pastIds` (generate() passes them), else what this hook saw go through that cache
 * (one row, broadcast to every row, as scoring.ts's shared-context scoring repeats it). The routed
 * computation is a full forward pass of the routed input per (row, route), without a cache: correct and
 * slower (a generation step recomputes the routed rows' whole input). Routed logits carry no gradient.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM, ForwardInputs, Hook } from "../../models/model.js";
import { LOGITS_MODULES } from "../../models/model.js";
import type { KVCache } from "../../models/layers.js";
import { loadTokenizer, type Tokenizer } from "../../models/tokenizer/index.js";

/** A model answering positions with a text in front of the input. */
export interface Route {
  /** one key per distinct (model, context) */
  key: string;
  model: CausalLM;
  /** the text before the input: SERAC's edit, IKE's demonstrations and new fact */
  context: string;
}

export interface Router {
  /** the tokenizer of the hooked model (the routes' models share its vocabulary) */
  tok: Tokenizer;
  /**
   * The route of each asked position: rows[r] is a sequence's real tokens, asked[r] the indices into
   * rows[r] of the positions whose next-token logits the pass returns; null keeps the hooked model's.
   * Called with the router's hooks disabled, so it may run the hooked model itself.
   */
  decide(rows: number[][], asked: number[][]): (Route | null)[][];
}

/** The module whose output is the logits (the router's hook point). */
export function logitsModule(model: CausalLM): string {
  const names = model.moduleNames();
  for (const m of LOGITS_MODULES) if (names.has(m)) return m;
  throw new Error(`${model.config.modelType} model: no logits module (lm_head or embed_out) to hook`);
}

const TOKENIZERS = new WeakMap<CausalLM, Tokenizer>();

/** Remembers a model's tokenizer for its adaptors' hooks (an edit method does it when it edits). */
export function rememberTokenizer(model: CausalLM, tok: Tokenizer): void {
  TOKENIZERS.set(model, tok);
}

/** The tokenizer remembered for a model, else the one in the directory it was loaded from (a replay). */
export function tokenizerOf(model: CausalLM): Tokenizer {
  let tok = TOKENIZERS.get(model);
  if (!tok) {
    if (!model.source)
      throw new Error("router: no tokenizer is known for this model (it was not loaded from a directory)");
    tok = loadTokenizer(model.source);
    TOKENIZERS.set(model, tok);
  }
  return tok;
}

/** Index of the first token a routed input carries over (1 after a leading BOS, else 0). */
export function firstRoutable(tok: Tokenizer, row: readonly number[]): number {
  return row.length > 0 && tok.bosTokenId !== null && row[0] === tok.bosTokenId ? 1 : 0;
}

/**
 * The input a route's model reads for a row: encode(context + text of the row's first carried token)
 * (with the tokenizer's special tokens) followed by the row's later tokens; `offset` + t is where
 * position t (t >= first) of the row lands. Cut on the left to `maxLen` tokens (offset shifts with it).
 */
export function routedInput(
  tok: Tokenizer,
  context: string,
  row: readonly number[],
  maxLen = Infinity,
): { ids: number[]; offset: number; first: number } {
  const first = firstRoutable(tok, row);
  if (first >= row.length) throw new Error("router: a row without a token to route");
  const head = tok.encode(context + tok.decode([row[first] as number]), { addSpecialTokens: true });
  let ids = [...head, ...row.slice(first + 1)];
  let offset = head.length - 1 - first;
  if (ids.length > maxLen) {
    const drop = ids.length - maxLen;
    ids = ids.slice(drop);
    offset -= drop;
  }
  return { ids, offset, first };
}

/** A tensor's rows as number arrays ([B, T] -> B arrays of T). */
function rowsOf(t: Tensor): number[][] {
  const [B, T] = t.shape as [number, number];
  const flat = t.toNumbers();
  return Array.from({ length: B }, (_, b) => flat.slice(b * T, (b + 1) * T));
}

function windowOf(model: CausalLM): number {
  return model.config.maxPositions > 0 ? model.config.maxPositions : Infinity;
}

/** The router's hook on the logits module (install it with `model.addHook(logitsModule(model), ...)`). */
export function routerHooks(model: CausalLM, router: Router): { where: "output"; hook: Hook }[] {
  let busy = false;
  const seen = new WeakMap<KVCache, number[][]>();
  const hook: Hook = (logits) => {
    if (busy) return;
    const inputs = model.activeForwards[model.activeForwards.length - 1];
    if (!inputs) return;
    busy = true;
    try {
      return torch.scope(() => routeLogits(router, inputs, logits, seen));
    } finally {
      busy = false;
    }
  };
  return [{ where: "output", hook }];
}

/** The ids of every position of the pass, past (cached) ones first, per row. */
function fullRows(inputs: ForwardInputs, seen: WeakMap<KVCache, number[][]>): number[][] {
  const fresh = rowsOf(inputs.inputIds);
  const B = fresh.length;
  const T = (fresh[0] as number[]).length;
  const cache = inputs.cache ?? null;
  const width = inputs.attentionMask ? (inputs.attentionMask.shape[1] as number) : null;
  const pastLen = width !== null ? width - T : cache ? cache.length - T : 0;
  let past: number[][] = fresh.map(() => []);
  if (pastLen > 0) {
    let known: number[][] | undefined;
    if (inputs.pastIds) known = rowsOf(inputs.pastIds);
    else if (cache) known = seen.get(cache);
    if (!known)
      throw new Error(
        `router (SERAC/IKE): this forward pass continues ${pastLen} cached positions whose token ids it was not given ` +
          "(pass ForwardInputs.pastIds, as generate() does)",
      );
    if (known.length === 1 && B > 1) known = fresh.map(() => known?.[0] as number[]);
    if (known.length !== B || known.some((r) => r.length !== pastLen))
      throw new Error(
        `router (SERAC/IKE): the ids of the cached positions are [${known.length}, ${known[0]?.length}], the pass needs [${B}, ${pastLen}]`,
      );
    past = known;
  }
  const full = fresh.map((r, b) => [...(past[b] as number[]), ...r]);
  if (cache) seen.set(cache, full);
  return full;
}

function routeLogits(
  router: Router,
  inputs: ForwardInputs,
  logits: Tensor,
  seen: WeakMap<KVCache, number[][]>,
): Tensor | undefined {
  const full = fullRows(inputs, seen);
  const B = full.length;
  const T = inputs.inputIds.shape[1] as number;
  const width = (full[0] as number[]).length;
  const mask = inputs.attentionMask ? rowsOf(inputs.attentionMask) : null;
  const Tout = logits.shape[1] as number; // T, or 1 with lastOnly
  const V = logits.shape[2] as number;

  // real tokens of each row, and the real index of each output position (-1: padding)
  const real: number[][] = [];
  const asked: number[][] = [];
  const askedAt: number[][] = []; // output position k of each asked index
  for (let b = 0; b < B; b++) {
    const row: number[] = [];
    const realIdx: number[] = [];
    (full[b] as number[]).forEach((id, j) => {
      if (mask && (mask[b] as number[])[j] === 0) realIdx.push(-1);
      else {
        realIdx.push(row.length);
        row.push(id);
      }
    });
    real.push(row);
    const first = firstRoutable(router.tok, row);
    const a: number[] = [];
    const at: number[] = [];
    for (let k = 0; k < Tout; k++) {
      const col = width - T + (Tout === T ? k : T - 1);
      const r = realIdx[col] as number;
      if (r >= first) {
        a.push(r);
        at.push(k);
      }
    }
    asked.push(a);
    askedAt.push(at);
  }
  if (asked.every((a) => a.length === 0)) return undefined;
  const routes = torch.noGrad(() => router.decide(real, asked));

  // group the routed positions by (row, route)
  const groups = new Map<string, { b: number; route: Route; items: { r: number; k: number }[] }>();
  routes.forEach((rs, b) =>
    rs.forEach((route, i) => {
      if (!route) return;
      const key = `${b}|${route.key}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { b, route, items: [] }));
      g.items.push({ r: (asked[b] as number[])[i] as number, k: (askedAt[b] as number[])[i] as number });
    }),
  );
  if (groups.size === 0) return undefined;

  const selected = new Array<number>(B * Tout).fill(0);
  const alt = torch.noGrad(() => {
    const out = torch.zeros([B, Tout, V], { dtype: logits.dtype, device: logits.device });
    for (const g of groups.values()) {
      const row = real[g.b] as number[];
      const { ids, offset } = routedInput(router.tok, g.route.context, row, windowOf(g.route.model));
      const items = g.items.filter(({ r }) => offset + r >= 0);
      if (items.length === 0) continue;
      torch.scope(() => {
        const lg = g.route.model.forward({ inputIds: torch.tensor([ids], { dtype: "int64" }) }).logits;
        if ((lg.shape[2] as number) !== V)
          throw new Error(
            `router: the routed model has ${lg.shape[2]} logits per position, the edited model ${V} (they must share a vocabulary)`,
          );
        const src = lg.select(0, 0);
        for (const { r, k } of items) {
          out
            .select(0, g.b)
            .select(0, k)
            .copy_(src.select(0, offset + r));
          selected[g.b * Tout + k] = 1;
        }
      });
    }
    return out;
  });
  if (!selected.includes(1)) return undefined;
  const where = torch.tensor(selected, { dtype: "int64" }).view(B, Tout, 1).eq(1);
  return torch.where(where, alt, logits);
}

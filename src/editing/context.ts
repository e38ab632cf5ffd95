/**
 * Context templates: short texts the model generates itself, each ending in ". {}", prepended to the
 * edit prompt so the edited key and value generalise beyond the exact prompt (ROME's
 * get_context_templates). Templates are ["{}"] followed, for each [length, count] pair, by `count`
 * top-k (k = 5) samples of `length` tokens, with "{" and "}" removed. Sampling is seeded, so a run is
 * reproducible; hparams may also give the templates explicitly (`context_templates`), which makes
 * an edit comparable token for token with a reference run that used the same templates.
 */
import type { CausalLM } from "../models/model.js";
import { generate } from "../models/generate.js";
import type { WordTokenizer } from "./repr.js";

export function generateContextTemplates(
  model: CausalLM,
  tok: WordTokenizer,
  lengthParams: number[][],
  opts: { seed?: number; prefixes?: string[] } = {},
): string[] {
  const out = ["{}"];
  const bos = tok.bosTokenId ?? tok.eosTokenId;
  lengthParams.forEach(([length, count], k) => {
    if (length === undefined || count === undefined)
      throw new Error("context_template_length_params: expected [[length, count], ...]");
    // prompts: the given prefixes (EasyEdit) or the BOS/EOS token alone (ROME's "<|endoftext|>")
    const prefixes = opts.prefixes ?? [null];
    const perPrefix = opts.prefixes ? Math.floor(count / prefixes.length) : count;
    const prompts: number[][] = [];
    for (const p of prefixes)
      for (let i = 0; i < perPrefix; i++)
        prompts.push(p === null ? [bos ?? 0] : tok.encode(p, { addSpecialTokens: true }));
    const gens = generate(model, prompts, {
      maxNewTokens: Math.max(1, length - (prompts[0]?.length ?? 1)),
      doSample: true,
      topK: 5,
      seed: (opts.seed ?? 0) + k,
      eosTokenId: null,
    });
    gens.forEach((g, i) => {
      const prefixText = prefixes[Math.floor(i / perPrefix)] ?? "";
      const text = (prefixText ?? "") + tok.decode(g.tokens, { skipSpecialTokens: true });
      const clean = text.normalize("NFKD").replaceAll("\n\n", " ").replaceAll("{", "").replaceAll("}", "");
      out.push(clean + ". {}");
    });
  });
  return out;
}

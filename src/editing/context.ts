/**
 * Context templates: short texts the model generates itself, each ending in ". {}", prepended to the
 * edit prompt so the edited key and value generalise beyond the exact prompt (ROME's
 * get_context_templates, in EasyEdit's form): ["{}"] followed, for each [length, count] pair, by count/5
 * top-k (k = 5) samples from each of the prompts "The", "Therefore", "Because", "I", "You", `length`
 * tokens long in all (prompt included), decoded without special tokens, NFKD-normalised, "\n\n" turned
 * into " ", "{" and "}" removed, then ". {}" appended. Sampling is seeded (kmeng01/rome and EasyEdit
 * leave it to the global RNG), so a run is reproducible; hparams may also give the templates
 * explicitly (`context_templates`), which makes an edit comparable token for token with a reference run
 * that used the same templates (both references print theirs).
 */
import type { CausalLM } from "../models/model.js";
import { generate } from "../models/generate.js";
import type { WordTokenizer } from "./repr.js";

/** EasyEdit's generation prompts for context templates. */
export const EASYEDIT_PREFIXES = ["The", "Therefore", "Because", "I", "You"] as const;

export function generateContextTemplates(
  model: CausalLM,
  tok: WordTokenizer,
  lengthParams: number[][],
  opts: { seed?: number; prefixes?: string[]; braces?: "remove" | "space" } = {},
): string[] {
  const out = ["{}"];
  const bos = tok.bosTokenId ?? tok.eosTokenId;
  lengthParams.forEach(([length, count], k) => {
    if (length === undefined || count === undefined)
      throw new Error("context_template_length_params: expected [[length, count], ...]");
    // prompts: the given prefixes (EasyEdit) or the BOS/EOS token alone (ROME's "<|endoftext|>")
    const prefixes: (string | null)[] = opts.prefixes ?? [...EASYEDIT_PREFIXES];
    // n_gen // len(prompts) samples per prompt (EasyEdit: n_gen // 5; ROME's single prompt: n_gen)
    const perPrefix = Math.floor(count / prefixes.length);
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
      // the whole row, prompt included, as generate_fast decodes it
      const text = tok.decode([...(prompts[i] as number[]), ...g.tokens], { skipSpecialTokens: true });
      const b = opts.braces === "space" ? " " : "";
      const clean = text.normalize("NFKD").replaceAll("\n\n", " ").replaceAll("{", b).replaceAll("}", b);
      out.push(clean + ". {}");
    });
  });
  return out;
}

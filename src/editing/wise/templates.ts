/**
 * WISE's context templates (EasyEdit easyeditor/models/wise/utils.py get_context_templates, called with
 * length_params [[5, 5], [10, 5]]): for each [length, n_gen], the prompts "I", "You", "Because", "Yes",
 * "Q: " continued greedily (num_beams = num_return_sequences = n_gen // 5 = 1) by `length` new tokens,
 * decoded without special tokens, prompt included; the templates are "{}" followed by each text + " {}".
 * EasyEdit computes them once per process on the model as first edited (a global cache); here once per
 * editor session (the editor's cache), on the model without its WISE adaptor.
 */
import type { CausalLM } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import { generate } from "../../models/generate.js";

export const WISE_TEMPLATE_PROMPTS = ["I", "You", "Because", "Yes", "Q: "] as const;
export const WISE_TEMPLATE_LENGTHS: [number, number][] = [
  [5, 5],
  [10, 5],
];

export function wiseContextTemplates(model: CausalLM, tok: Tokenizer): string[] {
  const out = ["{}"];
  for (const [length, nGen] of WISE_TEMPLATE_LENGTHS) {
    const per = Math.floor(nGen / WISE_TEMPLATE_PROMPTS.length);
    const prompts: number[][] = [];
    for (const p of WISE_TEMPLATE_PROMPTS)
      for (let i = 0; i < per; i++) prompts.push(tok.encode(p, { addSpecialTokens: true }));
    const gens = generate(model, prompts, { maxNewTokens: length, doSample: false });
    gens.forEach((g, i) => {
      const text = tok.decode([...(prompts[i] as number[]), ...g.tokens], { skipSpecialTokens: true });
      out.push(`${text} {}`);
    });
  }
  return out;
}

/** A template with its (last) "{}" replaced by x (EasyEdit: templ.format(x)). */
export function fillTemplate(template: string, x: string): string {
  const i = template.lastIndexOf("{}");
  if (i < 0) throw new Error(`WISE context template ${JSON.stringify(template)} has no "{}"`);
  return template.slice(0, i) + x + template.slice(i + 2);
}

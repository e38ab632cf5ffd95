/**
 * Token positions and representations at a word inside templated prompts, as ROME's repr_tools computes
 * them: the template is split at "{}" into prefix and suffix; a non-empty prefix loses its trailing
 * space and the word gains a leading one (" Eiffel Tower"); prefix, word and suffix are tokenised
 * separately, and the word's last token sits at len(prefix) + len(word) - 1. Prompts run right-padded,
 * so these positions hold in the batch.
 */
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { CausalLM } from "../models/model.js";

export interface WordTokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
}

export type Subtoken = "last" | "first" | "first_after_last";

/**
 * Index of the word's `subtoken` in each template filled with the word. Tokenisation follows the
 * tokenizer's own special-token rule (BOS counted in the prefix when the tokenizer adds one, as a
 * prompt tokenised whole would have it).
 */
export function wordTokenIndices(
  tok: WordTokenizer,
  templates: string[],
  words: string[],
  subtoken: Subtoken,
): number[] {
  if (templates.length !== words.length) throw new Error("wordTokenIndices: one word per template");
  return templates.map((tmpl, i) => {
    const at = tmpl.indexOf("{}");
    if (at < 0) throw new Error(`template ${JSON.stringify(tmpl)} has no "{}" for the subject`);
    let prefix = tmpl.slice(0, at);
    const suffix = tmpl.slice(at + 2);
    let word = words[i] as string;
    if (prefix.length > 0) {
      if (!prefix.endsWith(" "))
        throw new Error(
          `template ${JSON.stringify(tmpl)}: the text before "{}" must end with a space (ROME's convention)`,
        );
      prefix = prefix.slice(0, -1);
      word = ` ${word.trim()}`;
    }
    // the whole prompt's special tokens (BOS) belong to the prefix
    const special = tok.encode("", { addSpecialTokens: true }).length;
    const prefixLen =
      (prefix.length > 0 ? tok.encode(prefix, { addSpecialTokens: false }).length : 0) + special;
    const wordLen = tok.encode(word, { addSpecialTokens: false }).length;
    const suffixLen = suffix.length > 0 ? tok.encode(suffix, { addSpecialTokens: false }).length : 0;
    if (subtoken === "last") return prefixLen + wordLen - 1;
    if (subtoken === "first_after_last") return prefixLen + wordLen - (suffixLen === 0 ? 1 : 0);
    return prefixLen;
  });
}

/** The position used by a fact_token strategy ("subject_last", "subject_first", "last") for a prompt. */
export function lookupIndex(tok: WordTokenizer, prompt: string, subject: string, factToken: string): number {
  if (factToken === "last") {
    return tok.encode(prompt.replace("{}", subject), { addSpecialTokens: true }).length - 1;
  }
  if (factToken.startsWith("subject_")) {
    return wordTokenIndices(
      tok,
      [prompt],
      [subject],
      factToken.slice("subject_".length) as Subtoken,
    )[0] as number;
  }
  throw new Error(
    `fact_token '${factToken}' is not supported (subject_last, subject_first, subject_first_after_last, last)`,
  );
}

/** Right-padded token ids and attention mask for texts (pad: the tokenizer's pad, else EOS, else 0). */
export function rightPadded(
  tok: WordTokenizer,
  texts: string[],
): { ids: Tensor; mask: Tensor; lengths: number[] } {
  const enc = texts.map((t) => tok.encode(t, { addSpecialTokens: true }));
  const { ids, mask } = rightPadIds(enc, tok.padTokenId ?? tok.eosTokenId ?? 0);
  return { ids, mask, lengths: enc.map((e) => e.length) };
}

/** Token id rows right-padded with `pad` to the longest: ids and attention mask [B, width] (int64). */
export function rightPadIds(seqs: number[][], pad: number): { ids: Tensor; mask: Tensor; width: number } {
  const width = Math.max(...seqs.map((s) => s.length));
  const fill = (n: number, v: number) => new Array<number>(n).fill(v);
  return {
    ids: torch.tensor(
      seqs.map((s) => [...s, ...fill(width - s.length, pad)]),
      { dtype: "int64" },
    ),
    mask: torch.tensor(
      seqs.map((s) => [...fill(s.length, 1), ...fill(width - s.length, 0)]),
      { dtype: "int64" },
    ),
    width,
  };
}

/**
 * The input and/or output of a module at given token positions, one row per prompt ([n, d]), computed
 * in one right-padded batch without gradients.
 */
export function reprsAtPositions(
  model: CausalLM,
  tok: WordTokenizer,
  module: string,
  prompts: string[],
  positions: number[],
): { input: Tensor; output: Tensor } {
  return torch.scope(() =>
    torch.noGrad(() => {
      const { ids, mask } = rightPadded(tok, prompts);
      const rows = torch.arange(prompts.length);
      const pos = torch.tensor(positions, { dtype: "int64" });
      let input: Tensor | null = null;
      let output: Tensor | null = null;
      model.withHooks(
        [
          { module, where: "input", hook: (x) => void (input = x.index(rows, pos).keep()) },
          { module, where: "output", hook: (y) => void (output = y.index(rows, pos).keep()) },
        ],
        () => model.forward({ inputIds: ids, attentionMask: mask, lastOnly: true }),
      );
      return { input: (input as unknown as Tensor).attach(), output: (output as unknown as Tensor).attach() };
    }),
  );
}

/**
 * Post-processing of a single sequence: where special tokens (BOS, EOS, CLS/SEP) go around the
 * encoded text. Only the single-sequence template is used (EditEval never encodes pairs).
 */
import type { PostProcessorJson } from "./schema.js";

/** Special-token ids before and after the encoded text. */
export interface SpecialTemplate {
  prefix: number[];
  suffix: number[];
}

/** The template with no special tokens. */
export const EMPTY_TEMPLATE: SpecialTemplate = { prefix: [], suffix: [] };

/**
 * The special tokens a `post_processor` adds around a single sequence.
 * `ByteLevel` adds none; `Sequence` nests its processors (the later wraps the earlier);
 * `TemplateProcessing` uses its `single` template; `Roberta`/`BertProcessing` add CLS … SEP.
 */
export function templateOf(pp: PostProcessorJson | null): SpecialTemplate {
  if (pp === null) return EMPTY_TEMPLATE;
  switch (pp.type) {
    case "ByteLevel":
      return EMPTY_TEMPLATE;
    case "Sequence":
      return pp.processors.reduce<SpecialTemplate>((inner, p) => {
        const outer = templateOf(p);
        return { prefix: [...outer.prefix, ...inner.prefix], suffix: [...inner.suffix, ...outer.suffix] };
      }, EMPTY_TEMPLATE);
    case "RobertaProcessing":
    case "BertProcessing":
      return { prefix: [pp.cls[1]], suffix: [pp.sep[1]] };
    case "TemplateProcessing": {
      const prefix: number[] = [];
      const suffix: number[] = [];
      let seen = false;
      for (const piece of pp.single) {
        if ("Sequence" in piece) {
          seen = true;
          continue;
        }
        // validated: every SpecialToken of `single` is in special_tokens
        const ids = pp.special_tokens[piece.SpecialToken.id]?.ids ?? [];
        (seen ? suffix : prefix).push(...ids);
      }
      return { prefix, suffix };
    }
  }
}

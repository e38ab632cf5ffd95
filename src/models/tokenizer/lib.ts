/**
 * The parts of `@huggingface/tokenizers` (pure JS, v0.2.0) that this layer uses, behind small typed
 * wrappers:
 * - `BPE`: the merge loop of the BPE model (rank-ordered, leftmost first; `byte_fallback`,
 *   `ignore_merges`, `fuse_unk`), checked against GPT-2, Llama-2-style and Llama-3-style tokenizers;
 * - the normalizers;
 * - `SplitPreTokenizer`, only for its translation of Oniguruma regexes (the syntax of
 *   `tokenizer.json`, e.g. `(?i:'s|'t)` and Unicode `\s`) into JavaScript `RegExp`s.
 *
 * Everything else (added-token splitting, pre-tokenizers, post-processing, decoders) is implemented
 * in this directory, because the package's versions differ from the Rust `tokenizers` there (see
 * index.ts). The package's own type declarations do not resolve under `moduleResolution: NodeNext`
 * (extensionless relative re-exports), hence the local interfaces below.
 */
import * as hf from "@huggingface/tokenizers";
import { TokenizerFormatError } from "./errors.js";
import type { BpeModelJson, NormalizerJson } from "./schema.js";

interface LibBpe {
  (words: string[]): string[];
}
interface LibNormalizer {
  (text: string): string;
}
interface LibSplit {
  pattern: RegExp | null;
}
interface LibShape {
  BPE: new (config: object) => LibBpe;
  SequenceNormalizer: new (config: object) => LibNormalizer;
  SplitPreTokenizer: new (config: object) => LibSplit;
}
const lib = hf as unknown as LibShape;

/** A BPE model: maps pre-tokens (words) to token strings. */
export type BpeFn = (words: string[]) => string[];

/** Creates the BPE merge loop for a validated model. */
export function createBpe(model: BpeModelJson): BpeFn {
  const bpe = new lib.BPE({
    type: "BPE",
    vocab: model.vocab,
    merges: model.merges,
    unk_token: model.unk_token ?? undefined,
    byte_fallback: model.byte_fallback,
    ignore_merges: model.ignore_merges,
    fuse_unk: model.fuse_unk,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
  });
  return (words) => bpe(words);
}

/** Creates a normalizer function for a validated normalizer spec. */
export function createNormalizer(spec: NormalizerJson, file: string): (text: string) => string {
  try {
    const n = new lib.SequenceNormalizer({ type: "Sequence", normalizers: [spec] });
    return (text) => n(text);
  } catch (e) {
    throw new TokenizerFormatError(file, "normalizer", (e as Error).message);
  }
}

/**
 * Compiles an Oniguruma regex from a `tokenizer.json` into a global, Unicode-mode JavaScript RegExp.
 * @throws TokenizerFormatError naming `file` and `field` when it cannot be translated
 */
export function compileOnigRegex(source: string, file: string, field: string): RegExp {
  let re: RegExp | null;
  try {
    re = new lib.SplitPreTokenizer({
      type: "Split",
      pattern: { Regex: source },
      behavior: "Isolated",
      invert: false,
    }).pattern;
  } catch (e) {
    throw new TokenizerFormatError(
      file,
      field,
      `cannot compile regex ${JSON.stringify(source)}: ${(e as Error).message}`,
    );
  }
  if (!(re instanceof RegExp) || !re.global) {
    throw new TokenizerFormatError(file, field, `cannot compile regex ${JSON.stringify(source)}`);
  }
  return re;
}

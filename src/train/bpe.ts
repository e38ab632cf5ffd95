/**
 * Training a byte-level BPE tokenizer (GPT-2's scheme) on a corpus, written as a Hugging Face
 * `tokenizer.json` that `loadTokenizer` / transformers read.
 *
 * Pre-tokenization is the ByteLevel pre-tokenizer of the tokenizer layer itself (GPT-2's regex, bytes
 * mapped to printable symbols), so training and encoding split text the same way. The base vocabulary
 * is the 256 byte symbols (any text can be encoded); merges are learned greedily by pair frequency
 * (ties broken by the pair's text, so the result does not depend on iteration order). Pairs that
 * contain a digit are never merged: numbers are written digit by digit, which arithmetic needs.
 */
import { BYTE_TO_UNICODE } from "../models/tokenizer/bytes.js";
import { createPreTokenizer } from "../models/tokenizer/pretokenizers.js";

export interface BpeTrainOptions {
  /** total vocabulary size, special tokens included */
  vocabSize: number;
  /** special tokens, appended after the learned vocabulary (default ["<|endoftext|>"]) */
  specialTokens?: string[];
  /** a pair is merged only if it occurs at least this often (default 2) */
  minFrequency?: number;
  /** symbols matching this are never merged (default: digits) */
  noMerge?: RegExp;
}

const BYTE_LEVEL = {
  type: "ByteLevel",
  add_prefix_space: false,
  trim_offsets: true,
  use_regex: true,
} as const;

/** The tokenizer.json object (the subset of the format this trainer writes). */
export interface TrainedTokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: {
    id: number;
    content: string;
    single_word: boolean;
    lstrip: boolean;
    rstrip: boolean;
    normalized: boolean;
    special: boolean;
  }[];
  normalizer: null;
  pre_tokenizer: typeof BYTE_LEVEL;
  post_processor: typeof BYTE_LEVEL;
  decoder: typeof BYTE_LEVEL;
  model: {
    type: "BPE";
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: string;
    end_of_word_suffix: string;
    fuse_unk: boolean;
    byte_fallback: boolean;
    vocab: Record<string, number>;
    merges: string[];
  };
}

/** Byte-level pre-tokens of a text, as the tokenizer splits it. */
export function byteLevelWords(text: string): string[] {
  const pre = createPreTokenizer(BYTE_LEVEL, "bpe trainer");
  return pre([{ text, atStart: true }]).map((p) => p.text);
}

export function trainByteLevelBpe(texts: Iterable<string>, opts: BpeTrainOptions): TrainedTokenizerJson {
  const specials = opts.specialTokens ?? ["<|endoftext|>"];
  const minFreq = opts.minFrequency ?? 2;
  const noMerge = opts.noMerge ?? /[0-9]/;
  const nMerges = opts.vocabSize - 256 - specials.length;
  if (nMerges < 0)
    throw new Error(
      `bpe: vocabSize ${opts.vocabSize} is below 256 bytes + ${specials.length} special tokens`,
    );

  const pre = createPreTokenizer(BYTE_LEVEL, "bpe trainer");
  const counts = new Map<string, number>();
  for (const text of texts)
    for (const p of pre([{ text, atStart: true }])) counts.set(p.text, (counts.get(p.text) ?? 0) + 1);

  const tokens: string[] = [...BYTE_TO_UNICODE];
  const idOf = new Map(tokens.map((t, i) => [t, i]));
  const frozen: boolean[] = tokens.map((t) => noMerge.test(t));
  const words: { syms: number[]; count: number }[] = [];
  for (const [w, c] of counts) words.push({ syms: [...w].map((ch) => idOf.get(ch) as number), count: c });

  const merges: string[] = [];
  for (let m = 0; m < nMerges; m++) {
    const pairCounts = new Map<number, number>();
    for (const { syms, count } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const a = syms[i] as number;
        const b = syms[i + 1] as number;
        if (frozen[a] || frozen[b]) continue;
        const key = a * 65536 + b;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      }
    }
    let best = -1;
    let bestCount = 0;
    let bestText = "";
    for (const [key, c] of pairCounts) {
      if (c < bestCount || c < minFreq) continue;
      const text = (tokens[Math.floor(key / 65536)] as string) + " " + (tokens[key % 65536] as string);
      if (c > bestCount || text < bestText) {
        best = key;
        bestCount = c;
        bestText = text;
      }
    }
    if (best < 0) break;
    const a = Math.floor(best / 65536);
    const b = best % 65536;
    const merged = (tokens[a] as string) + (tokens[b] as string);
    const id = tokens.length;
    tokens.push(merged);
    frozen.push(false);
    merges.push(bestText);
    for (const w of words) {
      const s = w.syms;
      let j = 0;
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          s[j++] = id;
          i++;
        } else s[j++] = s[i] as number;
      }
      s.length = j;
    }
  }

  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  const added = specials.map((content, k) => {
    vocab[content] = tokens.length + k;
    return {
      id: tokens.length + k,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: true,
      special: true,
    };
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: BYTE_LEVEL,
    post_processor: BYTE_LEVEL,
    decoder: BYTE_LEVEL,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/** tokenizer_config.json for a trained tokenizer (GPT-2's settings; EOS doubles as BOS, UNK and PAD). */
export function tokenizerConfigFor(
  json: TrainedTokenizerJson,
  opts: { modelMaxLength: number; chatTemplate?: string },
): Record<string, unknown> {
  const eos = json.added_tokens[0];
  if (!eos) throw new Error("tokenizerConfigFor: the tokenizer has no special token");
  const cfg: Record<string, unknown> = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(
      json.added_tokens.map((t) => [
        String(t.id),
        {
          content: t.content,
          lstrip: false,
          normalized: true,
          rstrip: false,
          single_word: false,
          special: true,
        },
      ]),
    ),
    bos_token: eos.content,
    clean_up_tokenization_spaces: false,
    eos_token: eos.content,
    errors: "replace",
    model_max_length: opts.modelMaxLength,
    pad_token: eos.content,
    tokenizer_class: "GPT2Tokenizer",
    unk_token: eos.content,
  };
  if (opts.chatTemplate) cfg.chat_template = opts.chatTemplate;
  return cfg;
}

/**
 * llama2.c's tokenizer file (`tokenizer.bin`, e.g. `tok512.bin`) converted into a Llama-2-style
 * `tokenizer.json`.
 *
 * File layout (little-endian): int32 max_token_length, then for every token: float32 score,
 * int32 byte length, the UTF-8 bytes. The token count is not stored (llama2.c takes it from the
 * model header); here the records are read until the end of the file. llama2.c's exporter wrote
 * SentencePiece's "▁" as " " and BOS/EOS as "\n<s>\n" / "\n</s>\n"; the conversion undoes both.
 */
import { readFileSync } from "node:fs";
import { TokenizerFormatError, TokenizerLoadError } from "./errors.js";
import { utf8DecodeStrict } from "./bytes.js";
import type { TokenizerJson } from "./schema.js";

/** One record of a llama2.c tokenizer file. */
export interface Llama2cPiece {
  /** The piece as stored (spaces, not "▁"). */
  piece: string;
  score: number;
}

/** Parses a llama2.c tokenizer file. */
export function parseLlama2cTokenizer(
  buf: Uint8Array,
  file = "tokenizer.bin",
): { maxTokenLength: number; pieces: Llama2cPiece[] } {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.byteLength < 4)
    throw new TokenizerFormatError(file, "max_token_length", "file is shorter than its 4-byte header");
  const maxTokenLength = dv.getInt32(0, true);
  const pieces: Llama2cPiece[] = [];
  let off = 4;
  while (off < buf.byteLength) {
    const field = `token ${pieces.length} (byte offset ${off})`;
    if (off + 8 > buf.byteLength) throw new TokenizerFormatError(file, field, "truncated record header");
    const score = dv.getFloat32(off, true);
    const len = dv.getInt32(off + 4, true);
    if (len < 0 || off + 8 + len > buf.byteLength)
      throw new TokenizerFormatError(file, field, `bad length ${len}`);
    const piece = utf8DecodeStrict(buf.subarray(off + 8, off + 8 + len));
    if (piece === null) throw new TokenizerFormatError(file, field, "piece is not valid UTF-8");
    pieces.push({ piece, score });
    off += 8 + len;
  }
  return { maxTokenLength, pieces };
}

/**
 * Converts llama2.c's tokenizer file into an HF `tokenizer.json` object in the Llama-2 layout:
 * BPE with `byte_fallback`, the normalizer `Prepend("▁")` + `Replace(" " → "▁")`, the decoder
 * `Replace("▁" → " ")`, `ByteFallback`, `Fuse`, `Strip(1 leading space)`, and a
 * `TemplateProcessing` post-processor that adds `<s>`. Ids are kept: 0 = `<unk>`, 1 = `<s>`,
 * 2 = `</s>` (the three are added special tokens), 3..258 = `<0x00>`..`<0xFF>`.
 *
 * Merges are derived from the scores the way transformers converts a SentencePiece BPE model
 * (`SentencePieceExtractor`): for every vocabulary piece, each split into two pieces that are both
 * in the vocabulary is a merge; within a piece the merges are ordered by the ids of (left, right);
 * then all merges are ordered by the score of the merged piece, higher first (a stable sort, so
 * equal scores keep vocabulary order).
 *
 * @param tokPath path of the llama2.c tokenizer file (e.g. `tok512.bin`)
 * @param vocabSize if given, the number of tokens the file must hold
 */
export function llama2cTokenizerToHF(tokPath: string, vocabSize?: number): TokenizerJson {
  let buf: Buffer;
  try {
    buf = readFileSync(tokPath);
  } catch (e) {
    throw new TokenizerLoadError(`cannot read llama2.c tokenizer ${tokPath}: ${(e as Error).message}`);
  }
  return llama2cPiecesToHF(parseLlama2cTokenizer(buf, tokPath).pieces, tokPath, vocabSize);
}

/** {@link llama2cTokenizerToHF} on already-parsed records. */
export function llama2cPiecesToHF(
  records: Llama2cPiece[],
  file = "tokenizer.bin",
  vocabSize?: number,
): TokenizerJson {
  if (vocabSize !== undefined && records.length !== vocabSize) {
    throw new TokenizerFormatError(
      file,
      "(token count)",
      `expected ${vocabSize} tokens, found ${records.length}`,
    );
  }
  if (records.length < 259) {
    throw new TokenizerFormatError(
      file,
      "(token count)",
      `expected at least 259 tokens (<unk>, <s>, </s>, 256 bytes), found ${records.length}`,
    );
  }
  const pieces = records.map((r, i) => {
    if (i === 1) return "<s>";
    if (i === 2) return "</s>";
    return r.piece.replaceAll(" ", "\u2581");
  });
  for (let b = 0; b < 256; b++) {
    const want = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
    if (pieces[3 + b] !== want) {
      throw new TokenizerFormatError(
        file,
        `token ${3 + b}`,
        `expected the byte token ${want}, found ${JSON.stringify(pieces[3 + b])}`,
      );
    }
  }
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  pieces.forEach((p, i) => {
    if (vocab[p] !== undefined)
      throw new TokenizerFormatError(file, `token ${i}`, `duplicate piece ${JSON.stringify(p)}`);
    vocab[p] = i;
  });

  const scored: { left: string; right: string; score: number }[] = [];
  pieces.forEach((p, i) => {
    const chars = [...p];
    const local: { left: string; right: string; score: number }[] = [];
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join("");
      const right = chars.slice(k).join("");
      if (vocab[left] !== undefined && vocab[right] !== undefined)
        local.push({ left, right, score: (records[i] as Llama2cPiece).score });
    }
    local.sort(
      (a, b) =>
        (vocab[a.left] as number) - (vocab[b.left] as number) ||
        (vocab[a.right] as number) - (vocab[b.right] as number),
    );
    scored.push(...local);
  });
  scored.sort((a, b) => b.score - a.score); // Array.prototype.sort is stable

  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0, pieces[0] as string), special(1, "<s>"), special(2, "</s>")],
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: "\u2581" },
        { type: "Replace", pattern: { String: " " }, content: "\u2581" },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "\u2581" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: pieces[0] as string,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: scored.map((m) => [m.left, m.right]),
    },
  };
}

/**
 * The `tokenizer_config.json` to write next to {@link llama2cTokenizerToHF}'s output: Llama-2's
 * settings (BOS added, no EOS, no clean-up of spaces on decode, no pad token), with left padding
 * for batched generation (LlamaTokenizer's class default).
 */
export function llama2cTokenizerConfig(): Record<string, unknown> {
  return {
    tokenizer_class: "LlamaTokenizer",
    bos_token: "<s>",
    eos_token: "</s>",
    unk_token: "<unk>",
    pad_token: null,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    padding_side: "left",
  };
}

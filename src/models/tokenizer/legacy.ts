/**
 * GPT-2's legacy tokenizer files, `vocab.json` + `merges.txt` (what `GPT2Tokenizer` reads), turned
 * into the equivalent `tokenizer.json`: byte-level BPE with GPT-2's pre-tokenization regex and
 * `bytes_to_unicode` alphabet.
 */
import { readFileSync } from "node:fs";
import { TokenizerFormatError, TokenizerLoadError } from "./errors.js";
import type { TokenizerConfig } from "./config.js";
import { validateTokenizerJson, type TokenizerJson } from "./schema.js";

/**
 * Parses `merges.txt`: one merge per line, "left right"; a first line starting with `#version` is a
 * header; blank lines are skipped.
 * @throws TokenizerFormatError naming the file and the line
 */
export function parseMergesTxt(text: string, file = "merges.txt"): [string, string][] {
  const lines = text.split(/\r?\n/);
  const merges: [string, string][] = [];
  lines.forEach((line, i) => {
    if (line === "" || (i === 0 && line.startsWith("#version"))) return;
    const parts = line.split(" ");
    if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
      throw new TokenizerFormatError(
        file,
        `line ${i + 1}`,
        `expected "left right", got ${JSON.stringify(line)}`,
      );
    }
    merges.push([parts[0] as string, parts[1] as string]);
  });
  return merges;
}

/**
 * Builds the `tokenizer.json` equivalent of GPT-2's `vocab.json` + `merges.txt`.
 *
 * Special tokens: every added token in `config.addedTokens` plus the config's bos/eos/unk/pad tokens
 * that are in the vocabulary are split out of the text before the BPE, as `GPT2Tokenizer` does.
 * `config.addPrefixSpace` sets the ByteLevel `add_prefix_space`. No post-processor: BOS/EOS
 * come from `add_bos_token` / `add_eos_token` (GPT-2's default: none).
 *
 * @param vocab parsed `vocab.json` (token → id)
 * @param merges parsed merges, in rank order
 * @param source a name for error messages
 * @throws TokenizerFormatError for a vocabulary or merge that is not valid
 */
export function gpt2LegacyToTokenizerJson(
  vocab: unknown,
  merges: [string, string][],
  config: TokenizerConfig,
  source = "vocab.json + merges.txt",
): TokenizerJson {
  if (vocab === null || typeof vocab !== "object" || Array.isArray(vocab)) {
    throw new TokenizerFormatError(source, "(vocab root)", "expected an object mapping tokens to ids");
  }
  const v = vocab as Record<string, unknown>;
  const added = new Map<
    string,
    {
      id: number;
      special: boolean;
      lstrip: boolean;
      rstrip: boolean;
      normalized: boolean;
      single_word: boolean;
    }
  >();
  for (const t of config.addedTokens) {
    added.set(t.content, {
      id: t.id,
      special: t.special,
      lstrip: t.lstrip,
      rstrip: t.rstrip,
      normalized: t.normalized,
      single_word: t.singleWord,
    });
  }
  for (const tok of [
    config.bosToken,
    config.eosToken,
    config.unkToken,
    config.padToken,
    ...config.additionalSpecialTokens,
  ]) {
    if (tok === null || added.has(tok)) continue;
    const id = v[tok];
    if (typeof id === "number") {
      added.set(tok, {
        id,
        special: true,
        lstrip: false,
        rstrip: false,
        normalized: false,
        single_word: false,
      });
    }
  }
  const raw = {
    version: "1.0",
    added_tokens: [...added].map(([content, t]) => ({ content, ...t })),
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: config.addPrefixSpace ?? false,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: null,
    decoder: {
      type: "ByteLevel",
      add_prefix_space: config.addPrefixSpace ?? false,
      trim_offsets: true,
      use_regex: true,
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab: v,
      merges,
    },
  };
  return validateTokenizerJson(raw, source);
}

/** Reads `vocab.json` + `merges.txt` and builds the equivalent `tokenizer.json` (see {@link gpt2LegacyToTokenizerJson}). */
export function readGpt2LegacyFiles(
  vocabPath: string,
  mergesPath: string,
  config: TokenizerConfig,
): TokenizerJson {
  let vocabText: string;
  let mergesText: string;
  try {
    vocabText = readFileSync(vocabPath, "utf8");
    mergesText = readFileSync(mergesPath, "utf8");
  } catch (e) {
    throw new TokenizerLoadError(`cannot read GPT-2 tokenizer files: ${(e as Error).message}`);
  }
  let vocab: unknown;
  try {
    vocab = JSON.parse(vocabText);
  } catch (e) {
    throw new TokenizerFormatError(vocabPath, "(root)", `invalid JSON: ${(e as Error).message}`);
  }
  return gpt2LegacyToTokenizerJson(
    vocab,
    parseMergesTxt(mergesText, mergesPath),
    config,
    `${vocabPath} + ${mergesPath}`,
  );
}

/**
 * The tokenizer of a Hugging Face checkpoint directory.
 *
 * Reads `tokenizer.json` (the `tokenizers` format; preferred) or GPT-2's legacy `vocab.json` +
 * `merges.txt`, plus `tokenizer_config.json` / `special_tokens_map.json`, and encodes/decodes the
 * way transformers 4.37's tokenizers do:
 * - byte-level BPE (GPT-2, GPT-J, GPT-NeoX, Llama-3, Qwen2) and SentencePiece-style BPE with
 *   byte fallback (Llama-2, Mistral);
 * - added tokens (`<|endoftext|>`, `<s>`, ...) are split out of the text before the BPE;
 * - BOS/EOS come from the `post_processor`, unless `tokenizer_config.json` sets `add_bos_token` /
 *   `add_eos_token`, which then decide (as `LlamaTokenizerFast` and `GPT2Tokenizer` do);
 * - `chat_template` renders conversations as transformers' `apply_chat_template` (chat.ts).
 *
 * `@huggingface/tokenizers` supplies the BPE merge loop, the normalizers and the Oniguruma → JS
 * regex translation (lib.ts). Added-token splitting, pre-tokenizers, post-processing and decoders
 * are implemented here after the Rust `tokenizers` crate, because the package's versions differ
 * from it: it ignores `Metaspace.split`, the legacy `add_prefix_space: false`, the `Split`
 * behaviours other than Isolated/Removed and `single_word`; its `ByteFallback` decoder emits one
 * U+FFFD per invalid sequence instead of per byte; its `ByteLevel` pre-tokenizer uses JavaScript's
 * `\s` instead of Unicode White_Space; it ignores `add_bos_token`; and `decode([])` throws.
 *
 * Not supported (a clear error when a file asks for them): models other than BPE, BPE dropout,
 * subword prefixes/suffixes, and normalizers/pre-tokenizers/decoders outside the list in schema.ts.
 * Special tokens named in the config that are not in the vocabulary get no id (transformers would
 * append them to the vocabulary).
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { AddedTokenSplitter, type SplitToken } from "./added.js";
import {
  chatTemplateFile,
  renderChat,
  selectChatTemplate,
  type ApplyChatTemplateOptions,
  type ChatMessage,
  type TokenizedChat,
} from "./chat.js";
import {
  defaultTokenizerConfig,
  parseTokenizerConfig,
  readJsonFile,
  readTokenizerConfig,
  type TokenizerConfig,
} from "./config.js";
import { createDecoder, type DecoderFn } from "./decoders.js";
import { TokenizerFormatError, TokenizerLoadError } from "./errors.js";
import { gpt2LegacyToTokenizerJson, parseMergesTxt, readGpt2LegacyFiles } from "./legacy.js";
import { createBpe, createNormalizer, type BpeFn } from "./lib.js";
import { EMPTY_TEMPLATE, templateOf, type SpecialTemplate } from "./postprocess.js";
import { createPreTokenizer, type Piece, type PreTokenizerFn } from "./pretokenizers.js";
import { validateTokenizerJson, type AddedTokenJson, type TokenizerJson } from "./schema.js";

export { TokenizerFormatError, TokenizerLoadError } from "./errors.js";
export {
  ChatTemplateError,
  NoChatTemplateError,
  type ApplyChatTemplateOptions,
  type ChatMessage,
  type TokenizedChat,
} from "./chat.js";
export {
  parseTokenizerConfig,
  readTokenizerConfig,
  defaultTokenizerConfig,
  type TokenizerConfig,
} from "./config.js";
export { validateTokenizerJson, type TokenizerJson } from "./schema.js";
export { gpt2LegacyToTokenizerJson, parseMergesTxt } from "./legacy.js";
export {
  llama2cTokenizerToHF,
  llama2cTokenizerConfig,
  parseLlama2cTokenizer,
  llama2cPiecesToHF,
  type Llama2cPiece,
} from "./llama2c.js";
export { BYTE_TO_UNICODE, GPT2_SPLIT_PATTERN, LLAMA3_SPLIT_PATTERN, QWEN2_SPLIT_PATTERN } from "./bytes.js";

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Add the checkpoint's special tokens (BOS for Llama, nothing for GPT-2). Default true, as in HF `tokenizer(text)`. */
  addSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, PAD, ... and added tokens marked special). Default false. */
  skipSpecialTokens?: boolean;
  /**
   * Apply transformers' `clean_up_tokenization` (" ." → ".", " n't" → "n't", ...). Default: the
   * config's `clean_up_tokenization_spaces` (true when absent, as in transformers 4.37).
   */
  cleanUpTokenizationSpaces?: boolean;
}

/** Options of {@link Tokenizer.encodeBatch}. */
export interface EncodeBatchOptions extends EncodeOptions {
  /** Where the padding goes. Default: the tokenizer's {@link Tokenizer.paddingSide}. */
  paddingSide?: "left" | "right";
  /** The id written into padded slots. Default: the tokenizer's {@link Tokenizer.padTokenId}. */
  padTokenId?: number;
}

/** The result of {@link Tokenizer.encodeBatch}: rows padded to the longest, and 1/0 masks. */
export interface BatchEncoding {
  inputIds: number[][];
  /** 1 for real tokens, 0 for padding. */
  attentionMask: number[][];
}

/** Options of {@link Tokenizer.fromTokenizerJson}. */
export interface FromJsonOptions {
  /** Parsed `tokenizer_config.json`. */
  tokenizerConfig?: unknown;
  /** Parsed `special_tokens_map.json`. */
  specialTokensMap?: unknown;
  /** A name for error messages. Default "tokenizer.json". */
  source?: string;
}

/** transformers' `clean_up_tokenization`. */
function cleanUpTokenization(text: string): string {
  return text
    .replaceAll(" .", ".")
    .replaceAll(" ?", "?")
    .replaceAll(" !", "!")
    .replaceAll(" ,", ",")
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

function hex(ch: string): string {
  return "U+" + (ch.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, "0");
}

/** A loaded tokenizer. Build one with {@link loadTokenizer} or the static constructors. */
export class Tokenizer {
  /** The settings from `tokenizer_config.json` / `special_tokens_map.json`. */
  readonly config: TokenizerConfig;
  /** Where it was loaded from (for messages). */
  readonly source: string;
  /** 1 + the highest token id (vocabulary and added tokens): HF's `len(tokenizer)`. */
  readonly vocabSize: number;
  /** The BOS token's id, or null when the config names none (or it is not in the vocabulary). */
  readonly bosTokenId: number | null;
  /** The EOS token's id, or null when unset. */
  readonly eosTokenId: number | null;
  /** The padding token's id, or null when unset (GPT-2 has none). */
  readonly padTokenId: number | null;
  /** The unknown token's id, or null when unset. */
  readonly unkTokenId: number | null;
  /** The default side for {@link encodeBatch} padding (`padding_side`, default "right"). */
  readonly paddingSide: "left" | "right";
  /**
   * The chat template (a Jinja string), kept as is: `tokenizer_config.json`'s `chat_template`, or the
   * one named "default" when it is a list of named templates; null when there is none.
   */
  readonly chatTemplate: string | null;
  /** The named chat templates when `chat_template` is a list of {name, template}; null otherwise. */
  readonly chatTemplates: Readonly<Record<string, string>> | null;
  /** `model_max_length`, or null when unset. */
  readonly modelMaxLength: number | null;
  /** Ids skipped by `decode(..., {skipSpecialTokens: true})`. */
  readonly specialTokenIds: ReadonlySet<number>;
  /** Special tokens added around a single sequence when `addSpecialTokens` is true. */
  readonly specialTemplate: SpecialTemplate;

  private readonly tokenToIdMap = new Map<string, number>();
  private readonly idToTokenArr: (string | undefined)[] = [];
  private readonly rawSplitter: AddedTokenSplitter;
  private readonly normalizedSplitter: AddedTokenSplitter;
  private readonly normalize: ((text: string) => string) | null;
  private readonly preTokenize: PreTokenizerFn | null;
  private readonly bpe: BpeFn;
  private readonly decoder: DecoderFn | null;
  /** Set when an unknown character must be an error (no unk token, no byte fallback). */
  private readonly strictChars: boolean;

  /**
   * @param json a validated `tokenizer.json` (see {@link validateTokenizerJson})
   * @param config the transformers-level settings (default: none)
   * @param source a name for error messages
   */
  constructor(
    json: TokenizerJson,
    config: TokenizerConfig = defaultTokenizerConfig(),
    source = "tokenizer.json",
  ) {
    this.config = config;
    this.source = source;
    const model = json.model;
    for (const [tok, id] of Object.entries(model.vocab)) {
      this.tokenToIdMap.set(tok, id);
      this.idToTokenArr[id] = tok;
    }

    // Added tokens: tokenizer.json's, then the config's added_tokens_decoder entries it lacks, then
    // the config's special tokens that are in the vocabulary (transformers adds all of these).
    const added = new Map<number, AddedTokenJson>();
    for (const t of json.added_tokens) added.set(t.id, t);
    for (const t of config.addedTokens) {
      if (!added.has(t.id)) {
        added.set(t.id, {
          id: t.id,
          content: t.content,
          special: t.special,
          lstrip: t.lstrip,
          rstrip: t.rstrip,
          normalized: t.normalized,
          single_word: t.singleWord,
        });
      }
    }
    const addedContents = new Set([...added.values()].map((t) => t.content));
    const configSpecials = [
      config.bosToken,
      config.eosToken,
      config.unkToken,
      config.padToken,
      ...config.additionalSpecialTokens,
    ];
    for (const tok of configSpecials) {
      if (tok === null || addedContents.has(tok)) continue;
      const id = this.tokenToIdMap.get(tok);
      if (id === undefined) continue;
      added.set(id, {
        id,
        content: tok,
        special: true,
        lstrip: false,
        rstrip: false,
        normalized: false,
        single_word: false,
      });
      addedContents.add(tok);
    }
    for (const t of added.values()) {
      this.tokenToIdMap.set(t.content, t.id);
      this.idToTokenArr[t.id] = t.content;
    }
    this.vocabSize = this.idToTokenArr.length;

    this.normalize = json.normalizer === null ? null : createNormalizer(json.normalizer, source);
    this.preTokenize = json.pre_tokenizer === null ? null : createPreTokenizer(json.pre_tokenizer, source);
    this.bpe = createBpe(model);
    this.decoder = json.decoder === null ? null : createDecoder(json.decoder, source);
    this.strictChars = model.unk_token === null && !model.byte_fallback;

    const toSplit = (t: AddedTokenJson, match: string): SplitToken => ({
      id: t.id,
      match,
      singleWord: t.single_word,
      lstrip: t.lstrip,
      rstrip: t.rstrip,
    });
    const addedList = [...added.values()];
    this.rawSplitter = new AddedTokenSplitter(
      addedList.filter((t) => !t.normalized).map((t) => toSplit(t, t.content)),
    );
    this.normalizedSplitter = new AddedTokenSplitter(
      addedList
        .filter((t) => t.normalized)
        .map((t) => toSplit(t, this.normalize === null ? t.content : this.normalize(t.content))),
    );

    const idOf = (tok: string | null): number | null =>
      tok === null ? null : (this.tokenToIdMap.get(tok) ?? null);
    this.bosTokenId = idOf(config.bosToken);
    this.eosTokenId = idOf(config.eosToken);
    this.padTokenId = idOf(config.padToken);
    this.unkTokenId = idOf(config.unkToken);
    this.paddingSide = config.paddingSide;
    this.chatTemplate = config.chatTemplate;
    this.chatTemplates = config.chatTemplates;
    this.modelMaxLength = config.modelMaxLength;

    const special = new Set<number>();
    for (const t of added.values()) if (t.special) special.add(t.id);
    for (const tok of configSpecials) {
      const id = idOf(tok);
      if (id !== null) special.add(id);
    }
    this.specialTokenIds = special;

    if (config.addBosToken !== undefined || config.addEosToken !== undefined) {
      const need = (flag: boolean | undefined, id: number | null, name: string): number[] => {
        if (flag !== true) return [];
        if (id === null) {
          throw new TokenizerFormatError(
            "tokenizer_config.json",
            `add_${name}_token`,
            `is true but ${name}_token is not set or not in the vocabulary`,
          );
        }
        return [id];
      };
      this.specialTemplate = {
        prefix: need(config.addBosToken, this.bosTokenId, "bos"),
        suffix: need(config.addEosToken, this.eosTokenId, "eos"),
      };
    } else {
      this.specialTemplate = json.post_processor === null ? EMPTY_TEMPLATE : templateOf(json.post_processor);
    }
  }

  /**
   * Builds a tokenizer from a parsed `tokenizer.json` (validated here) and, optionally, the parsed
   * `tokenizer_config.json` / `special_tokens_map.json`.
   * @throws TokenizerFormatError naming the source and field when the JSON is malformed or unsupported
   */
  static fromTokenizerJson(json: unknown, opts: FromJsonOptions = {}): Tokenizer {
    const source = opts.source ?? "tokenizer.json";
    const config = parseTokenizerConfig(opts.tokenizerConfig, opts.specialTokensMap);
    return new Tokenizer(validateTokenizerJson(json, source), config, source);
  }

  /**
   * Builds a GPT-2 tokenizer from the contents of `vocab.json` (parsed) and `merges.txt` (text),
   * as `GPT2Tokenizer` reads them; the config supplies special tokens and `add_bos_token`.
   */
  static fromGpt2Files(
    vocab: unknown,
    mergesTxt: string,
    opts: Omit<FromJsonOptions, "source"> = {},
  ): Tokenizer {
    const config = parseTokenizerConfig(opts.tokenizerConfig, opts.specialTokensMap);
    return new Tokenizer(
      gpt2LegacyToTokenizerJson(vocab, parseMergesTxt(mergesTxt), config),
      config,
      "vocab.json + merges.txt",
    );
  }

  /**
   * The chat template a name selects (see {@link applyChatTemplate}'s `chatTemplate`), or the
   * tokenizer's own.
   * @throws NoChatTemplateError naming tokenizer_config.json when there is none (or no such name)
   */
  resolveChatTemplate(nameOrTemplate?: string): string {
    return selectChatTemplate(
      this.chatTemplate,
      this.chatTemplates,
      nameOrTemplate,
      chatTemplateFile(this.source),
    );
  }

  /**
   * Renders a conversation with the checkpoint's chat template, as transformers'
   * `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`: the template
   * sees `messages`, `add_generation_prompt`, the special tokens (`bos_token`, `eos_token`, ...),
   * `raise_exception` and `strftime_now`. With `tokenize: true` the ids come too (encoded without
   * adding special tokens: the template writes them).
   * @throws NoChatTemplateError when the checkpoint has no chat template (the message names the file)
   * @throws ChatTemplateError when the template fails (e.g. its `raise_exception` on a system message)
   */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    opts: ApplyChatTemplateOptions & { tokenize: true },
  ): TokenizedChat;
  applyChatTemplate(messages: readonly ChatMessage[], opts?: ApplyChatTemplateOptions): string;
  applyChatTemplate(
    messages: readonly ChatMessage[],
    opts: ApplyChatTemplateOptions = {},
  ): string | TokenizedChat {
    const file = chatTemplateFile(this.source);
    const template = selectChatTemplate(this.chatTemplate, this.chatTemplates, opts.chatTemplate, file);
    // transformers' special_tokens_map: the tokens that are set
    const specials: Record<string, unknown> = {};
    const c = this.config;
    if (c.bosToken !== null) specials.bos_token = c.bosToken;
    if (c.eosToken !== null) specials.eos_token = c.eosToken;
    if (c.unkToken !== null) specials.unk_token = c.unkToken;
    if (c.padToken !== null) specials.pad_token = c.padToken;
    if (c.additionalSpecialTokens.length > 0)
      specials.additional_special_tokens = [...c.additionalSpecialTokens];
    const text = renderChat(
      template,
      messages,
      { ...specials, ...(opts.templateVars ?? {}) },
      {
        addGenerationPrompt: opts.addGenerationPrompt ?? false,
        continueFinalMessage: opts.continueFinalMessage ?? false,
      },
      file,
    );
    if (opts.tokenize !== true) return text;
    return { text, ids: this.encode(text, { addSpecialTokens: false }) };
  }

  /** The token string of an id (vocabulary or added token), or null for an unknown id. */
  idToToken(id: number): string | null {
    return this.idToTokenArr[id] ?? null;
  }

  /** The id of a token string (vocabulary or added token), or null when it is not a token. */
  tokenToId(token: string): number | null {
    return this.tokenToIdMap.get(token) ?? null;
  }

  /** Token ids of a text without any special tokens added around it (added tokens inside the text still count). */
  private encodeCore(text: string): number[] {
    const ids: number[] = [];
    const words: string[] = [];
    const flush = () => {
      if (words.length === 0) return;
      for (const tok of this.bpe(words)) {
        const id = this.tokenToIdMap.get(tok);
        if (id === undefined)
          throw new Error(`${this.source}: the BPE produced ${JSON.stringify(tok)}, which has no id`);
        ids.push(id);
      }
      words.length = 0;
    };
    for (const part of this.rawSplitter.split(text)) {
      if (part.id !== null) {
        flush();
        ids.push(part.id);
        continue;
      }
      const normalized = this.normalize === null ? part.text : this.normalize(part.text);
      for (const sub of this.normalizedSplitter.split(normalized)) {
        if (sub.id !== null) {
          flush();
          ids.push(sub.id);
          continue;
        }
        const piece: Piece = { text: sub.text, atStart: part.start === 0 && sub.start === 0 };
        const pieces = this.preTokenize === null ? [piece] : this.preTokenize([piece]);
        for (const p of pieces) {
          if (p.text.length === 0) continue;
          if (this.strictChars && !this.tokenToIdMap.has(p.text)) {
            for (const ch of p.text) {
              if (!this.tokenToIdMap.has(ch)) {
                throw new Error(
                  `${this.source}: character ${hex(ch)} ${JSON.stringify(ch)} is not in the vocabulary, and the model has neither unk_token nor byte_fallback`,
                );
              }
            }
          }
          words.push(p.text);
        }
      }
    }
    flush();
    return ids;
  }

  /**
   * Encodes a text into token ids, as HF `tokenizer(text)["input_ids"]` does: added tokens in the
   * text (e.g. `<|endoftext|>`) are recognised, and with `addSpecialTokens` (default true) the
   * checkpoint's special tokens are added (Llama: BOS `<s>` in front; GPT-2: nothing).
   */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const core = this.encodeCore(text);
    if (opts.addSpecialTokens === false) return core;
    const { prefix, suffix } = this.specialTemplate;
    return prefix.length === 0 && suffix.length === 0 ? core : [...prefix, ...core, ...suffix];
  }

  /**
   * Decodes token ids into text, as HF `tokenizer.decode(ids)` does (fast tokenizers): ids the
   * tokenizer does not know are skipped; special tokens are kept unless `skipSpecialTokens`.
   * @throws TypeError when an id is not an integer
   */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const skip = opts.skipSpecialTokens === true;
    const tokens: string[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id)) throw new TypeError(`decode: token id ${String(id)} is not an integer`);
      const tok = this.idToTokenArr[id];
      if (tok === undefined) continue;
      if (skip && this.specialTokenIds.has(id)) continue;
      tokens.push(tok);
    }
    let text = this.decoder === null ? tokens.join(" ") : this.decoder(tokens).join("");
    if (opts.cleanUpTokenizationSpaces ?? this.config.cleanUpTokenizationSpaces)
      text = cleanUpTokenization(text);
    return text;
  }

  /**
   * Encodes several texts and pads them to the longest, as HF `tokenizer(texts, padding=True)`:
   * `paddingSide` "left" puts the padding in front (what generation wants), "right" after.
   * @throws Error when padding is needed and there is no pad id (GPT-2: pass e.g. `padTokenId: eosTokenId`)
   */
  encodeBatch(texts: readonly string[], opts: EncodeBatchOptions = {}): BatchEncoding {
    const side = opts.paddingSide ?? this.paddingSide;
    const rows = texts.map((t) => this.encode(t, opts));
    const maxLen = rows.reduce((m, r) => Math.max(m, r.length), 0);
    const padId = opts.padTokenId ?? this.padTokenId;
    if (padId !== null && !Number.isInteger(padId))
      throw new TypeError(`encodeBatch: padTokenId ${String(padId)} is not an integer`);
    const inputIds: number[][] = [];
    const attentionMask: number[][] = [];
    for (const r of rows) {
      const n = maxLen - r.length;
      if (n > 0 && padId === null) {
        throw new Error(
          `encodeBatch: padding is needed but ${this.source} has no pad token; pass padTokenId (e.g. the EOS id)`,
        );
      }
      const pad = new Array<number>(n).fill(padId ?? 0);
      const zeros = new Array<number>(n).fill(0);
      const ones = new Array<number>(r.length).fill(1);
      inputIds.push(side === "left" ? [...pad, ...r] : [...r, ...pad]);
      attentionMask.push(side === "left" ? [...zeros, ...ones] : [...ones, ...zeros]);
    }
    return { inputIds, attentionMask };
  }
}

/**
 * Loads the tokenizer of a Hugging Face checkpoint directory: `tokenizer.json` when present,
 * otherwise GPT-2's `vocab.json` + `merges.txt`; plus `tokenizer_config.json` and
 * `special_tokens_map.json` when present.
 * @throws TokenizerLoadError when the directory is missing or has no tokenizer files (the message
 *   names the directory and the files looked for)
 * @throws TokenizerFormatError when a file is malformed (the message names the file and field)
 */
export function loadTokenizer(dir: string): Tokenizer {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new TokenizerLoadError(`tokenizer: ${dir} is not a directory`);
  }
  const config = readTokenizerConfig(dir);
  const tokenizerJson = join(dir, "tokenizer.json");
  if (existsSync(tokenizerJson)) {
    return new Tokenizer(
      validateTokenizerJson(readJsonFile(tokenizerJson), tokenizerJson),
      config,
      tokenizerJson,
    );
  }
  const vocab = join(dir, "vocab.json");
  const merges = join(dir, "merges.txt");
  const hasVocab = existsSync(vocab);
  const hasMerges = existsSync(merges);
  if (hasVocab && hasMerges) return new Tokenizer(readGpt2LegacyFiles(vocab, merges, config), config, vocab);
  let hint = "";
  if (hasVocab !== hasMerges)
    hint += ` (found ${hasVocab ? "vocab.json" : "merges.txt"} but not ${hasVocab ? "merges.txt" : "vocab.json"})`;
  if (existsSync(join(dir, "tokenizer.model"))) {
    hint +=
      " (found tokenizer.model, a SentencePiece model, which is not supported: convert it to tokenizer.json)";
  }
  throw new TokenizerLoadError(
    `no tokenizer files in ${dir}: looked for tokenizer.json, or vocab.json together with merges.txt${hint}`,
  );
}

/**
 * `tokenizer_config.json` and `special_tokens_map.json`: the transformers-level settings that sit on
 * top of `tokenizer.json` (special tokens, BOS/EOS policy, padding side, chat template).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TokenizerFormatError, TokenizerLoadError } from "./errors.js";

/** An added token declared in `tokenizer_config.json`'s `added_tokens_decoder`. */
export interface ConfigAddedToken {
  id: number;
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  singleWord: boolean;
}

/** The settings read from `tokenizer_config.json` and `special_tokens_map.json`. */
export interface TokenizerConfig {
  /** `tokenizer_class`, e.g. "GPT2Tokenizer", "LlamaTokenizer"; null when absent. */
  tokenizerClass: string | null;
  bosToken: string | null;
  eosToken: string | null;
  unkToken: string | null;
  padToken: string | null;
  /** `additional_special_tokens` (contents). */
  additionalSpecialTokens: string[];
  /** `add_bos_token`; undefined when the file does not say. */
  addBosToken: boolean | undefined;
  /** `add_eos_token`; undefined when the file does not say. */
  addEosToken: boolean | undefined;
  /** `add_prefix_space` (used by the vocab.json + merges.txt path); undefined when absent. */
  addPrefixSpace: boolean | undefined;
  paddingSide: "left" | "right";
  /** `model_max_length`, or null when absent or set to transformers' "no limit" sentinel (1e30). */
  modelMaxLength: number | null;
  /**
   * The chat template: `chat_template` when a string; the one named "default" when the file holds a
   * list of named templates (null when none is named "default", as transformers then asks for a name).
   */
  chatTemplate: string | null;
  /** The named templates when `chat_template` is a list of {name, template}; null otherwise. */
  chatTemplates: Record<string, string> | null;
  /** `clean_up_tokenization_spaces` (transformers 4.37 default: true). */
  cleanUpTokenizationSpaces: boolean;
  /** `added_tokens_decoder`, in id order. */
  addedTokens: ConfigAddedToken[];
}

/** The settings used when a checkpoint has neither file. */
export function defaultTokenizerConfig(): TokenizerConfig {
  return {
    tokenizerClass: null,
    bosToken: null,
    eosToken: null,
    unkToken: null,
    padToken: null,
    additionalSpecialTokens: [],
    addBosToken: undefined,
    addEosToken: undefined,
    addPrefixSpace: undefined,
    paddingSide: "right",
    modelMaxLength: null,
    chatTemplate: null,
    chatTemplates: null,
    cleanUpTokenizationSpaces: true,
    addedTokens: [],
  };
}

type Obj = Record<string, unknown>;

function fail(file: string, field: string, problem: string): never {
  throw new TokenizerFormatError(file, field, problem);
}

/** A special token value: a string, an AddedToken object `{content: ...}` (or `{__type: "AddedToken", content}`), or null. */
function tokenValue(v: unknown, file: string, field: string): string | null | undefined {
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (typeof v === "string") return v;
  if (typeof v === "object" && !Array.isArray(v) && typeof (v as Obj).content === "string")
    return (v as Obj).content as string;
  return fail(file, field, "expected a string, an AddedToken object with a string `content`, or null");
}

function optBool(v: unknown, file: string, field: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") fail(file, field, `expected a boolean, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Builds a {@link TokenizerConfig} from the parsed contents of the two files (either may be absent).
 * Precedence of the special tokens, as in transformers 4.37's `from_pretrained`: when
 * `tokenizer_config.json` has no `added_tokens_decoder` (the legacy layout), `special_tokens_map.json`
 * overrides it; when it has one, `tokenizer_config.json` wins (transformers then ignores the map;
 * here the map still fills tokens the config does not name).
 *
 * @param tokenizerConfig parsed `tokenizer_config.json`, or undefined
 * @param specialTokensMap parsed `special_tokens_map.json`, or undefined
 * @param files names for error messages
 */
export function parseTokenizerConfig(
  tokenizerConfig: unknown,
  specialTokensMap?: unknown,
  files: { config?: string; specialMap?: string } = {},
): TokenizerConfig {
  const cfgFile = files.config ?? "tokenizer_config.json";
  const mapFile = files.specialMap ?? "special_tokens_map.json";
  const out = defaultTokenizerConfig();
  const asObj = (v: unknown, file: string): Obj => {
    if (v === undefined) return {};
    if (v === null || typeof v !== "object" || Array.isArray(v)) fail(file, "(root)", "expected an object");
    return v as Obj;
  };
  const c = asObj(tokenizerConfig, cfgFile);
  const m = asObj(specialTokensMap, mapFile);

  const mapWins = c.added_tokens_decoder === undefined || c.added_tokens_decoder === null;
  const special = (key: "bos_token" | "eos_token" | "unk_token" | "pad_token"): string | null => {
    const fromMap = tokenValue(m[key], mapFile, key);
    const fromConfig = tokenValue(c[key], cfgFile, key);
    const value = mapWins
      ? fromMap !== undefined
        ? fromMap
        : fromConfig
      : fromConfig !== undefined
        ? fromConfig
        : fromMap;
    return value ?? null;
  };
  out.bosToken = special("bos_token");
  out.eosToken = special("eos_token");
  out.unkToken = special("unk_token");
  out.padToken = special("pad_token");

  const useMapExtra = m.additional_special_tokens != null && (mapWins || c.additional_special_tokens == null);
  const extra = useMapExtra ? m.additional_special_tokens : c.additional_special_tokens;
  if (extra !== undefined && extra !== null) {
    const file = useMapExtra ? mapFile : cfgFile;
    if (!Array.isArray(extra)) fail(file, "additional_special_tokens", "expected an array");
    out.additionalSpecialTokens = extra.map((t, i) => {
      const v = tokenValue(t, file, `additional_special_tokens[${i}]`);
      if (v === null || v === undefined) fail(file, `additional_special_tokens[${i}]`, "expected a token");
      return v;
    });
  }

  if (c.tokenizer_class !== undefined && c.tokenizer_class !== null) {
    if (typeof c.tokenizer_class !== "string") fail(cfgFile, "tokenizer_class", "expected a string");
    out.tokenizerClass = c.tokenizer_class;
  }
  out.addBosToken = optBool(c.add_bos_token, cfgFile, "add_bos_token");
  out.addEosToken = optBool(c.add_eos_token, cfgFile, "add_eos_token");
  out.addPrefixSpace = optBool(c.add_prefix_space, cfgFile, "add_prefix_space");
  out.cleanUpTokenizationSpaces =
    optBool(c.clean_up_tokenization_spaces, cfgFile, "clean_up_tokenization_spaces") ??
    out.cleanUpTokenizationSpaces;

  if (c.padding_side !== undefined && c.padding_side !== null) {
    if (c.padding_side !== "left" && c.padding_side !== "right") {
      fail(cfgFile, "padding_side", `expected "left" or "right", got ${JSON.stringify(c.padding_side)}`);
    }
    out.paddingSide = c.padding_side;
  }

  if (c.model_max_length !== undefined && c.model_max_length !== null) {
    if (typeof c.model_max_length !== "number" || !(c.model_max_length > 0)) {
      fail(
        cfgFile,
        "model_max_length",
        `expected a positive number, got ${JSON.stringify(c.model_max_length)}`,
      );
    }
    // transformers writes int(1e30) (VERY_LARGE_INTEGER) for "no limit"
    out.modelMaxLength = c.model_max_length > Number.MAX_SAFE_INTEGER ? null : c.model_max_length;
  }

  const tmpl = c.chat_template;
  if (typeof tmpl === "string") {
    out.chatTemplate = tmpl;
  } else if (Array.isArray(tmpl)) {
    const named = tmpl.map((t, i) => {
      const o = t as Obj;
      if (
        o === null ||
        typeof o !== "object" ||
        typeof o.name !== "string" ||
        typeof o.template !== "string"
      ) {
        fail(cfgFile, `chat_template[${i}]`, "expected {name, template}");
      }
      return { name: o.name as string, template: o.template as string };
    });
    out.chatTemplates = Object.fromEntries(named.map((t) => [t.name, t.template]));
    out.chatTemplate = named.find((t) => t.name === "default")?.template ?? null;
  } else if (tmpl !== undefined && tmpl !== null) {
    fail(cfgFile, "chat_template", "expected a string or a list of {name, template}");
  }

  const atd = c.added_tokens_decoder;
  if (atd !== undefined && atd !== null) {
    if (typeof atd !== "object" || Array.isArray(atd))
      fail(cfgFile, "added_tokens_decoder", "expected an object");
    for (const [k, v] of Object.entries(atd as Obj)) {
      const field = `added_tokens_decoder[${JSON.stringify(k)}]`;
      const id = Number(k);
      if (!Number.isInteger(id) || id < 0 || String(id) !== k) fail(cfgFile, field, "key must be a token id");
      const o = v as Obj;
      if (o === null || typeof o !== "object" || typeof o.content !== "string") {
        fail(cfgFile, field, "expected an AddedToken object with a string `content`");
      }
      const flag = (name: string, dflt: boolean): boolean =>
        optBool(o[name], cfgFile, `${field}.${name}`) ?? dflt;
      const isSpecial = flag("special", false);
      out.addedTokens.push({
        id,
        content: o.content as string,
        special: isSpecial,
        lstrip: flag("lstrip", false),
        rstrip: flag("rstrip", false),
        normalized: flag("normalized", !isSpecial),
        singleWord: flag("single_word", false),
      });
    }
    out.addedTokens.sort((a, b) => a.id - b.id);
  }
  return out;
}

/** Reads and parses a JSON file, or returns undefined when it does not exist. */
export function readJsonFile(path: string): unknown {
  if (!existsSync(path)) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new TokenizerLoadError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new TokenizerFormatError(path, "(root)", `invalid JSON: ${(e as Error).message}`);
  }
}

/** Reads `tokenizer_config.json` and `special_tokens_map.json` from a checkpoint directory (both optional). */
export function readTokenizerConfig(dir: string): TokenizerConfig {
  const config = join(dir, "tokenizer_config.json");
  const specialMap = join(dir, "special_tokens_map.json");
  return parseTokenizerConfig(readJsonFile(config), readJsonFile(specialMap), { config, specialMap });
}

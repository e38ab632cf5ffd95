/**
 * The subset of Hugging Face `tokenizers`' `tokenizer.json` format that EditEval understands, as
 * TypeScript types, and a validator that turns parsed JSON into those types (filling in the
 * format's defaults) or throws a {@link TokenizerFormatError} naming the file and the field.
 *
 * Field names keep the file's snake_case so that objects of these types can be written back out
 * as a `tokenizer.json`.
 */
import { TokenizerFormatError } from "./errors.js";

/** A pattern of `Split`, `Replace`: a literal string or an Oniguruma regex. */
export type PatternJson = { String: string } | { Regex: string };

/** An entry of `added_tokens`. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** Supported normalizers. */
export type NormalizerJson =
  | { type: "Sequence"; normalizers: NormalizerJson[] }
  | { type: "Prepend"; prepend: string }
  | { type: "Replace"; pattern: PatternJson; content: string }
  | { type: "NFC" | "NFD" | "NFKC" | "NFKD" | "Lowercase" };

/** `Split`'s `behavior` values. */
export type SplitBehavior = "Removed" | "Isolated" | "MergedWithPrevious" | "MergedWithNext" | "Contiguous";

/** Supported pre-tokenizers. */
export type PreTokenizerJson =
  | { type: "Sequence"; pretokenizers: PreTokenizerJson[] }
  | { type: "ByteLevel"; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean }
  | { type: "Split"; pattern: PatternJson; behavior: SplitBehavior; invert: boolean }
  | {
      type: "Metaspace";
      replacement: string;
      prepend_scheme: "always" | "first" | "never";
      split: boolean;
    };

/** An item of a `TemplateProcessing` template, in the object form `tokenizers` writes. */
export type TemplatePieceJson =
  { Sequence: { id: "A" | "B"; type_id: number } } | { SpecialToken: { id: string; type_id: number } };

/** Supported post-processors. */
export type PostProcessorJson =
  | { type: "Sequence"; processors: PostProcessorJson[] }
  | { type: "ByteLevel"; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean }
  | {
      type: "TemplateProcessing";
      single: TemplatePieceJson[];
      pair: TemplatePieceJson[];
      special_tokens: Record<string, { id: string; ids: number[]; tokens: string[] }>;
    }
  | { type: "RobertaProcessing" | "BertProcessing"; sep: [string, number]; cls: [string, number] };

/** Supported decoders. */
export type DecoderJson =
  | { type: "Sequence"; decoders: DecoderJson[] }
  | { type: "ByteLevel"; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean }
  | { type: "Metaspace"; replacement: string; prepend_scheme: "always" | "first" | "never"; split: boolean }
  | { type: "Replace"; pattern: PatternJson; content: string }
  | { type: "ByteFallback" }
  | { type: "Fuse" }
  | { type: "Strip"; content: string; start: number; stop: number };

/** The `BPE` model. */
export interface BpeModelJson {
  type: "BPE";
  dropout: null;
  unk_token: string | null;
  continuing_subword_prefix: null;
  end_of_word_suffix: null;
  fuse_unk: boolean;
  byte_fallback: boolean;
  ignore_merges: boolean;
  vocab: Record<string, number>;
  /** Merges in rank order (first = applied first), each as `[left, right]`. */
  merges: [string, string][];
}

/** A validated `tokenizer.json`. */
export interface TokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: NormalizerJson | null;
  pre_tokenizer: PreTokenizerJson | null;
  post_processor: PostProcessorJson | null;
  decoder: DecoderJson | null;
  model: BpeModelJson;
}

type Obj = Record<string, unknown>;

/** Validation context: the file name, for error messages. */
class Ctx {
  constructor(readonly file: string) {}
  fail(field: string, problem: string): never {
    throw new TokenizerFormatError(this.file, field, problem);
  }
  obj(v: unknown, field: string): Obj {
    if (v === null || typeof v !== "object" || Array.isArray(v))
      this.fail(field, `expected an object, got ${describe(v)}`);
    return v as Obj;
  }
  arr(v: unknown, field: string): unknown[] {
    if (!Array.isArray(v)) this.fail(field, `expected an array, got ${describe(v)}`);
    return v;
  }
  str(v: unknown, field: string): string {
    if (typeof v !== "string") this.fail(field, `expected a string, got ${describe(v)}`);
    return v;
  }
  bool(v: unknown, field: string, dflt: boolean): boolean {
    if (v === undefined || v === null) return dflt;
    if (typeof v !== "boolean") this.fail(field, `expected a boolean, got ${describe(v)}`);
    return v;
  }
  int(v: unknown, field: string): number {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      this.fail(field, `expected a non-negative integer, got ${describe(v)}`);
    }
    return v;
  }
  /** `null`/absent → null, `""` → null (the format writes both for "none"), else the string. */
  optStr(v: unknown, field: string): string | null {
    if (v === undefined || v === null) return null;
    return this.str(v, field);
  }
  type(o: Obj, field: string): string {
    return this.str(o.type, `${field}.type`);
  }
  unsupported(field: string, type: string, supported: string[]): never {
    this.fail(`${field}.type`, `unsupported type "${type}" (supported: ${supported.join(", ")})`);
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  if (typeof v === "object") return "an object";
  if (v === undefined) return "nothing (field missing)";
  return `${typeof v} ${String(v)}`;
}

function pattern(c: Ctx, v: unknown, field: string): PatternJson {
  const o = c.obj(v, field);
  if (typeof o.String === "string") return { String: o.String };
  if (typeof o.Regex === "string") return { Regex: o.Regex };
  return c.fail(field, `expected {"String": ...} or {"Regex": ...}`);
}

function normalizer(c: Ctx, v: unknown, field: string): NormalizerJson {
  const o = c.obj(v, field);
  const type = c.type(o, field);
  switch (type) {
    case "Sequence":
      return {
        type,
        normalizers: c
          .arr(o.normalizers, `${field}.normalizers`)
          .map((n, i) => normalizer(c, n, `${field}.normalizers[${i}]`)),
      };
    case "Prepend":
      return { type, prepend: c.str(o.prepend, `${field}.prepend`) };
    case "Replace":
      return {
        type,
        pattern: pattern(c, o.pattern, `${field}.pattern`),
        content: c.str(o.content, `${field}.content`),
      };
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD":
    case "Lowercase":
      return { type };
    default:
      return c.unsupported(field, type, [
        "Sequence",
        "Prepend",
        "Replace",
        "NFC",
        "NFD",
        "NFKC",
        "NFKD",
        "Lowercase",
      ]);
  }
}

const SPLIT_BEHAVIORS = ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"];

function prependScheme(c: Ctx, o: Obj, field: string): "always" | "first" | "never" {
  if (o.prepend_scheme !== undefined && o.prepend_scheme !== null) {
    const s = c.str(o.prepend_scheme, `${field}.prepend_scheme`);
    if (s !== "always" && s !== "first" && s !== "never") {
      c.fail(`${field}.prepend_scheme`, `expected "always", "first" or "never", got ${JSON.stringify(s)}`);
    }
    return s;
  }
  // Files written before `prepend_scheme` existed carry a boolean `add_prefix_space` instead.
  return c.bool(o.add_prefix_space, `${field}.add_prefix_space`, true) ? "always" : "never";
}

function metaspace(c: Ctx, o: Obj, field: string) {
  const replacement = c.str(o.replacement ?? "\u2581", `${field}.replacement`);
  if ([...replacement].length !== 1) c.fail(`${field}.replacement`, "expected a single character");
  return {
    type: "Metaspace" as const,
    replacement,
    prepend_scheme: prependScheme(c, o, field),
    split: c.bool(o.split, `${field}.split`, true),
  };
}

function byteLevel(c: Ctx, o: Obj, field: string) {
  return {
    type: "ByteLevel" as const,
    add_prefix_space: c.bool(o.add_prefix_space, `${field}.add_prefix_space`, true),
    trim_offsets: c.bool(o.trim_offsets, `${field}.trim_offsets`, true),
    use_regex: c.bool(o.use_regex, `${field}.use_regex`, true),
  };
}

function preTokenizer(c: Ctx, v: unknown, field: string): PreTokenizerJson {
  const o = c.obj(v, field);
  const type = c.type(o, field);
  switch (type) {
    case "Sequence":
      return {
        type,
        pretokenizers: c
          .arr(o.pretokenizers, `${field}.pretokenizers`)
          .map((p, i) => preTokenizer(c, p, `${field}.pretokenizers[${i}]`)),
      };
    case "ByteLevel":
      return byteLevel(c, o, field);
    case "Metaspace":
      return metaspace(c, o, field);
    case "Split": {
      const behavior = c.str(o.behavior, `${field}.behavior`);
      if (!SPLIT_BEHAVIORS.includes(behavior)) {
        c.fail(
          `${field}.behavior`,
          `expected one of ${SPLIT_BEHAVIORS.join(", ")}, got ${JSON.stringify(behavior)}`,
        );
      }
      return {
        type,
        pattern: pattern(c, o.pattern, `${field}.pattern`),
        behavior: behavior as SplitBehavior,
        invert: c.bool(o.invert, `${field}.invert`, false),
      };
    }
    default:
      return c.unsupported(field, type, ["Sequence", "ByteLevel", "Metaspace", "Split"]);
  }
}

function templatePiece(c: Ctx, v: unknown, field: string): TemplatePieceJson {
  // `tokenizers` writes the object form; the string shorthand ("$A", "$B:1", "<s>", "<s>:0") is what
  // its Python constructor accepts, and is accepted here too.
  if (typeof v === "string") {
    const m = /^(.*?)(?::(\d+))?$/s.exec(v) as RegExpExecArray;
    const name = m[1] as string;
    const typeId = m[2] === undefined ? 0 : Number(m[2]);
    if (name === "$" || name === "$A" || name === "$0") return { Sequence: { id: "A", type_id: typeId } };
    if (name === "$B" || name === "$1") return { Sequence: { id: "B", type_id: typeId } };
    return { SpecialToken: { id: name, type_id: typeId } };
  }
  const o = c.obj(v, field);
  if (o.Sequence !== undefined) {
    const s = c.obj(o.Sequence, `${field}.Sequence`);
    const id = c.str(s.id, `${field}.Sequence.id`);
    if (id !== "A" && id !== "B")
      c.fail(`${field}.Sequence.id`, `expected "A" or "B", got ${JSON.stringify(id)}`);
    return { Sequence: { id, type_id: c.int(s.type_id ?? 0, `${field}.Sequence.type_id`) } };
  }
  if (o.SpecialToken !== undefined) {
    const s = c.obj(o.SpecialToken, `${field}.SpecialToken`);
    return {
      SpecialToken: {
        id: c.str(s.id, `${field}.SpecialToken.id`),
        type_id: c.int(s.type_id ?? 0, `${field}.SpecialToken.type_id`),
      },
    };
  }
  return c.fail(field, `expected {"Sequence": ...} or {"SpecialToken": ...}`);
}

function postProcessor(c: Ctx, v: unknown, field: string): PostProcessorJson {
  const o = c.obj(v, field);
  const type = c.type(o, field);
  switch (type) {
    case "Sequence":
      return {
        type,
        processors: c
          .arr(o.processors, `${field}.processors`)
          .map((p, i) => postProcessor(c, p, `${field}.processors[${i}]`)),
      };
    case "ByteLevel":
      return byteLevel(c, o, field);
    case "TemplateProcessing": {
      const specials = c.obj(o.special_tokens ?? {}, `${field}.special_tokens`);
      const special_tokens: Record<string, { id: string; ids: number[]; tokens: string[] }> = {};
      for (const [k, sv] of Object.entries(specials)) {
        const f = `${field}.special_tokens[${JSON.stringify(k)}]`;
        const so = c.obj(sv, f);
        const ids = c.arr(so.ids, `${f}.ids`).map((x, i) => c.int(x, `${f}.ids[${i}]`));
        const tokens = c.arr(so.tokens ?? [], `${f}.tokens`).map((x, i) => c.str(x, `${f}.tokens[${i}]`));
        special_tokens[k] = { id: c.str(so.id ?? k, `${f}.id`), ids, tokens };
      }
      const single = c
        .arr(o.single, `${field}.single`)
        .map((p, i) => templatePiece(c, p, `${field}.single[${i}]`));
      const pair = c
        .arr(o.pair ?? [], `${field}.pair`)
        .map((p, i) => templatePiece(c, p, `${field}.pair[${i}]`));
      single.forEach((p, i) => {
        if ("SpecialToken" in p && special_tokens[p.SpecialToken.id] === undefined) {
          c.fail(
            `${field}.single[${i}]`,
            `special token ${JSON.stringify(p.SpecialToken.id)} is not in special_tokens`,
          );
        }
      });
      return { type, single, pair, special_tokens };
    }
    case "RobertaProcessing":
    case "BertProcessing": {
      const tok = (x: unknown, f: string): [string, number] => {
        const a = c.arr(x, f);
        if (a.length !== 2) c.fail(f, "expected [token, id]");
        return [c.str(a[0], `${f}[0]`), c.int(a[1], `${f}[1]`)];
      };
      return { type, sep: tok(o.sep, `${field}.sep`), cls: tok(o.cls, `${field}.cls`) };
    }
    default:
      return c.unsupported(field, type, [
        "Sequence",
        "ByteLevel",
        "TemplateProcessing",
        "RobertaProcessing",
        "BertProcessing",
      ]);
  }
}

function decoder(c: Ctx, v: unknown, field: string): DecoderJson {
  const o = c.obj(v, field);
  const type = c.type(o, field);
  switch (type) {
    case "Sequence":
      return {
        type,
        decoders: c
          .arr(o.decoders, `${field}.decoders`)
          .map((d, i) => decoder(c, d, `${field}.decoders[${i}]`)),
      };
    case "ByteLevel":
      return byteLevel(c, o, field);
    case "Metaspace":
      return metaspace(c, o, field);
    case "Replace":
      return {
        type,
        pattern: pattern(c, o.pattern, `${field}.pattern`),
        content: c.str(o.content, `${field}.content`),
      };
    case "ByteFallback":
    case "Fuse":
      return { type };
    case "Strip": {
      const content = c.str(o.content, `${field}.content`);
      if ([...content].length !== 1) c.fail(`${field}.content`, "expected a single character");
      return {
        type,
        content,
        start: c.int(o.start ?? 0, `${field}.start`),
        stop: c.int(o.stop ?? 0, `${field}.stop`),
      };
    }
    default:
      return c.unsupported(field, type, [
        "Sequence",
        "ByteLevel",
        "Metaspace",
        "Replace",
        "ByteFallback",
        "Fuse",
        "Strip",
      ]);
  }
}

function addedToken(c: Ctx, v: unknown, field: string): AddedTokenJson {
  const o = c.obj(v, field);
  const special = c.bool(o.special, `${field}.special`, false);
  return {
    id: c.int(o.id, `${field}.id`),
    content: c.str(o.content, `${field}.content`),
    single_word: c.bool(o.single_word, `${field}.single_word`, false),
    lstrip: c.bool(o.lstrip, `${field}.lstrip`, false),
    rstrip: c.bool(o.rstrip, `${field}.rstrip`, false),
    normalized: c.bool(o.normalized, `${field}.normalized`, !special),
    special,
  };
}

function bpeModel(c: Ctx, v: unknown, field: string): BpeModelJson {
  const o = c.obj(v, field);
  // `type` is optional in old files; a model with merges is a BPE.
  const type = o.type === undefined && o.merges !== undefined ? "BPE" : c.type(o, field);
  if (type !== "BPE") c.unsupported(field, type, ["BPE"]);
  if (o.dropout !== undefined && o.dropout !== null && o.dropout !== 0) {
    c.fail(`${field}.dropout`, "BPE dropout (random merges) is not supported; expected null");
  }
  for (const k of ["continuing_subword_prefix", "end_of_word_suffix"]) {
    if (o[k] !== undefined && o[k] !== null && o[k] !== "") {
      c.fail(
        `${field}.${k}`,
        "subword prefixes/suffixes are not supported; expected null or an empty string",
      );
    }
  }
  const vocabObj = c.obj(o.vocab, `${field}.vocab`);
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  const seen = new Map<number, string>();
  for (const [tok, id] of Object.entries(vocabObj)) {
    const f = `${field}.vocab[${JSON.stringify(tok)}]`;
    const n = c.int(id, f);
    const prev = seen.get(n);
    if (prev !== undefined) c.fail(f, `id ${n} is also used by ${JSON.stringify(prev)}`);
    seen.set(n, tok);
    vocab[tok] = n;
  }
  const merges: [string, string][] = [];
  c.arr(o.merges ?? [], `${field}.merges`).forEach((m, i) => {
    const f = `${field}.merges[${i}]`;
    let pair: [string, string];
    if (typeof m === "string") {
      const parts = m.split(" ");
      if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
        c.fail(f, `expected "left right" (two tokens separated by one space), got ${JSON.stringify(m)}`);
      }
      pair = [parts[0] as string, parts[1] as string];
    } else {
      const a = c.arr(m, f);
      if (a.length !== 2) c.fail(f, "expected a string or a [left, right] pair");
      pair = [c.str(a[0], `${f}[0]`), c.str(a[1], `${f}[1]`)];
    }
    for (const t of [pair[0], pair[1], pair[0] + pair[1]]) {
      if (vocab[t] === undefined)
        c.fail(f, `token ${JSON.stringify(t)} of merge ${JSON.stringify(pair)} is not in ${field}.vocab`);
    }
    merges.push(pair);
  });
  const unk = c.optStr(o.unk_token, `${field}.unk_token`);
  return {
    type: "BPE",
    dropout: null,
    unk_token: unk,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: c.bool(o.fuse_unk, `${field}.fuse_unk`, false),
    byte_fallback: c.bool(o.byte_fallback, `${field}.byte_fallback`, false),
    ignore_merges: c.bool(o.ignore_merges, `${field}.ignore_merges`, false),
    vocab,
    merges,
  };
}

/**
 * Validates a parsed `tokenizer.json` and returns it with defaults filled in.
 *
 * @param json the parsed file
 * @param file the file name to put in error messages
 * @throws TokenizerFormatError naming `file` and the offending field, for malformed values and for
 *   components outside the supported subset (model `BPE`; the normalizers, pre-tokenizers,
 *   post-processors and decoders listed in the types above)
 */
export function validateTokenizerJson(json: unknown, file: string): TokenizerJson {
  const c = new Ctx(file);
  const o = c.obj(json, "(root)");
  if (o.model === undefined) c.fail("model", "missing");
  const model = bpeModel(c, o.model, "model");
  const added_tokens = c
    .arr(o.added_tokens ?? [], "added_tokens")
    .map((t, i) => addedToken(c, t, `added_tokens[${i}]`));
  const tj: TokenizerJson = {
    version: typeof o.version === "string" ? o.version : "1.0",
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: o.normalizer == null ? null : normalizer(c, o.normalizer, "normalizer"),
    pre_tokenizer: o.pre_tokenizer == null ? null : preTokenizer(c, o.pre_tokenizer, "pre_tokenizer"),
    post_processor: o.post_processor == null ? null : postProcessor(c, o.post_processor, "post_processor"),
    decoder: o.decoder == null ? null : decoder(c, o.decoder, "decoder"),
    model,
  };
  if (model.unk_token !== null && model.vocab[model.unk_token] === undefined) {
    c.fail("model.unk_token", `${JSON.stringify(model.unk_token)} is not in model.vocab`);
  }
  return tj;
}

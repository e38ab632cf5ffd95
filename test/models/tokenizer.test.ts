/**
 * Tokenizer tests. Every expectation comes from an oracle independent of src/models/tokenizer:
 * - gpt2-tiny: HF `GPT2Tokenizer` ids/tokens/decodes recorded in reference.json;
 * - llama2.c stories260K (tok512.bin): llama2.c's own greedy-merge encoder, re-implemented below,
 *   plus decode round trips of the reference text;
 * - Llama-3/Qwen2-style byte-level BPE: tiny hand-built tokenizer.json files whose ids are worked
 *   out by hand in the comments;
 * - transformers/tokenizers behaviour rules stated in the comments (BOS/EOS policy, clean-up, ...).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  loadTokenizer,
  llama2cTokenizerConfig,
  llama2cTokenizerToHF,
  Tokenizer,
  TokenizerFormatError,
  TokenizerLoadError,
} from "../../src/models/tokenizer/index.js";

// ---------------------------------------------------------------------------------------------
// Paths: the repository root is the first ancestor with package.json + src/; shared data sits next
// to it (or at $EDITEVAL_SHARED).

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(d, "package.json")) && existsSync(join(d, "src"))) return d;
    d = resolve(d, "..");
  }
  throw new Error("tokenizer tests: repository root not found");
}
const SHARED = process.env.EDITEVAL_SHARED ?? resolve(repoRoot(), "..", "shared");
const GPT2_DIR = join(SHARED, "fixtures", "gpt2-tiny");
const L2C_DIR = join(SHARED, "data", "llama2c_stories260K");
const TOK512 = join(L2C_DIR, "tok512.bin");

const readJson = (p: string): unknown => JSON.parse(readFileSync(p, "utf8")) as unknown;

function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "editeval-tok-"));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// GPT-2 (gpt2-tiny fixture)

interface RefCase {
  text: string;
  ids: number[];
  tokens: string[];
  decoded: string;
}
const gpt2Cases = (): RefCase[] => {
  const ref = readJson(join(GPT2_DIR, "reference.json")) as { tokenizer: { cases: RefCase[] } };
  return ref.tokenizer.cases;
};

function checkGpt2Cases(tok: Tokenizer, what: string): void {
  const cases = gpt2Cases();
  assert.equal(cases.length, 12, "reference.json should hold 12 tokenizer cases");
  for (const c of cases) {
    const ids = tok.encode(c.text);
    assert.deepEqual(ids, c.ids, `${what}: ids of ${JSON.stringify(c.text)}`);
    assert.deepEqual(
      tok.encode(c.text, { addSpecialTokens: false }),
      c.ids,
      `${what}: ids without special tokens`,
    );
    assert.deepEqual(
      c.ids.map((i) => tok.idToToken(i)),
      c.tokens,
      `${what}: tokens of ${JSON.stringify(c.text)}`,
    );
    assert.deepEqual(
      c.tokens.map((t) => tok.tokenToId(t)),
      c.ids,
      `${what}: tokenToId of ${JSON.stringify(c.text)}`,
    );
    assert.equal(tok.decode(c.ids), c.decoded, `${what}: decode of ${JSON.stringify(c.text)}`);
  }
  // gpt2-tiny: 768 ids, <|endoftext|> = 767 is BOS and EOS, no pad token (README, tokenizer_config.json).
  assert.equal(tok.vocabSize, 768);
  assert.equal(tok.bosTokenId, 767);
  assert.equal(tok.eosTokenId, 767);
  assert.equal(tok.padTokenId, null);
  assert.equal(tok.paddingSide, "right");
  assert.equal(tok.chatTemplate, null);
  assert.equal(tok.modelMaxLength, null); // 1e30 = transformers' "no limit"
}

test("gpt2-tiny via tokenizer.json matches GPT2Tokenizer on all 12 reference cases", () => {
  checkGpt2Cases(loadTokenizer(GPT2_DIR), "tokenizer.json");
});

test("gpt2-tiny via vocab.json + merges.txt matches GPT2Tokenizer on all 12 reference cases", () => {
  withTempDir((dir) => {
    for (const f of ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]) {
      copyFileSync(join(GPT2_DIR, f), join(dir, f));
    }
    const tok = loadTokenizer(dir);
    assert.match(tok.source, /vocab\.json/);
    checkGpt2Cases(tok, "vocab.json + merges.txt");
  });
  // the same through the in-memory constructor
  const tok = Tokenizer.fromGpt2Files(
    readJson(join(GPT2_DIR, "vocab.json")),
    readFileSync(join(GPT2_DIR, "merges.txt"), "utf8"),
    {
      tokenizerConfig: readJson(join(GPT2_DIR, "tokenizer_config.json")),
      specialTokensMap: readJson(join(GPT2_DIR, "special_tokens_map.json")),
    },
  );
  checkGpt2Cases(tok, "fromGpt2Files");
});

test("gpt2 decode: skipSpecialTokens and clean_up_tokenization_spaces", () => {
  const tok = loadTokenizer(GPT2_DIR);
  const c = gpt2Cases().find((x) => x.text.includes("<|endoftext|>"));
  assert.ok(c);
  // skip_special_tokens drops the special token's text and nothing else
  assert.equal(tok.decode(c.ids, { skipSpecialTokens: true }), c.decoded.replace("<|endoftext|>", ""));
  // gpt2-tiny's tokenizer_config.json has clean_up_tokenization_spaces: true, so decode applies
  // transformers' clean_up_tokenization (" ," → ",", " ." → ".", " 's" → "'s", ...)
  const ids = tok.encode("a , b . c 's");
  assert.equal(tok.decode(ids), "a, b. c's");
  assert.equal(tok.decode(ids, { cleanUpTokenizationSpaces: false }), "a , b . c 's");
  assert.equal(tok.decode([]), "");
  // ids the tokenizer does not know are skipped, as the Rust tokenizers' decode does
  assert.equal(tok.decode([39, 100000, 68]), "He");
  assert.throws(() => tok.decode([1.5]), TypeError);
});

test("encodeBatch pads to the longest, left or right", () => {
  const tok = loadTokenizer(GPT2_DIR);
  const cases = gpt2Cases();
  const a = cases[0] as RefCase; // 5 ids
  const b = cases[3] as RefCase; // 24 ids
  const n = b.ids.length - a.ids.length;
  const left = tok.encodeBatch([a.text, b.text], { paddingSide: "left", padTokenId: 0 });
  assert.deepEqual(left.inputIds, [[...new Array<number>(n).fill(0), ...a.ids], b.ids]);
  assert.deepEqual(left.attentionMask, [
    [...new Array<number>(n).fill(0), ...new Array<number>(a.ids.length).fill(1)],
    new Array<number>(b.ids.length).fill(1),
  ]);
  const right = tok.encodeBatch([a.text, b.text], { paddingSide: "right", padTokenId: 767 });
  assert.deepEqual(right.inputIds, [[...a.ids, ...new Array<number>(n).fill(767)], b.ids]);
  assert.deepEqual(right.attentionMask, [
    [...new Array<number>(a.ids.length).fill(1), ...new Array<number>(n).fill(0)],
    new Array<number>(b.ids.length).fill(1),
  ]);
  // GPT-2 has no pad token: padding without an explicit id is an error (as in transformers)
  assert.throws(() => tok.encodeBatch([a.text, b.text]), /pad/);
  // equal lengths need no pad id
  assert.deepEqual(tok.encodeBatch([a.text, a.text]).inputIds, [a.ids, a.ids]);
});

test("added-token flags: lstrip, rstrip, single_word", () => {
  const base = readJson(join(GPT2_DIR, "tokenizer.json")) as { added_tokens: object[] };
  const vocab = readJson(join(GPT2_DIR, "vocab.json")) as Record<string, number>;
  const withMask = (flags: object) =>
    Tokenizer.fromTokenizerJson({
      ...base,
      added_tokens: [
        ...base.added_tokens,
        { id: 768, content: "<mask>", special: true, normalized: false, ...flags },
      ],
    });
  const a = vocab["a"] as number;
  const b = vocab["b"] as number;
  const sp = vocab["\u0120"] as number; // "Ġ", the byte-level symbol of " "
  // no flags: the space before the token stays in the text
  assert.deepEqual(withMask({}).encode("a <mask>"), [a, sp, 768]);
  // lstrip: the token swallows the whitespace on its left; rstrip: on its right
  assert.deepEqual(withMask({ lstrip: true }).encode("a <mask>"), [a, 768]);
  assert.deepEqual(withMask({ rstrip: true }).encode("<mask> b"), [768, b]);
  // single_word: not recognised when glued to a word character
  assert.ok(!withMask({ single_word: true }).encode("a<mask>").includes(768));
  assert.deepEqual(withMask({ single_word: true }).encode("<mask>"), [768]);
});

// ---------------------------------------------------------------------------------------------
// Llama-2 style: llama2.c's tok512.bin, converted

interface L2cVocab {
  pieces: string[];
  scores: number[];
  lookup: Map<string, number>;
}

/** Reads llama2.c's tokenizer.bin: int32 max_len, then per token float32 score, int32 len, bytes. */
function readL2cVocab(): L2cVocab {
  const buf = readFileSync(TOK512);
  const pieces: string[] = [];
  const scores: number[] = [];
  let off = 4;
  while (off < buf.length) {
    scores.push(buf.readFloatLE(off));
    const len = buf.readInt32LE(off + 4);
    pieces.push(buf.subarray(off + 8, off + 8 + len).toString("utf8"));
    off += 8 + len;
  }
  const lookup = new Map<string, number>();
  pieces.forEach((p, i) => lookup.set(p, i));
  return { pieces, scores, lookup };
}

/**
 * llama2.c's `encode` (run.c): optional BOS (1), a dummy-prefix " " token for non-empty text, one
 * token per UTF-8 character (or its bytes + 3 when the character is not a piece), then repeatedly
 * merge the adjacent pair whose concatenation is the piece with the highest score (leftmost on ties).
 * `dummyPrefix: false` leaves out the " " (the oracle for text that gets no "▁" in front).
 */
function llama2cEncode(v: L2cVocab, text: string, opts: { bos: boolean; dummyPrefix?: boolean }): number[] {
  const tokens: number[] = [];
  if (opts.bos) tokens.push(1);
  if (text !== "" && opts.dummyPrefix !== false) tokens.push(v.lookup.get(" ") as number);
  const bytes = Buffer.from(text, "utf8");
  let buf: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    if ((c & 0xc0) !== 0x80) buf = [];
    buf.push(c);
    const next = bytes[i + 1] ?? 0;
    if ((next & 0xc0) === 0x80 && buf.length < 4) continue;
    const id = v.lookup.get(Buffer.from(buf).toString("utf8"));
    if (id !== undefined) tokens.push(id);
    else for (const b of buf) tokens.push(b + 3);
    buf = [];
  }
  for (;;) {
    let best = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i + 1 < tokens.length; i++) {
      const id = v.lookup.get(
        (v.pieces[tokens[i] as number] as string) + (v.pieces[tokens[i + 1] as number] as string),
      );
      if (id !== undefined && (v.scores[id] as number) > best) {
        best = v.scores[id] as number;
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx < 0) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  return tokens;
}

const GREEDY_TEXT = (): string => readFileSync(join(L2C_DIR, "greedy_reference_output.txt"), "utf8");

/** The strings compared against llama2.c's encoder: the reference text, its lines and sentences, and hand-written ones. */
function llamaStrings(): string[] {
  const text = GREEDY_TEXT();
  const sentences = text.split(/(?<=[.!?]"?)\s+/).filter((s) => s.length > 0);
  return [
    text,
    ...text.split("\n"),
    ...sentences,
    "Hello\nworld",
    "a\n\nb\n",
    "\nstarts with a newline",
    "  two leading spaces",
    "trailing spaces   ",
    "tab\tseparated\tvalues",
    "Tom Brady plays the sport of",
    "The year 2024 had 366 days; pi is 3.14159.",
    "café, naïve, 東京, emoji 🙂!",
    "It's 7:45 — don't be late!",
    "ALL CAPS and MiXeD cAsE",
    "x",
    " ",
    "",
  ];
}

/** Llama-2's tokenizer_config.json settings for the converted tokenizer. */
const LLAMA_CONFIG = {
  bos_token: { content: "<s>", lstrip: false, normalized: false, rstrip: false, single_word: false },
  eos_token: { content: "</s>", lstrip: false, normalized: false, rstrip: false, single_word: false },
  unk_token: { content: "<unk>", lstrip: false, normalized: false, rstrip: false, single_word: false },
  pad_token: null,
  add_bos_token: true,
  add_eos_token: false,
  clean_up_tokenization_spaces: false,
  padding_side: "left",
  model_max_length: 512,
  chat_template: "{% for message in messages %}{{ message['content'] }}{% endfor %}",
  tokenizer_class: "LlamaTokenizer",
};

test("llama2c converter: vocabulary and merges follow the SentencePiece-BPE conversion rule", () => {
  const v = readL2cVocab();
  const json = llama2cTokenizerToHF(TOK512);
  const vocab = json.model.vocab;
  assert.equal(Object.keys(vocab).length, 512);
  assert.equal(v.pieces.length, 512);
  // ids kept; "▁" for " "; <s>/</s> restored; 3..258 are the byte tokens
  assert.equal(vocab["<unk>"], 0);
  assert.equal(vocab["<s>"], 1);
  assert.equal(vocab["</s>"], 2);
  assert.equal(vocab["<0x00>"], 3);
  assert.equal(vocab["<0x0A>"], 13);
  assert.equal(vocab["<0xFF>"], 258);
  v.pieces.forEach((p, i) => {
    if (i > 2) assert.equal(vocab[p.replaceAll(" ", "\u2581")], i, `piece ${i}`);
  });
  assert.equal(json.model.byte_fallback, true);
  // merges: exactly the (left, right) pairs with left, right and left+right all pieces ...
  const hf = (i: number) =>
    i === 1 ? "<s>" : i === 2 ? "</s>" : (v.pieces[i] as string).replaceAll(" ", "\u2581");
  const all = new Set(v.pieces.map((_, i) => hf(i)));
  const expected = new Set<string>();
  for (const p of all) {
    const cps = [...p];
    for (let k = 1; k < cps.length; k++) {
      const l = cps.slice(0, k).join("");
      const r = cps.slice(k).join("");
      if (all.has(l) && all.has(r)) expected.add(`${l} ${r}`);
    }
  }
  const merges = json.model.merges.map(([l, r]) => `${l} ${r}`);
  assert.equal(merges.length, expected.size);
  assert.deepEqual(new Set(merges), expected);
  // ... ranked by the score of the merged piece, higher first
  const scoreOf = (m: [string, string]) => v.scores[vocab[m[0] + m[1]] as number] as number;
  for (let i = 1; i < json.model.merges.length; i++) {
    assert.ok(
      scoreOf(json.model.merges[i - 1] as [string, string]) >=
        scoreOf(json.model.merges[i] as [string, string]),
      `merge ${i} out of order`,
    );
  }
});

test("llama2c tokenizer: ids equal llama2.c's own encoder, decode gives the text back", () => {
  const v = readL2cVocab();
  const tok = Tokenizer.fromTokenizerJson(llama2cTokenizerToHF(TOK512), { tokenizerConfig: LLAMA_CONFIG });
  const strings = llamaStrings();
  assert.ok(strings.length >= 30, `only ${strings.length} strings`);
  for (const s of strings) {
    const ids = tok.encode(s);
    assert.deepEqual(ids, llama2cEncode(v, s, { bos: true }), `ids of ${JSON.stringify(s)}`);
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), s, `round trip of ${JSON.stringify(s)}`);
  }
  // newlines have no piece: they go through the byte token <0x0A> (id 3 + 10)
  assert.equal(tok.tokenToId("<0x0A>"), 13);
  assert.ok(tok.encode("Hello\nworld").includes(13));
  assert.deepEqual(
    tok.encode("Lily's mom said, \"Lily, let's go to the park.\""),
    llama2cEncode(v, "Lily's mom said, \"Lily, let's go to the park.\"", { bos: true }),
  );
  assert.equal(tok.bosTokenId, 1);
  assert.equal(tok.eosTokenId, 2);
  assert.equal(tok.unkTokenId, 0);
  assert.equal(tok.vocabSize, 512);
  assert.equal(tok.paddingSide, "left");
  assert.equal(tok.modelMaxLength, 512);
  assert.equal(tok.chatTemplate, LLAMA_CONFIG.chat_template);
});

test("llama2c tokenizer: decoding special and byte tokens", () => {
  const tok = Tokenizer.fromTokenizerJson(llama2cTokenizerToHF(TOK512), { tokenizerConfig: LLAMA_CONFIG });
  const hi = tok.encode("Hi", { addSpecialTokens: false });
  // Llama's decoder strips one leading space after Fuse, so a kept <s> reads "<s> Hi" (as HF prints it)
  assert.equal(tok.decode([1, ...hi]), "<s> Hi");
  assert.equal(tok.decode([1, ...hi, 2], { skipSpecialTokens: true }), "Hi");
  // "東" is E6 9D B1: three byte tokens (byte + 3) decode to the character ...
  assert.equal(tok.decode([3 + 0xe6, 3 + 0x9d, 3 + 0xb1]), "東");
  // ... and a run that is not valid UTF-8 gives one U+FFFD per byte token (tokenizers' ByteFallback)
  assert.equal(tok.decode([3 + 0xe6, 3 + 0x9d]), "\uFFFD\uFFFD");
});

test("BOS/EOS: add_bos_token / add_eos_token decide; GPT-2 adds nothing", () => {
  const v = readL2cVocab();
  const json = llama2cTokenizerToHF(TOK512);
  const text = "Once upon a time";
  const body = llama2cEncode(v, text, { bos: false });
  // no tokenizer_config: the TemplateProcessing post-processor adds <s>
  assert.deepEqual(Tokenizer.fromTokenizerJson(json).encode(text), [1, ...body]);
  // add_bos_token + add_eos_token (LlamaTokenizerFast rebuilds its template from them)
  const both = Tokenizer.fromTokenizerJson(json, {
    tokenizerConfig: { ...LLAMA_CONFIG, add_eos_token: true },
  });
  assert.deepEqual(both.encode(text), [1, ...body, 2]);
  assert.deepEqual(both.encode(text, { addSpecialTokens: false }), body);
  // add_bos_token: false wins over the template
  const none = Tokenizer.fromTokenizerJson(json, {
    tokenizerConfig: { ...LLAMA_CONFIG, add_bos_token: false },
  });
  assert.deepEqual(none.encode(text), body);
  // from a checkpoint directory
  withTempDir((dir) => {
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(LLAMA_CONFIG));
    const tok = loadTokenizer(dir);
    assert.deepEqual(tok.encode(text), [1, ...body]);
    assert.deepEqual(tok.encodeBatch(["a", text], { padTokenId: 0 }).inputIds[0]?.slice(-2), [
      1,
      ...llama2cEncode(v, "a", { bos: false }),
    ]);
  });
  // the companion config of the converter: Llama-2's settings (BOS, no EOS, no clean-up on decode)
  const companion = Tokenizer.fromTokenizerJson(json, { tokenizerConfig: llama2cTokenizerConfig() });
  assert.deepEqual(companion.encode(text), [1, ...body]);
  assert.equal(companion.decode(companion.encode("Hi .")), "<s> Hi .");
  // GPT-2: add_bos_token false → nothing; true → <|endoftext|> in front (GPT2Tokenizer)
  const gpt2Json = readJson(join(GPT2_DIR, "tokenizer.json"));
  const gpt2Config = readJson(join(GPT2_DIR, "tokenizer_config.json")) as Record<string, unknown>;
  const c = gpt2Cases()[0] as RefCase;
  assert.deepEqual(loadTokenizer(GPT2_DIR).encode(c.text), c.ids);
  const withBos = Tokenizer.fromTokenizerJson(gpt2Json, {
    tokenizerConfig: { ...gpt2Config, add_bos_token: true },
  });
  assert.deepEqual(withBos.encode(c.text), [767, ...c.ids]);
});

test("Metaspace pre-tokenizer: legacy Prepend vs prepend_scheme 'first' around special tokens", () => {
  const v = readL2cVocab();
  const legacy = llama2cTokenizerToHF(TOK512);
  // the newer Llama/Mistral layout: no normalizer, Metaspace(prepend_scheme "first", split false)
  const modern = {
    ...legacy,
    normalizer: null,
    pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false },
    decoder: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false },
  };
  const a = "Once upon";
  const b = "a time";
  const bodyA = llama2cEncode(v, a, { bos: false });
  const tL = Tokenizer.fromTokenizerJson(legacy);
  const tM = Tokenizer.fromTokenizerJson(modern);
  // same result on plain text
  assert.deepEqual(tM.encode(a), [1, ...bodyA]);
  assert.deepEqual(tL.encode(a), [1, ...bodyA]);
  // after an added token, the legacy normalizer prepends "▁" again, "first" does not
  assert.deepEqual(tL.encode(`${a}</s>${b}`), [1, ...bodyA, 2, ...llama2cEncode(v, b, { bos: false })]);
  assert.deepEqual(tM.encode(`${a}</s>${b}`), [
    1,
    ...bodyA,
    2,
    ...llama2cEncode(v, b, { bos: false, dummyPrefix: false }),
  ]);
  // Metaspace decoder: drops the "▁"s of the first token, spaces elsewhere
  assert.equal(tM.decode(tM.encode(`${a} ${b}`), { skipSpecialTokens: true }), `${a} ${b}`);
  // split: true (the default) cuts before every "▁"; with SentencePiece pieces that changes nothing
  const split = Tokenizer.fromTokenizerJson({
    ...modern,
    pre_tokenizer: { ...modern.pre_tokenizer, split: true },
  });
  const t = GREEDY_TEXT();
  assert.deepEqual(split.encode(t), llama2cEncode(v, t, { bos: true }));
});

// ---------------------------------------------------------------------------------------------
// Llama-3 / Qwen2 style byte-level BPE, built by hand

/** GPT-2's bytes_to_unicode, written out again for the test. */
function byteSymbols(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = keep(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  return out;
}

const LLAMA3_REGEX = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const QWEN2_REGEX = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

/**
 * Vocabulary: byte b has id b (its bytes_to_unicode symbol); merges get ids 256.. in rank order;
 * "Ġworld" (275) is a token no merge builds; <|begin_of_text|> = 300, <|end_of_text|> = 301.
 */
function handByteLevel(opts: {
  regex: string;
  ignoreMerges: boolean;
  normalizer?: object | null;
  bos: boolean;
}): object {
  const sym = byteSymbols();
  const vocab: Record<string, number> = {};
  sym.forEach((s, b) => (vocab[s] = b));
  const G = sym[32] as string; // "Ġ"
  const C = sym[10] as string; // "Ċ"
  const merges: [string, string][] = [
    [G, "w"], //      256 Ġw
    ["o", "r"], //    257 or
    [G + "w", "or"], // 258 Ġwor
    ["h", "e"], //    259 he
    ["l", "l"], //    260 ll
    ["he", "ll"], //  261 hell
    ["hell", "o"], // 262 hello
    ["3", "4"], //    263 34
    ["1", "2"], //    264 12
    ["12", "3"], //   265 123
    ["4", "5"], //    266 45
    ["o", G], //      267 oĠ  (crosses a chunk boundary in "hello world": must never apply)
    ["M", "x"], //    268 Mx  (crosses the chunk boundary in "I'Mx")
    [C, G], //        269 ĊĠ  (crosses the boundary in "\n\n b")
    ["!", C], //      270 !Ċ
    [C, C], //        271 ĊĊ
    [G, G], //        272 ĠĠ
    [G, "b"], //      273 Ġb
    ["'", "M"], //    274 'M
  ];
  merges.forEach(([l, r], i) => (vocab[l + r] = 256 + i));
  vocab[G + "world"] = 275;
  const special = (id: number, content: string) => ({
    id,
    content,
    special: true,
    normalized: false,
    lstrip: false,
    rstrip: false,
    single_word: false,
  });
  return {
    version: "1.0",
    added_tokens: [special(300, "<|begin_of_text|>"), special(301, "<|end_of_text|>")],
    normalizer: opts.normalizer ?? null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: opts.regex }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: "Sequence",
      processors: [
        { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
        opts.bos
          ? {
              type: "TemplateProcessing",
              single: [
                { SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } },
                { Sequence: { id: "A", type_id: 0 } },
              ],
              pair: [],
              special_tokens: {
                "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [300], tokens: ["<|begin_of_text|>"] },
              },
            }
          : { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
      ],
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      byte_fallback: false,
      ignore_merges: opts.ignoreMerges,
      vocab,
      merges,
    },
  };
}

test("Llama-3-style byte-level BPE (hand-built): split regex, digit groups, ignore_merges, BOS template", () => {
  const tok = Tokenizer.fromTokenizerJson(
    handByteLevel({ regex: LLAMA3_REGEX, ignoreMerges: true, bos: true }),
    {
      tokenizerConfig: {
        bos_token: "<|begin_of_text|>",
        eos_token: "<|end_of_text|>",
        clean_up_tokenization_spaces: false,
      },
    },
  );
  const BOS = 300;
  const cases: [string, number[]][] = [
    // chunks "hello" | " world": hello = 262; "Ġworld" is in the vocab, so ignore_merges takes it whole (275)
    ["hello world", [BOS, 262, 275]],
    // chunks "123" | "45" | " " | "123" | "456" | "7": 123 = 265, 45 = 266, Ġ = 32, 456 → 45 + "6" (54), "7" = 55.
    // (Without the 3-digit groups "12345" would merge 3+4 first and give 12, 34, 5.)
    ["12345 1234567", [BOS, 265, 266, 32, 265, 266, 54, 55]],
    // (?i:'m) makes "'M" its own chunk: "I" (73) | "'M" → 274 | "x" (120); a case-sensitive regex would give "'Mx"
    ["I'Mx", [BOS, 73, 274, 120]],
    // "a" | "\n\n" (\s*[\r\n]+) → ĊĊ 271 | " b" → Ġb 273 (ĊĠ never applies)
    ["a\n\n b", [BOS, 97, 271, 273]],
    // "x" | "!\n\n" (punctuation takes the newlines) → !Ċ 270 then Ċ (10) | "y" (121)
    ["x!\n\ny", [BOS, 120, 270, 10, 121]],
    // "a" | " " | " b": \s+(?!\S) leaves the last space to the word
    ["a  b", [BOS, 97, 32, 273]],
    // trailing spaces are one chunk: ĠĠ 272
    ["x  ", [BOS, 120, 272]],
    // added tokens are split out first; the template still adds its BOS
    ["<|begin_of_text|>hello<|end_of_text|>", [BOS, BOS, 262, 301]],
    ["", [BOS]],
  ];
  for (const [text, ids] of cases) {
    assert.deepEqual(tok.encode(text), ids, `ids of ${JSON.stringify(text)}`);
    assert.deepEqual(
      tok.encode(text, { addSpecialTokens: false }),
      ids.slice(1),
      `no BOS for ${JSON.stringify(text)}`,
    );
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), text.replaceAll(/<\|[a-z_]+\|>/g, ""));
  }
  assert.equal(tok.decode([BOS, 262, 275]), "<|begin_of_text|>hello world");
  assert.equal(tok.bosTokenId, BOS);
  assert.equal(tok.eosTokenId, 301);
  assert.equal(tok.vocabSize, 302);

  // without ignore_merges, " world" goes through the merges: Ġwor (258) + l (108) + d (100)
  const noIgnore = Tokenizer.fromTokenizerJson(
    handByteLevel({ regex: LLAMA3_REGEX, ignoreMerges: false, bos: true }),
  );
  assert.deepEqual(noIgnore.encode("hello world"), [BOS, 262, 258, 108, 100]);
});

test("Qwen2-style byte-level BPE (hand-built): NFC normalizer, single digits, no BOS", () => {
  const tok = Tokenizer.fromTokenizerJson(
    handByteLevel({ regex: QWEN2_REGEX, ignoreMerges: false, normalizer: { type: "NFC" }, bos: false }),
  );
  // \p{N} alone: "12345" is five chunks, so no digit merge applies
  assert.deepEqual(tok.encode("12345"), [49, 50, 51, 52, 53]);
  // NFC turns e + U+0301 into é = C3 A9
  assert.deepEqual(tok.encode("e\u0301"), [0xc3, 0xa9]);
  assert.deepEqual(tok.encode("hello"), [262]);
  assert.equal(tok.decode([0xc3, 0xa9]), "é");
});

// ---------------------------------------------------------------------------------------------
// Config and errors

test("tokenizer_config.json / special_tokens_map.json fields", () => {
  const json = llama2cTokenizerToHF(TOK512);
  const addedTokensDecoder = {
    "0": { content: "<unk>", special: true },
    "1": { content: "<s>", special: true },
    "2": { content: "</s>", special: true },
  };
  const tok = Tokenizer.fromTokenizerJson(json, {
    tokenizerConfig: {
      ...LLAMA_CONFIG,
      pad_token: "<unk>",
      model_max_length: 1e30,
      chat_template: [
        { name: "tool_use", template: "T" },
        { name: "default", template: "D" },
      ],
      added_tokens_decoder: addedTokensDecoder,
    },
    specialTokensMap: { eos_token: { content: "<s>" } },
  });
  // transformers 4.37: with added_tokens_decoder in tokenizer_config.json, the config's tokens win
  assert.equal(tok.eosTokenId, 2);
  assert.equal(tok.padTokenId, 0);
  assert.equal(tok.modelMaxLength, null); // 1e30 is transformers' "no limit"
  assert.equal(tok.chatTemplate, "D"); // a list of named templates: the "default" one
  assert.equal(tok.paddingSide, "left");
  // padding_side "left" and pad id 0 are the encodeBatch defaults
  const batch = tok.encodeBatch(["Once upon a time", "Once"]);
  assert.deepEqual(batch.attentionMask[1]?.slice(0, 1), [0]);
  assert.equal(batch.inputIds[1]?.[0], 0);
  // legacy layout (no added_tokens_decoder): special_tokens_map.json overrides tokenizer_config.json
  const legacy = Tokenizer.fromTokenizerJson(json, {
    tokenizerConfig: LLAMA_CONFIG,
    specialTokensMap: { eos_token: { content: "<s>" }, pad_token: "</s>" },
  });
  assert.equal(legacy.eosTokenId, 1);
  assert.equal(legacy.padTokenId, 2);
});

test("errors name the directory, the file and the field", () => {
  withTempDir((dir) => {
    assert.throws(
      () => loadTokenizer(dir),
      (e: unknown) =>
        e instanceof TokenizerLoadError &&
        e.message.includes(dir) &&
        e.message.includes("tokenizer.json") &&
        e.message.includes("vocab.json") &&
        e.message.includes("merges.txt"),
    );
    const missing = join(dir, "nope");
    assert.throws(
      () => loadTokenizer(missing),
      (e: unknown) => e instanceof TokenizerLoadError && e.message.includes(missing),
    );

    const file = join(dir, "tokenizer.json");
    writeFileSync(file, "{ not json");
    assert.throws(
      () => loadTokenizer(dir),
      (e: unknown) => e instanceof TokenizerFormatError && e.message.includes(file),
    );

    const good = readJson(join(GPT2_DIR, "tokenizer.json")) as {
      model: Record<string, unknown>;
      pre_tokenizer: unknown;
    };
    const expectField = (bad: object, field: string) => {
      writeFileSync(file, JSON.stringify(bad));
      assert.throws(
        () => loadTokenizer(dir),
        (e: unknown) =>
          e instanceof TokenizerFormatError && e.message.includes(file) && e.message.includes(field),
        field,
      );
    };
    expectField({ ...good, model: { ...good.model, vocab: [1, 2] } }, "model.vocab");
    expectField({ ...good, model: { ...good.model, merges: ["h e", "no_such_token x"] } }, "model.merges[1]");
    expectField({ ...good, model: { ...good.model, type: "Unigram" } }, "model.type");
    expectField({ ...good, pre_tokenizer: { type: "Whitespace" } }, "pre_tokenizer.type");
    expectField({ ...good, added_tokens: [{ id: "x", content: "<a>" }] }, "added_tokens[0].id");
    expectField(
      {
        ...good,
        post_processor: {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: "<s>" } }],
          special_tokens: {},
        },
      },
      "post_processor.single[0]",
    );

    writeFileSync(file, JSON.stringify(good));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ padding_side: "middle" }));
    assert.throws(
      () => loadTokenizer(dir),
      (e: unknown) =>
        e instanceof TokenizerFormatError &&
        e.message.includes("tokenizer_config.json") &&
        e.message.includes("padding_side"),
    );
  });
});

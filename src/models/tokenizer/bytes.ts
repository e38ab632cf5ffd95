/**
 * Byte-level helpers shared by the tokenizer layer: GPT-2's `bytes_to_unicode` table, the
 * pre-tokenization regexes of the byte-level BPE families, and UTF-8 helpers.
 */

/**
 * GPT-2's pre-tokenization regex (also used by GPT-J, GPT-NeoX/Pythia and every `ByteLevel`
 * pre-tokenizer with `use_regex: true`). Written in the Oniguruma/`regex` syntax used by the
 * `tokenizers` JSON files (Oniguruma semantics: `\s` is Unicode White_Space).
 */
export const GPT2_SPLIT_PATTERN = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

/** Llama-3's `Split` pre-tokenizer regex (digits grouped by at most three). */
export const LLAMA3_SPLIT_PATTERN = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

/** Qwen2's `Split` pre-tokenizer regex (every digit on its own). */
export const QWEN2_SPLIT_PATTERN = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

function buildBytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const table: string[] = new Array<string>(256);
  for (const b of bs) table[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) {
      table[b] = String.fromCodePoint(256 + n);
      n++;
    }
  }
  return table;
}

/**
 * GPT-2's `bytes_to_unicode`: `BYTE_TO_UNICODE[b]` is the printable symbol that stands for byte `b`.
 * Bytes 33..126, 161..172 and 174..255 map to themselves; the others, in increasing order, map to
 * U+0100, U+0101, ...
 */
export const BYTE_TO_UNICODE: readonly string[] = buildBytesToUnicode();

/** The inverse of {@link BYTE_TO_UNICODE}: symbol → byte. */
export const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_UNICODE.map((s, b) => [s, b]));

const utf8Encoder = new TextEncoder();
const utf8LossyDecoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const utf8StrictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** UTF-8 bytes of a string. */
export function utf8Bytes(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/**
 * Decodes UTF-8, replacing each maximal invalid subsequence by U+FFFD (Rust's
 * `String::from_utf8_lossy`, Python's `errors="replace"`). A leading BOM is kept.
 */
export function utf8DecodeLossy(bytes: Uint8Array): string {
  return utf8LossyDecoder.decode(bytes);
}

/** Decodes UTF-8, or returns null when the bytes are not valid UTF-8. A leading BOM is kept. */
export function utf8DecodeStrict(bytes: Uint8Array): string | null {
  try {
    return utf8StrictDecoder.decode(bytes);
  } catch {
    return null;
  }
}

/** The byte-level symbols of a string: each UTF-8 byte mapped through {@link BYTE_TO_UNICODE}. */
export function toByteLevel(text: string): string {
  let out = "";
  for (const b of utf8Bytes(text)) out += BYTE_TO_UNICODE[b] as string;
  return out;
}

/**
 * Writes a string as a sequence of Oniguruma code-point escapes (`\x{2581}`), safe both inside and
 * outside a character class of a `tokenizers` regex.
 */
export function onigLiteral(text: string): string {
  let out = "";
  for (const ch of text) out += `\\x{${(ch.codePointAt(0) as number).toString(16)}}`;
  return out;
}

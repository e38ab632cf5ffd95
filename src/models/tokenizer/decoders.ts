/**
 * Decoders with the semantics of the Rust `tokenizers` crate: each works on the list of token
 * strings (`decode_chain`), and the results are concatenated at the end.
 */
import { UNICODE_TO_BYTE, utf8DecodeLossy, utf8DecodeStrict, utf8Bytes } from "./bytes.js";
import { compileOnigRegex } from "./lib.js";
import type { DecoderJson, PatternJson } from "./schema.js";

/** A compiled decoder: token strings in, strings out (joined by the caller). */
export type DecoderFn = (tokens: string[]) => string[];

function replacer(p: PatternJson, content: string, file: string, field: string): (s: string) => string {
  if ("String" in p) {
    const lit = p.String;
    return (s) => (lit.length === 0 ? s : s.replaceAll(lit, content));
  }
  const re = compileOnigRegex(p.Regex, file, field);
  return (s) => s.replace(re, () => content);
}

/** `<0xAB>` → 0xAB, else null. */
function byteToken(token: string): number | null {
  const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
  return m === null ? null : parseInt(m[1] as string, 16);
}

/**
 * Compiles a validated decoder spec.
 * @param file the file name for error messages (regexes that cannot be translated)
 */
export function createDecoder(spec: DecoderJson, file: string, field = "decoder"): DecoderFn {
  switch (spec.type) {
    case "Sequence": {
      const parts = spec.decoders.map((d, i) => createDecoder(d, file, `${field}.decoders[${i}]`));
      return (tokens) => parts.reduce((acc, f) => f(acc), tokens);
    }
    case "ByteLevel":
      // All tokens become one string: the bytes behind their symbols, decoded as lossy UTF-8. A token
      // with a character outside the byte alphabet (an added token like "<｜end▁of▁sentence｜>")
      // contributes its own UTF-8 bytes.
      return (tokens) => {
        const bytes: number[] = [];
        for (const t of tokens) {
          const mapped: number[] = [];
          let ok = true;
          for (const ch of t) {
            const b = UNICODE_TO_BYTE.get(ch);
            if (b === undefined) {
              ok = false;
              break;
            }
            mapped.push(b);
          }
          if (ok) for (const b of mapped) bytes.push(b);
          else for (const b of utf8Bytes(t)) bytes.push(b);
        }
        return [utf8DecodeLossy(Uint8Array.from(bytes))];
      };
    case "Metaspace": {
      // Every replacement character becomes a space, except that in the first token they are dropped
      // (unless prepend_scheme is "never"): that is what `tokenizers` does.
      const rep = spec.replacement;
      const dropInFirst = spec.prepend_scheme !== "never";
      return (tokens) => tokens.map((t, i) => t.replaceAll(rep, i === 0 && dropInFirst ? "" : " "));
    }
    case "Replace": {
      const f = replacer(spec.pattern, spec.content, file, `${field}.pattern`);
      return (tokens) => tokens.map(f);
    }
    case "ByteFallback":
      // Runs of <0xAB> tokens become the string they encode; a run that is not valid UTF-8 becomes
      // one U+FFFD per byte token.
      return (tokens) => {
        const out: string[] = [];
        let run: number[] = [];
        const flush = () => {
          if (run.length === 0) return;
          const s = utf8DecodeStrict(Uint8Array.from(run));
          if (s === null) for (let i = 0; i < run.length; i++) out.push("\uFFFD");
          else out.push(s);
          run = [];
        };
        for (const t of tokens) {
          const b = byteToken(t);
          if (b === null) {
            flush();
            out.push(t);
          } else {
            run.push(b);
          }
        }
        flush();
        return out;
      };
    case "Fuse":
      return (tokens) => [tokens.join("")];
    case "Strip": {
      const { content, start, stop } = spec;
      return (tokens) =>
        tokens.map((t) => {
          const chars = [...t];
          let a = 0;
          while (a < start && a < chars.length && chars[a] === content) a++;
          let b = chars.length;
          while (chars.length - b < stop && b > a && chars[b - 1] === content) b--;
          return chars.slice(a, b).join("");
        });
    }
  }
}

/**
 * Pre-tokenizers with the semantics of the Rust `tokenizers` crate: `ByteLevel`, `Metaspace`,
 * `Split` (all five behaviours, `invert`) and `Sequence`.
 *
 * A pre-tokenizer works on a list of pieces; each piece remembers whether it starts at offset 0
 * of the original text, which `Metaspace`'s `prepend_scheme: "first"` needs.
 */
import { GPT2_SPLIT_PATTERN, toByteLevel } from "./bytes.js";
import { compileOnigRegex } from "./lib.js";
import type { PatternJson, PreTokenizerJson, SplitBehavior } from "./schema.js";

/** A piece of text being pre-tokenized. */
export interface Piece {
  text: string;
  /** True when the piece starts at offset 0 of the text passed to `encode`. */
  atStart: boolean;
}

/** A compiled pre-tokenizer. */
export type PreTokenizerFn = (pieces: Piece[]) => Piece[];

/** One segment of a piece after matching a pattern: [start, end) in UTF-16 units, and whether it matched. */
type Segment = [number, number, boolean];

function findSegments(text: string, matcher: PatternMatcher): Segment[] {
  const segs: Segment[] = [];
  let prev = 0;
  for (const [s, e] of matcher(text)) {
    if (s > prev) segs.push([prev, s, false]);
    segs.push([s, e, true]);
    prev = e;
  }
  if (prev < text.length) segs.push([prev, text.length, false]);
  return segs;
}

/** Yields non-empty, non-overlapping matches [start, end). */
type PatternMatcher = (text: string) => Iterable<[number, number]>;

function patternMatcher(p: PatternJson, file: string, field: string): PatternMatcher {
  if ("String" in p) {
    const lit = p.String;
    return function* (text) {
      if (lit.length === 0) return;
      let i = text.indexOf(lit);
      while (i >= 0) {
        yield [i, i + lit.length];
        i = text.indexOf(lit, i + lit.length);
      }
    };
  }
  const re = compileOnigRegex(p.Regex, file, field);
  return function* (text) {
    for (const m of text.matchAll(re)) {
      if (m[0].length > 0) yield [m.index, m.index + m[0].length];
    }
  };
}

/** Applies a `Split` behaviour to the segments (delimiter = matched segment), as `tokenizers` does. */
function applyBehavior(segs: Segment[], behavior: SplitBehavior): [number, number][] {
  const out: [number, number][] = [];
  switch (behavior) {
    case "Removed":
      for (const [s, e, m] of segs) if (!m) out.push([s, e]);
      return out;
    case "Isolated":
      return segs.map(([s, e]) => [s, e]);
    case "MergedWithPrevious": {
      let prevMatch = false;
      for (const [s, e, m] of segs) {
        const last = out[out.length - 1];
        if (m && !prevMatch && last !== undefined) last[1] = e;
        else out.push([s, e]);
        prevMatch = m;
      }
      return out;
    }
    case "MergedWithNext": {
      let nextMatch = false;
      for (let i = segs.length - 1; i >= 0; i--) {
        const [s, e, m] = segs[i] as Segment;
        const last = out[out.length - 1];
        if (m && !nextMatch && last !== undefined) last[0] = s;
        else out.push([s, e]);
        nextMatch = m;
      }
      return out.reverse();
    }
    case "Contiguous": {
      let prevMatch = false;
      for (const [s, e, m] of segs) {
        const last = out[out.length - 1];
        if (m === prevMatch && last !== undefined) last[1] = e;
        else out.push([s, e]);
        prevMatch = m;
      }
      return out;
    }
  }
}

/** Splits every piece with `matcher`/`behavior`; only the first sub-piece keeps `atStart`. */
function splitPieces(
  pieces: Piece[],
  matcher: PatternMatcher,
  behavior: SplitBehavior,
  invert: boolean,
): Piece[] {
  const out: Piece[] = [];
  for (const p of pieces) {
    let segs = findSegments(p.text, matcher);
    if (invert) segs = segs.map(([s, e, m]) => [s, e, !m]);
    for (const [s, e] of applyBehavior(segs, behavior)) {
      if (e > s) out.push({ text: p.text.slice(s, e), atStart: p.atStart && s === 0 });
    }
  }
  return out;
}

let gpt2Matcher: PatternMatcher | null = null;

/**
 * Compiles a validated pre-tokenizer spec.
 * @param file the file name for error messages (regexes that cannot be translated)
 */
export function createPreTokenizer(
  spec: PreTokenizerJson,
  file: string,
  field = "pre_tokenizer",
): PreTokenizerFn {
  switch (spec.type) {
    case "Sequence": {
      const parts = spec.pretokenizers.map((p, i) =>
        createPreTokenizer(p, file, `${field}.pretokenizers[${i}]`),
      );
      return (pieces) => parts.reduce((acc, f) => f(acc), pieces);
    }
    case "Split": {
      const matcher = patternMatcher(spec.pattern, file, `${field}.pattern`);
      return (pieces) => splitPieces(pieces, matcher, spec.behavior, spec.invert);
    }
    case "ByteLevel": {
      // Rust: optionally prefix a space, split with GPT-2's regex (Oniguruma semantics, so `\s` is
      // Unicode White_Space), then map every UTF-8 byte of every piece to its byte-level symbol.
      const matcher = spec.use_regex
        ? (gpt2Matcher ??= patternMatcher({ Regex: GPT2_SPLIT_PATTERN }, "(built-in)", "ByteLevel regex"))
        : null;
      return (pieces) => {
        let ps = spec.add_prefix_space
          ? pieces.map((p) => (p.text.startsWith(" ") ? p : { text: " " + p.text, atStart: p.atStart }))
          : pieces;
        if (matcher !== null) ps = splitPieces(ps, matcher, "Isolated", false);
        return ps.map((p) => ({ text: toByteLevel(p.text), atStart: p.atStart }));
      };
    }
    case "Metaspace": {
      const rep = spec.replacement;
      const matcher = patternMatcher({ String: rep }, file, field);
      return (pieces) => {
        const ps = pieces.map((p) => {
          let text = p.text.replaceAll(" ", rep);
          const prepend = spec.prepend_scheme === "always" || (spec.prepend_scheme === "first" && p.atStart);
          if (prepend && !text.startsWith(rep)) text = rep + text;
          return { text, atStart: p.atStart };
        });
        return spec.split ? splitPieces(ps, matcher, "MergedWithNext", false) : ps;
      };
    }
  }
}

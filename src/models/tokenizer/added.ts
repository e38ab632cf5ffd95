/**
 * Splitting added tokens (`<|endoftext|>`, `<s>`, ...) out of a text before the BPE, with the
 * semantics of the Rust `tokenizers` `AddedVocabulary`: leftmost-longest matching, then
 * `single_word` (skip a match glued to a word character), `lstrip` / `rstrip` (the match swallows
 * the whitespace on that side).
 */

/** An added token as the splitter needs it. */
export interface SplitToken {
  id: number;
  /** The string to look for (for `normalized` tokens: the content after normalization). */
  match: string;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
}

/** A part of the text: plain text (`id` null) or an added token. `start` is the offset in the input. */
export interface SplitPart {
  id: number | null;
  text: string;
  start: number;
}

interface TrieNode {
  next: Map<string, TrieNode>;
  token: SplitToken | null;
}

// Rust's `char::is_alphanumeric() || c == '_'`
const WORD_CHAR = /[\p{Alphabetic}\p{Nd}\p{Nl}\p{No}_]/u;
const WHITESPACE = /\p{White_Space}/u;

function isWordChar(ch: string | undefined): boolean {
  return ch !== undefined && WORD_CHAR.test(ch);
}

function lastChar(text: string, end: number): string | undefined {
  if (end <= 0) return undefined;
  const cp = text.codePointAt(end - 1) as number;
  // a low surrogate: take the whole pair
  if (cp >= 0xdc00 && cp <= 0xdfff && end >= 2)
    return String.fromCodePoint(text.codePointAt(end - 2) as number);
  return String.fromCodePoint(cp);
}

/** Finds added tokens in text (leftmost-longest, like Aho-Corasick `LeftmostLongest`). */
export class AddedTokenSplitter {
  private readonly root: TrieNode = { next: new Map(), token: null };
  readonly size: number;

  constructor(tokens: SplitToken[]) {
    let n = 0;
    for (const t of tokens) {
      if (t.match.length === 0) continue;
      let node = this.root;
      for (const ch of t.match) {
        let child = node.next.get(ch);
        if (child === undefined) {
          child = { next: new Map(), token: null };
          node.next.set(ch, child);
        }
        node = child;
      }
      if (node.token === null) n++;
      node.token ??= t;
    }
    this.size = n;
  }

  /** The longest token starting at `pos`, or null. */
  private longestAt(text: string, pos: number): SplitToken | null {
    let node: TrieNode | undefined = this.root;
    let best: SplitToken | null = null;
    let i = pos;
    while (node !== undefined && i < text.length) {
      const cp = text.codePointAt(i) as number;
      const ch = String.fromCodePoint(cp);
      node = node.next.get(ch);
      i += ch.length;
      if (node?.token) best = node.token;
    }
    return best;
  }

  /**
   * Splits `text` into plain parts and added-token parts. Plain parts are never empty.
   * @param offset added to every `start` (the position of `text` in the caller's text)
   */
  split(text: string, offset = 0): SplitPart[] {
    if (this.size === 0 || text.length === 0)
      return text.length === 0 ? [] : [{ id: null, text, start: offset }];
    const parts: SplitPart[] = [];
    let plainStart = 0; // start of the pending plain text
    let pos = 0;
    while (pos < text.length) {
      const tok = this.longestAt(text, pos);
      if (tok === null) {
        pos += (text.codePointAt(pos) as number) > 0xffff ? 2 : 1;
        continue;
      }
      let start = pos;
      let stop = pos + tok.match.length;
      if (
        tok.singleWord &&
        (isWordChar(lastChar(text, start)) || isWordChar(String.fromCodePoint(text.codePointAt(stop) ?? 32)))
      ) {
        // like Aho-Corasick's find_iter, the search resumes after the skipped match
        pos = stop;
        continue;
      }
      if (tok.lstrip) {
        while (start > plainStart && WHITESPACE.test(text[start - 1] as string)) start--;
      }
      if (tok.rstrip) {
        while (stop < text.length && WHITESPACE.test(text[stop] as string)) stop++;
      }
      if (start > plainStart)
        parts.push({ id: null, text: text.slice(plainStart, start), start: offset + plainStart });
      parts.push({ id: tok.id, text: text.slice(start, stop), start: offset + start });
      plainStart = stop;
      pos = stop;
    }
    if (plainStart < text.length)
      parts.push({ id: null, text: text.slice(plainStart), start: offset + plainStart });
    return parts;
  }
}

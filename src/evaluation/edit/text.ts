/**
 * Text metrics over generated text: NLTK-style word tokenisation, n-gram entropy (ROME's and EasyEdit's
 * "fluency") and TF-IDF cosine similarity (ROME's reference consistency).
 */

// Python's \w for str: letters, digits (all Unicode numerics) and underscore.
const W = "[\\p{L}\\p{N}_]";

/** A few English abbreviations after which a period does not end a sentence (Punkt learns these). */
const ABBREVIATIONS = new Set(
  (
    "mr mrs ms dr prof sr jr st mt ft vs etc inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec " +
    "no gen col lt sgt capt gov rev hon fig e.g i.e u.s u.k a.m p.m ph.d approx dept est vol"
  ).split(" "),
);

/**
 * Sentence splitting in the spirit of NLTK's Punkt (English): a token ending in ".", "?" or "!" (closing
 * quotes or brackets may follow) ends a sentence when whitespace follows, unless it is a known
 * abbreviation, a single-letter initial, a word with inner periods ("U.S."), or an ellipsis followed by a
 * lower-case word. Punkt's learned parameters (abbreviation list, collocations, orthographic context) are
 * not available here, so this is an approximation; it matters to n-gram entropy only through whether a
 * final "." becomes its own token.
 */
export function sentTokenize(text: string): string[] {
  const out: string[] = [];
  const re = /\S+/gu;
  let start = 0;
  let m: RegExpExecArray | null;
  const tokens: { text: string; end: number }[] = [];
  while ((m = re.exec(text)) !== null) tokens.push({ text: m[0], end: m.index + m[0].length });
  for (let i = 0; i < tokens.length - 1; i++) {
    const t = (tokens[i] as { text: string }).text;
    const core = t.replace(/["'\])}»”’]+$/u, "");
    if (!/[.?!]$/.test(core)) continue;
    const next = (tokens[i + 1] as { text: string }).text;
    if (core.endsWith(".")) {
      const word = core.slice(0, -1).replace(/^["'([{«“‘]+/u, "");
      if (/\.\.$/.test(core) && /^\p{Ll}/u.test(next)) continue; // ellipsis inside a sentence
      if (ABBREVIATIONS.has(word.toLowerCase())) continue;
      if (/^\p{L}$/u.test(word)) continue; // an initial
      if (/^(\p{L}\.)+\p{L}$/u.test(word)) continue; // U.S.
      if (/^\d+$/.test(word) && /^\p{Ll}/u.test(next)) continue; // "3. item" lists, ordinals
    }
    const end = (tokens[i] as { end: number }).end;
    out.push(text.slice(start, end).trim());
    start = end;
  }
  const rest = text.slice(start).trim();
  if (rest) out.push(rest);
  return out;
}

type Rule = [RegExp, string];

const STARTING_QUOTES: Rule[] = [
  [/([«“‘„]|`+)/gu, " $1 "],
  [/^"/u, "``"],
  [/(``)/gu, " $1 "],
  [/([ ([{<])("|'')/gu, "$1 `` "],
  [new RegExp(`(?<!${W})(')(?!(?:re|ve|ll|m|t|s|d|n)(?!${W}))(?=${W})`, "giu"), "$1 "],
];

const PUNCTUATION: Rule[] = [
  [/([^.])(\.)([\])}>"'»”’ ]*)\s*$/u, "$1 $2 $3 "],
  [/([:,])([^\d])/gu, " $1 $2"],
  [/([:,])$/u, " $1 "],
  [/\.{2,}/gu, " $& "],
  [/[;@#$%&]/gu, " $& "],
  [/[\u2012-\u2015]/gu, " $& "],
  [/([^.])(\.)([\])}>"']*)\s*$/u, "$1 $2$3 "],
  [/[?!]/gu, " $& "],
  [/([^'])' /gu, "$1 ' "],
  [/[*]/gu, " $& "],
];

const PARENS: Rule = [/[\][(){}<>]/gu, " $& "];
const DOUBLE_DASHES: Rule = [/--/gu, " -- "];

const ENDING_QUOTES: Rule[] = [
  [/([»”’])/gu, " $1 "],
  [/''/gu, " '' "],
  [/"/gu, " '' "],
  [/\s+/gu, " "],
  [/([^' ])('[sS]|'[mM]|'[dD]|') /gu, "$1 $2 "],
  [/([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) /gu, "$1 $2 "],
];

const CONTRACTIONS: RegExp[] = [
  /\b(can)(not)\b/giu,
  /\b(d)('ye)\b/giu,
  /\b(gim)(me)\b/giu,
  /\b(gon)(na)\b/giu,
  /\b(got)(ta)\b/giu,
  /\b(lem)(me)\b/giu,
  /\b(more)('n)\b/giu,
  /\b(wan)(na)(?=\s)/giu,
  / ('t)(is)\b/giu,
  / ('t)(was)\b/giu,
];

/** Applies a rule with Python re.sub semantics (global for every rule except anchored ones). */
function sub(text: string, [re, rep]: Rule): string {
  return text.replace(re, rep);
}

/**
 * NLTK's improved Treebank word tokenizer (nltk/tokenize/destructive.py, NLTKWordTokenizer.tokenize) on
 * one sentence: starting quotes, punctuation, brackets, double dashes, ending quotes and contractions,
 * then a split on whitespace. Reimplemented from its rules.
 */
export function treebankTokenize(sentence: string): string[] {
  let t = sentence;
  for (const r of STARTING_QUOTES) t = sub(t, r);
  for (const r of PUNCTUATION) t = sub(t, r);
  t = sub(t, PARENS);
  t = sub(t, DOUBLE_DASHES);
  t = " " + t + " ";
  for (const r of ENDING_QUOTES) t = sub(t, r);
  for (const re of CONTRACTIONS) t = t.replace(re, " $1 $2 ");
  return t.split(/\s+/u).filter((x) => x.length > 0);
}

/** nltk.word_tokenize: sentence split (see sentTokenize), then the Treebank tokenizer on each sentence. */
export function wordTokenize(text: string): string[] {
  return sentTokenize(text).flatMap(treebankTokenize);
}

/** Entropy in bits of the n-gram frequency distribution of a token list (0 when there are no n-grams). */
export function nGramEntropyOf(tokens: string[], n: number): number {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join("\u0000");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const total = tokens.length - n + 1;
  if (total <= 0) return 0;
  let h = 0;
  for (const c of counts.values()) {
    const p = c / total;
    h -= (p * Math.log(p)) / Math.log(2);
  }
  return h;
}

/**
 * ROME's compute_n_gram_entropy (experiments/py/eval_utils_counterfact.py; identical in EasyEdit's
 * easyeditor/evaluate/evaluate_utils.py): word_tokenize, then the arithmetic mean of
 * (2/3)·H2 and (4/3)·H3, i.e. H2/3 + 2·H3/3, entropies in bits.
 */
export function computeNGramEntropy(text: string): number {
  const words = wordTokenize(text);
  const h2 = nGramEntropyOf(words, 2);
  const h3 = nGramEntropyOf(words, 3);
  return (h2 * (2 / 3) + h3 * (4 / 3)) / 2;
}

/** ROME's / EasyEdit's n_gram_entropy(gen_texts): the arithmetic mean over texts (NaN for none). */
export function nGramEntropy(texts: string[]): number {
  if (texts.length === 0) return NaN;
  return texts.reduce((s, t) => s + computeNGramEntropy(t), 0) / texts.length;
}

/**
 * ROME's post-processing of a generated text (util/generate.py generate_fast): NFKD normalisation,
 * "\n\n" → " ", "<|endoftext|>" removed.
 */
export function cleanGeneratedText(text: string): string {
  return text.normalize("NFKD").replaceAll("\n\n", " ").replaceAll("<|endoftext|>", "");
}

/** sklearn's default analyzer: lower-case, tokens of two or more word characters ((?u)\b\w\w+\b). */
export function tfidfTerms(doc: string): string[] {
  return doc.toLowerCase().match(new RegExp(`${W}{2,}`, "gu")) ?? [];
}

/**
 * A TF-IDF vectorizer with sklearn TfidfVectorizer's defaults (as ROME's dsets/tfidf_stats.py uses it):
 * raw term counts, smooth idf ln((1 + n) / (1 + df)) + 1, L2-normalised vectors; terms outside the
 * fitted vocabulary are ignored.
 */
export class TfidfVectorizer {
  readonly idf = new Map<string, number>();
  readonly numDocs: number;

  constructor(docs: string[]) {
    const df = new Map<string, number>();
    for (const d of docs) for (const t of new Set(tfidfTerms(d))) df.set(t, (df.get(t) ?? 0) + 1);
    this.numDocs = docs.length;
    for (const [t, k] of df) this.idf.set(t, Math.log((1 + docs.length) / (1 + k)) + 1);
  }

  /** The L2-normalised TF-IDF vector of a document (sparse). */
  transform(doc: string): Map<string, number> {
    const v = new Map<string, number>();
    for (const t of tfidfTerms(doc)) {
      const idf = this.idf.get(t);
      if (idf === undefined) continue;
      v.set(t, (v.get(t) ?? 0) + idf);
    }
    let norm = 0;
    for (const x of v.values()) norm += x * x;
    norm = Math.sqrt(norm);
    if (norm > 0) for (const [k, x] of v) v.set(k, x / norm);
    return v;
  }

  /**
   * ROME's tfidf_similarity (experiments/py/eval_utils_counterfact.py): the cosine of the two documents'
   * TF-IDF vectors; NaN when either has no in-vocabulary term (0/0, as numpy gives).
   */
  similarity(a: string, b: string): number {
    const va = this.transform(a);
    const vb = this.transform(b);
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (const [k, x] of va) {
      na += x * x;
      const y = vb.get(k);
      if (y !== undefined) dot += x * y;
    }
    for (const y of vb.values()) nb += y * y;
    return dot / Math.sqrt(na) / Math.sqrt(nb);
  }
}

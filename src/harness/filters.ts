/**
 * lm-evaluation-harness's answer filters (lm_eval/filters/: regex, take_first, remove_whitespace,
 * lowercase, uppercase) over one document's responses, and the translation of the Python regexes the
 * task configs use into JavaScript ones.
 */

/**
 * A Python `re` pattern as a JavaScript RegExp: leading inline flags (`(?s)`, `(?i)`, `(?m)`) become
 * flags, `(?P<name>` becomes `(?<name>`, `\Z` becomes end of input. Everything else the configs use
 * (classes, lazy quantifiers, look-behind) means the same in both.
 */
export function pyRegex(pattern: string, flags = ""): RegExp {
  let p = pattern;
  const f = new Set(flags);
  for (;;) {
    const m = /^\(\?([aiLmsux]+)\)/.exec(p);
    if (!m) break;
    for (const c of m[1] as string) if ("ims".includes(c)) f.add(c);
    p = p.slice(m[0].length);
  }
  p = p.replace(/\(\?P</g, "(?<").replace(/\\Z/g, "(?![\\s\\S])");
  return new RegExp(p, [...f].join(""));
}

/**
 * Python's re.findall: every non-overlapping match, as the whole match (no groups), the one group's
 * text (one group) or the tuple of groups (several); unmatched groups are "".
 */
export function findall(pattern: RegExp, text: string): (string | string[])[] {
  const re = new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g");
  const out: (string | string[])[] = [];
  for (const m of text.matchAll(re)) {
    const groups = m.slice(1).map((g) => g ?? "");
    out.push(groups.length === 0 ? m[0] : groups.length === 1 ? (groups[0] as string) : groups);
  }
  return out;
}

export type FilterStep =
  | { function: "regex"; regex_pattern: string; group_select?: number; fallback?: string }
  | { function: "take_first" }
  | { function: "remove_whitespace" }
  | { function: "lowercase" }
  | { function: "uppercase" };

/** A named filter pipeline ("strict-match", "flexible-extract", "get-answer", "none", ...). */
export interface FilterPipeline {
  name: string;
  filter: FilterStep[];
}

/** The pipeline every task without filters gets: take the first response. */
export const NONE_FILTER: FilterPipeline = { name: "none", filter: [{ function: "take_first" }] };

/** RegexFilter.apply on one response: findall, pick group_select, first non-empty group of a tuple, strip. */
export function regexExtract(text: string, pattern: string, groupSelect = 0, fallback = "[invalid]"): string {
  const matches = findall(pyRegex(pattern), text);
  if (matches.length === 0) return fallback;
  const idx = groupSelect < 0 ? matches.length + groupSelect : groupSelect;
  let m = matches[idx];
  if (m === undefined) throw new Error(`regex filter: group_select ${groupSelect} out of range`);
  if (Array.isArray(m)) {
    const nonEmpty = m.filter((s) => s.length > 0);
    m = nonEmpty.length > 0 ? (nonEmpty[0] as string) : fallback;
  }
  return pyStrip(m);
}

/** Python's str.strip() (whitespace on both ends). */
export function pyStrip(s: string): string {
  return s.replace(/^\s+|\s+$/gu, "");
}

/** Runs a pipeline over one document's responses and returns the filtered response. */
export function applyFilter(pipeline: FilterPipeline, responses: string[]): string {
  let rs: string[] = responses;
  for (const step of pipeline.filter) {
    switch (step.function) {
      case "regex":
        rs = rs.map((r) =>
          regexExtract(r, step.regex_pattern, step.group_select ?? 0, step.fallback ?? "[invalid]"),
        );
        break;
      case "take_first":
        rs = rs.slice(0, 1);
        break;
      case "remove_whitespace":
        rs = rs.map(pyStrip);
        break;
      case "lowercase":
        rs = rs.map((r) => r.toLowerCase());
        break;
      case "uppercase":
        rs = rs.map((r) => r.toUpperCase());
        break;
    }
  }
  return rs[0] ?? "";
}

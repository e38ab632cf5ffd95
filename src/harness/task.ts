/**
 * Tasks as data, as lm-evaluation-harness defines them (lm_eval/api/task.py ConfigurableTask): a
 * document source, a prompt template (doc_to_text), the answer (doc_to_target, doc_to_choice), the
 * delimiters, the few-shot source and sampler, the request type with its generation arguments,
 * answer filters and metrics. Templates are written as functions; the harness's Jinja text is kept
 * beside them (`templates`) and written into the results' `configs`.
 */
import type { GenerationKwargs } from "./lm.js";
import type { FilterPipeline } from "./filters.js";
import type { Aggregation, ExactMatchOptions } from "./metrics.js";
import { PyRandom } from "./pyrandom.js";

export type OutputType = "multiple_choice" | "generate_until" | "loglikelihood" | "loglikelihood_rolling";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Doc = Record<string, any>;

export interface MetricSpec {
  metric: string;
  aggregation?: Aggregation;
  higher_is_better?: boolean;
  /** exact_match's options */
  kwargs?: ExactMatchOptions;
}

export type Target = number | string | number[] | string[];

export interface TaskDef<D extends Doc = Doc> {
  task: string;
  version: number;
  alias?: string;
  tag?: string[];
  /** the Hugging Face dataset the harness reads (for configs) and the local files read instead */
  dataset: { path: string; name?: string; files: string[]; note?: string; sha256?: string };
  outputType: OutputType;
  testSplit: string;
  description?: string;
  docToText(doc: D): string;
  docToTarget(doc: D): Target;
  docToChoice?(doc: D): string[];
  /** the harness's templates (Jinja), for the configs JSON */
  templates: { doc_to_text: string; doc_to_target: string; doc_to_choice?: unknown };
  targetDelimiter: string;
  fewshotDelimiter: string;
  numFewshot: number;
  fewshot?: {
    sampler: "first_n" | "default";
    split: string;
    docs(): D[];
    /** the few-shot pool is the evaluation split: the document itself is left out */
    sameAsTest?: boolean;
  };
  generationKwargs?: GenerationKwargs;
  /** per-document generation arguments (over generationKwargs), for files whose items carry their own */
  docGenerationKwargs?(doc: D): GenerationKwargs;
  /** the answer of a few-shot example when it differs from the scored target (a worked answer) */
  fewshotTarget?(doc: D): string;
  filters?: FilterPipeline[];
  metrics: MetricSpec[];
  /** a task's own answer extraction for generations (instead of filters; its filter is named extractName) */
  extract?(doc: D, response: string): string;
  /** the filter name of extract's results (default "extract") */
  extractName?: string;
  /**
   * a prompt rule that needs the tokenizer (chain-of-thought-hub's MMLU drops exemplars while the
   * prompt is too long): the built context, a token counter (no special tokens) and the model's length
   */
  fitContext?(context: string, countTokens: (s: string) => number, maxTokens: number): string;
  /** a task's own per-document metrics (the harness's process_results) */
  processResults?(doc: D, results: DocResponse): Record<string, number>;
  docs(): D[];
}

/** The model's answers to one document's requests. */
export type DocResponse =
  | { kind: "choices"; lls: number[]; isGreedy: boolean[] }
  | { kind: "generation"; text: string; filtered: string }
  | { kind: "loglikelihood"; logprob: number; isGreedy: boolean }
  | { kind: "rolling"; logprob: number };

/** The answer text of a few-shot example (build_qa_turn: c[a] for an index, a[0] for a list). */
export function answerText(task: TaskDef, doc: Doc): string {
  if (task.fewshotTarget) return task.fewshotTarget(doc);
  const a = task.docToTarget(doc);
  const c = task.docToChoice?.(doc);
  if (c && typeof a === "number") return c[a] as string;
  if (Array.isArray(a)) return String(a[0]);
  return String(a);
}

/**
 * A few-shot sampler as the harness's (lm_eval/api/samplers.py): first_n takes the pool's first n
 * (without the document itself); default draws Random(seed).sample(pool, n) (n + 1 without the
 * document when the pool is the evaluation split), the generator advancing document after document.
 */
export class FewshotSampler {
  private readonly rnd: PyRandom;

  constructor(
    readonly sampler: "first_n" | "default",
    readonly pool: Doc[],
    seed: number,
  ) {
    this.rnd = new PyRandom(seed);
  }

  sample(n: number, evalDoc: Doc | null): Doc[] {
    if (n === 0) return [];
    if (this.sampler === "first_n") {
      const out: Doc[] = [];
      for (const d of this.pool) {
        if (out.length === n) break;
        if (!evalDoc || !sameDoc(d, evalDoc)) out.push(d);
      }
      if (out.length < n)
        throw new Error(`num_fewshot ${n} exceeds the ${out.length} few-shot examples available`);
      return out;
    }
    if (this.pool.length === 0) throw new Error("no documents available for few-shot sampling");
    if (!evalDoc) return this.rnd.sample(this.pool, n);
    return this.rnd
      .sample(this.pool, Math.min(n + 1, this.pool.length))
      .filter((d) => !sameDoc(d, evalDoc))
      .slice(0, n);
  }
}

/** The harness compares documents by value (dict equality). */
function sameDoc(a: Doc, b: Doc): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

const endsWithSpace = (s: string): boolean => /\s/u.test(s.slice(-1));
const startsWithSpace = (s: string): boolean => /^\s/u.test(s);

/** lm-eval's maybe_delimit: prefix + delimiter + suffix, without the delimiter when either has whitespace at the join. */
export function maybeDelimit(
  prefix: string | undefined,
  suffix: string | undefined,
  delimiter = " ",
): string {
  if (!prefix) return suffix ?? "";
  if (!suffix) return prefix;
  return endsWithSpace(prefix) || startsWithSpace(suffix) ? prefix + suffix : prefix + delimiter + suffix;
}

/** The system prompt (lm-eval's): the system instruction and the task's description, joined by the few-shot delimiter. */
export function systemPrompt(task: TaskDef, systemInstruction?: string): string {
  return maybeDelimit(systemInstruction, task.description ?? "", task.fewshotDelimiter);
}

/**
 * The harness's plain-text prompt: the system prompt (the description, after the system instruction
 * when one is given), then each example and its answer, then the document.
 */
export function buildContext(task: TaskDef, doc: Doc, examples: Doc[], systemInstruction?: string): string {
  let s = systemPrompt(task, systemInstruction);
  for (const ex of examples)
    s += task.docToText(ex) + task.targetDelimiter + answerText(task, ex) + task.fewshotDelimiter;
  return s + task.docToText(doc);
}

/** The gold answer(s) for generate_until metrics (a choice index becomes its text; lists stay lists). */
export function generationGold(task: TaskDef, doc: Doc): string | string[] {
  const g = task.docToTarget(doc);
  const c = task.docToChoice?.(doc);
  if (c && typeof g === "number") return c[g] as string;
  if (Array.isArray(g)) return g.map(String);
  return String(g);
}

/** The gold index or indices of a multiple-choice document (a string target is looked up in the choices). */
export function choiceGold(task: TaskDef, doc: Doc): number | number[] {
  const g = task.docToTarget(doc);
  const choices = task.docToChoice?.(doc) ?? [];
  const idx = (x: number | string): number =>
    typeof x === "number" ? x : choices.indexOf(x) >= 0 ? choices.indexOf(x) : -100;
  return Array.isArray(g) ? (g as (number | string)[]).map(idx) : idx(g);
}

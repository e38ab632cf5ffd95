/**
 * The generation-based protocol of chain-of-thought-hub (FranxYao/chain-of-thought-hub @ d8f0f8b), the
 * one Li et al. 2024 ("Should We Really Edit Language Models?") score their general benchmarks with,
 * as tasks beside the lm-evaluation-harness ones. Every rule is read from
 * ../shared/data/cot_hub/PROMPT_FACTS.md:
 *
 * - `mmlu_cot_hub` (group, micro average = the script's ACC-all) and `mmlu_cot_hub_<subject>` x 57:
 *   MMLU/run_mmlu_open_source.py. Header with format_subject's double space, the first 5 dev rows as
 *   exemplars ("\n{L}. {choice}" x 4, "\nAnswer:", " {answer}\n\n"), the test question ending at
 *   "Answer:"; exemplars dropped from the front (split on "\n\n", pop(1)) while tokens + 1 > 2048;
 *   greedy, 1 new token, BOS as the tokenizer adds it; prediction = the last character of
 *   decode(prompt + new token), compared case-sensitively with the gold letter. Cells pandas reads as
 *   NaN ("None", "NA", "", ...) are written "nan", as the script's str.format does.
 * - `gsm8k_cot_hub`: gsm8k/lib_prompt/prompt_original.txt + "\nQuestion: " + q + "\n"; 256 new tokens;
 *   the output cut after the first line containing "answer is"; the last `\d*\.?\d+` of it equal (as a
 *   string) to the last one of the gold answer ("1,000" reads "000"); no number is wrong. Generation
 *   stops once such a line is complete (what follows never counts).
 * - `bbh_cot_hub` (group, mean over tasks) and `bbh_cot_hub_<task>` x 27: BBH/lib_prompt/<task>.txt
 *   (our cot-prompts without the canary lines) + "\n\nQ: " + input + "\nA: Let's think step by step.";
 *   256 new tokens, no stop string (the answer is read after the LAST "answer is ", so nothing can be
 *   cut early); multiple-choice: the first "(A)".."(Z)" present, compared with target[1]; free-form:
 *   one trailing "." dropped, compared with target. No "answer is": the whole output is compared.
 * - `csqa_cot_hub`: research/complexity_based_prompting/csqa: prompt_original.txt (verbatim, the fox
 *   exemplar's slip included) + "\nQ: " + stem + "\nAnswer Choices:\n" + "(x) text\n" x 5 + "A:"; 256
 *   new tokens; prediction = the character after the FIRST "(" of the output, against answerKey
 *   lower-cased. The original-prompt notebook has no rule for an output without "(" (it raises); we
 *   take the notebook's simple/complex-prompt fallback 'a'. Generation stops once "(" and one more
 *   character are out.
 * - `commonsense_qa`: lm-evaluation-harness's commonsense_qa/default.yaml (version 0.0): "Question:
 *   {question}\nA. ..\nE. ..\nAnswer:", choices " A".." E" by log-likelihood, acc, 0-shot, validation
 *   (= the official dev_rand_split.jsonl, 1,221), few-shot from train.
 *
 * Each generation task also reports `muted` (evaluate.ts): the share of empty or whitespace-only outputs.
 */
import type { GroupDef } from "../registry.js";
import type { Doc, DocResponse, TaskDef } from "../task.js";
import { dataFile, readCsv, readJsonl, readText } from "../data.js";
import { MMLU_SUBJECTS } from "./mmlu.js";
import { BBH_SUBTASKS, type BbhDoc } from "./bbh.js";

export const COT_HUB_COMMIT = "d8f0f8bd9189f24b5e4cc6b19eb8a7689db42651";
const REPO = "FranxYao/chain-of-thought-hub";

// ------------------------------------------------------------------------------------------------
// MMLU (answer only)
// ------------------------------------------------------------------------------------------------

/** pandas.read_csv's default NA strings: such a cell becomes NaN, which str.format writes "nan". */
const PANDAS_NA = new Set([
  "",
  "#N/A",
  "#N/A N/A",
  "#NA",
  "-1.#IND",
  "-1.#QNAN",
  "-NaN",
  "-nan",
  "1.#IND",
  "1.#QNAN",
  "<NA>",
  "N/A",
  "NA",
  "NULL",
  "NaN",
  "None",
  "n/a",
  "nan",
  "null",
]);

/** A CSV cell as `"{}".format(df.iloc[i, j])` writes it (the MMLU files have no all-number columns). */
export function pandasCell(s: string): string {
  return PANDAS_NA.has(s) ? "nan" : s;
}

export interface MmluCotHubDoc extends Doc {
  question: string;
  choices: string[];
  answer: string;
}

/** format_subject: " " + each "_"-separated word (hence "about  abstract algebra."). */
export function formatSubject(subject: string): string {
  return subject
    .split("_")
    .map((w) => " " + w)
    .join("");
}

/** format_example: question, "\n{L}. {choice}" for A-D, "\nAnswer:" (+ " {answer}\n\n" for exemplars). */
export function mmluCotHubExample(d: MmluCotHubDoc, includeAnswer: boolean): string {
  let s = d.question;
  d.choices.forEach((c, j) => (s += `\n${"ABCD"[j]}. ${c}`));
  s += "\nAnswer:";
  if (includeAnswer) s += ` ${d.answer}\n\n`;
  return s;
}

/**
 * The script's length cap: while len(tokenize(prompt)) + 1 > maxTokens, split on "\n\n" and drop
 * element 1 (the first remaining exemplar). Stops when nothing but the header and the question are left.
 */
export function capMmluPrompt(prompt: string, countTokens: (s: string) => number, maxTokens = 2048): string {
  let p = prompt;
  while (countTokens(p) + 1 > maxTokens) {
    const parts = p.split("\n\n");
    if (parts.length <= 2) break; // the script would loop forever; the harness left-truncates the rest
    parts.splice(1, 1);
    p = parts.join("\n\n");
  }
  return p;
}

/** The last character (code point) of decode(prompt + generated): the prompt ends with "Answer:". */
export function mmluCotHubPrediction(generated: string, prompt = "Answer:"): string {
  const chars = Array.from(prompt + generated);
  return chars[chars.length - 1] ?? "";
}

function readMmluSplit(dataDir: string | undefined, subject: string, split: "test" | "dev"): MmluCotHubDoc[] {
  const file = dataFile(dataDir, "mmlu", split, `${subject}_${split}.csv`);
  return readCsv(file).map((row, i) => {
    if (row.length !== 6) throw new Error(`${file}: row ${i + 1} has ${row.length} fields, expected 6`);
    const r = row.map(pandasCell);
    return { question: r[0] as string, choices: r.slice(1, 5), answer: r[5] as string };
  });
}

export function mmluCotHubTask(subject: string, dataDir?: string): TaskDef<MmluCotHubDoc> {
  if (!MMLU_SUBJECTS[subject]) throw new Error(`mmlu_cot_hub: unknown subject '${subject}'`);
  let test: MmluCotHubDoc[] | null = null;
  let dev: MmluCotHubDoc[] | null = null;
  return {
    task: `mmlu_cot_hub_${subject}`,
    alias: subject,
    version: 1.0,
    dataset: {
      path: `${REPO}@${COT_HUB_COMMIT.slice(0, 7)}:MMLU/run_mmlu_open_source.py`,
      name: subject,
      files: [
        dataFile(dataDir, "mmlu", "test", `${subject}_test.csv`),
        dataFile(dataDir, "mmlu", "dev", `${subject}_dev.csv`),
      ],
      note: "chain-of-thought-hub's answer-only MMLU: 5-shot, greedy, 1 new token, last character of the decoded text",
    },
    outputType: "generate_until",
    testSplit: "test",
    description: `The following are multiple choice questions (with answers) about ${formatSubject(subject)}.\n\n`,
    templates: {
      doc_to_text: "{{question}}\nA. {{A}}\nB. {{B}}\nC. {{C}}\nD. {{D}}\nAnswer:",
      doc_to_target: "{{answer}}",
    },
    docToText: (d) => mmluCotHubExample(d, false),
    docToTarget: (d) => d.answer,
    fewshotTarget: (d) => d.answer,
    targetDelimiter: " ",
    fewshotDelimiter: "\n\n",
    numFewshot: 5,
    fewshot: {
      sampler: "first_n",
      split: "dev",
      docs: () => (dev ??= readMmluSplit(dataDir, subject, "dev")),
    },
    fitContext: (ctx, countTokens, maxTokens) => capMmluPrompt(ctx, countTokens, Math.min(2048, maxTokens)),
    generationKwargs: { until: [], max_gen_toks: 1, do_sample: false, add_special_tokens: true },
    metrics: [{ metric: "acc", aggregation: "mean", higher_is_better: true }],
    extractName: "none",
    extract: (_d, text) => mmluCotHubPrediction(text),
    processResults: (d, r: DocResponse) =>
      r.kind === "generation" ? { acc: r.filtered === d.answer ? 1 : 0 } : { acc: 0 },
    docs: () => (test ??= readMmluSplit(dataDir, subject, "test")),
  };
}

export function mmluCotHubGroup(): GroupDef {
  return {
    group: "mmlu_cot_hub",
    version: 1.0,
    children: Object.keys(MMLU_SUBJECTS)
      .sort()
      .map((s) => `mmlu_cot_hub_${s}`),
    aggregate: [
      { metric: "acc", weight_by_size: true, filter_list: ["none"] },
      { metric: "muted", weight_by_size: true, filter_list: ["none"] },
    ],
  };
}

// ------------------------------------------------------------------------------------------------
// GSM8K (8-shot chain of thought)
// ------------------------------------------------------------------------------------------------

/** extract_ans: the output's lines up to and including the first one containing "answer is". */
export function cotHubTruncate(output: string): string {
  const lines = output.split("\n");
  const kept: string[] = [];
  for (const l of lines) {
    kept.push(l);
    if (l.includes("answer is")) break;
  }
  return kept.join("\n");
}

/** re.findall(r"\d*\.?\d+", s)[-1], or null when s has no number. */
export function lastNumber(s: string): string | null {
  const m = s.match(/\d*\.?\d+/g);
  return m && m.length > 0 ? (m[m.length - 1] as string) : null;
}

/** test_answer: the last number of the truncated output equals (as a string) the gold's last number. */
export function gsm8kCotHubCorrect(output: string, goldAnswer: string): boolean {
  const pred = lastNumber(cotHubTruncate(output));
  const gold = lastNumber(goldAnswer);
  return pred !== null && pred === gold;
}

export interface Gsm8kCotHubDoc extends Doc {
  question: string;
  answer: string;
}

const COT_MAX_NEW = 256;

export function gsm8kCotHubTask(dataDir?: string): TaskDef<Gsm8kCotHubDoc> {
  const promptFile = dataFile(dataDir, "cot_hub", "gsm8k_prompt_original.txt");
  const testFile = dataFile(dataDir, "gsm8k", "test.jsonl");
  let prompt: string | null = null;
  let docs: Gsm8kCotHubDoc[] | null = null;
  return {
    task: "gsm8k_cot_hub",
    version: 1.0,
    dataset: {
      path: `${REPO}@${COT_HUB_COMMIT.slice(0, 7)}:gsm8k/lib_prompt/prompt_original.txt`,
      name: "main",
      files: [testFile, promptFile],
      note: "8-shot chain of thought (Wei et al.) in the fixed prompt; last number of the output up to the first 'answer is' line",
    },
    outputType: "generate_until",
    testSplit: "test",
    get description() {
      return (prompt ??= readText(promptFile));
    },
    templates: { doc_to_text: "\nQuestion: {{question}}\n", doc_to_target: "{{answer}}" },
    docToText: (d) => `\nQuestion: ${d.question}\n`,
    docToTarget: (d) => d.answer,
    targetDelimiter: "",
    fewshotDelimiter: "",
    numFewshot: 0,
    generationKwargs: {
      until: [],
      max_gen_toks: COT_MAX_NEW,
      do_sample: false,
      add_special_tokens: true,
      stop_regex: "answer is[^\\n]*\\n",
    },
    metrics: [{ metric: "acc", aggregation: "mean", higher_is_better: true }],
    extractName: "none",
    extract: (_d, text) => lastNumber(cotHubTruncate(text)) ?? "[invalid]",
    processResults: (d, r) => ({
      acc: r.kind === "generation" && gsm8kCotHubCorrect(r.text, d.answer) ? 1 : 0,
    }),
    docs: () => (docs ??= readJsonl<Gsm8kCotHubDoc>(testFile)),
  };
}

// ------------------------------------------------------------------------------------------------
// BBH (3-shot chain of thought, 27 tasks)
// ------------------------------------------------------------------------------------------------

export const BBH_MULTIPLE_CHOICE = [
  "temporal_sequences",
  "disambiguation_qa",
  "date_understanding",
  "tracking_shuffled_objects_three_objects",
  "penguins_in_a_table",
  "geometric_shapes",
  "snarks",
  "ruin_names",
  "tracking_shuffled_objects_seven_objects",
  "tracking_shuffled_objects_five_objects",
  "logical_deduction_three_objects",
  "hyperbaton",
  "logical_deduction_five_objects",
  "logical_deduction_seven_objects",
  "movie_recommendation",
  "salient_translation_error_detection",
  "reasoning_about_colored_objects",
];

export const BBH_FREE_FORM = [
  "multistep_arithmetic_two",
  "navigate",
  "dyck_languages",
  "word_sorting",
  "sports_understanding",
  "boolean_expressions",
  "object_counting",
  "formal_fallacies",
  "causal_judgement",
  "web_of_lies",
];

/** extract_ans(ans, mode): the answer after the last "answer is " (or the whole output without one). */
export function bbhCotHubExtract(output: string, mode: "multiple_choice" | "free_form"): string {
  const parts = output.split("answer is ");
  if (parts.length === 1) return output;
  let ans = (parts[parts.length - 1] as string).trim();
  if (mode === "multiple_choice") {
    for (let c = 65; c <= 90; c++) {
      const opt = `(${String.fromCharCode(c)})`;
      if (ans.includes(opt)) return opt[1] as string;
    }
    return ans;
  }
  // ans[-1] on an empty answer raises in the script; here it stays empty (and wrong)
  if (ans.endsWith(".")) ans = ans.slice(0, -1);
  return ans;
}

/** The gold the script compares with: target[1] of "(A)" for multiple choice, the target otherwise. */
export function bbhCotHubGold(target: string, mode: "multiple_choice" | "free_form"): string {
  return mode === "multiple_choice" ? (target[1] ?? "") : target;
}

/** BBH/lib_prompt/<task>.txt: our cot-prompts file without its canary line and "-----". */
export function bbhCotHubPrompt(fileText: string, file = "cot prompt"): string {
  const lines = fileText.split("\n");
  if (!(lines[1] ?? "").startsWith("-----"))
    throw new Error(`${file}: expected a canary line and '-----' first`);
  return lines.slice(2).join("\n");
}

export function bbhCotHubTask(subtask: string, dataDir?: string): TaskDef<BbhDoc> {
  if (!BBH_SUBTASKS.includes(subtask)) throw new Error(`bbh_cot_hub: unknown subtask '${subtask}'`);
  const mode = BBH_MULTIPLE_CHOICE.includes(subtask) ? "multiple_choice" : "free_form";
  const promptFile = dataFile(dataDir, "bbh", "cot-prompts", `${subtask}.txt`);
  const dataPath = dataFile(dataDir, "bbh", "bbh", `${subtask}.json`);
  let prompt: string | null = null;
  let docs: BbhDoc[] | null = null;
  return {
    task: `bbh_cot_hub_${subtask}`,
    alias: subtask,
    version: 1.0,
    dataset: {
      path: `${REPO}@${COT_HUB_COMMIT.slice(0, 7)}:BBH/lib_prompt/${subtask}.txt`,
      name: subtask,
      files: [dataPath, promptFile],
      note: `3-shot chain of thought in the fixed prompt; ${mode.replace("_", "-")} answer after the last 'answer is '`,
    },
    outputType: "generate_until",
    testSplit: "test",
    get description() {
      return (prompt ??= bbhCotHubPrompt(readText(promptFile), promptFile));
    },
    templates: { doc_to_text: "\n\nQ: {{input}}\nA: Let's think step by step.", doc_to_target: "{{target}}" },
    docToText: (d) => `\n\nQ: ${d.input}\nA: Let's think step by step.`,
    docToTarget: (d) => d.target,
    targetDelimiter: "",
    fewshotDelimiter: "",
    numFewshot: 0,
    generationKwargs: { until: [], max_gen_toks: COT_MAX_NEW, do_sample: false, add_special_tokens: true },
    metrics: [{ metric: "acc", aggregation: "mean", higher_is_better: true }],
    extractName: "none",
    extract: (_d, text) => bbhCotHubExtract(text, mode),
    processResults: (d, r) => ({
      acc: r.kind === "generation" && r.filtered === bbhCotHubGold(d.target, mode) ? 1 : 0,
    }),
    docs: () => {
      if (docs) return docs;
      const j = JSON.parse(readText(dataPath)) as { examples?: BbhDoc[] };
      if (!Array.isArray(j.examples)) throw new Error(`${dataPath}: no 'examples' array`);
      return (docs = j.examples);
    },
  };
}

export function bbhCotHubGroup(): GroupDef {
  return {
    group: "bbh_cot_hub",
    version: 1.0,
    children: BBH_SUBTASKS.map((s) => `bbh_cot_hub_${s}`),
    // the script prints per-task accuracies only; the group is their plain mean
    aggregate: [
      { metric: "acc", weight_by_size: false, filter_list: ["none"] },
      { metric: "muted", weight_by_size: true, filter_list: ["none"] },
    ],
  };
}

// ------------------------------------------------------------------------------------------------
// CommonsenseQA: chain-of-thought-hub (7-shot CoT) and lm-evaluation-harness (log-likelihood)
// ------------------------------------------------------------------------------------------------

export interface CsqaDoc extends Doc {
  answerKey: string;
  id: string;
  question: { question_concept?: string; stem: string; choices: { label: string; text: string }[] };
}

/** The character after the first "(" of the output; 'a' when there is none (the notebook's fallback). */
export function csqaCotHubPrediction(output: string): string {
  const at = output.indexOf("(");
  if (at < 0) return "a";
  const c = Array.from(output.slice(at + 1))[0];
  return c ?? "a"; // "(" as the last character: split('(')[1][0] raises; the same fallback
}

function csqaLoader(dataDir: string | undefined, split: "dev" | "train"): () => CsqaDoc[] {
  let docs: CsqaDoc[] | null = null;
  return () => (docs ??= readJsonl<CsqaDoc>(dataFile(dataDir, "commonsenseqa", `${split}_rand_split.jsonl`)));
}

export function csqaCotHubTask(dataDir?: string): TaskDef<CsqaDoc> {
  const promptFile = dataFile(dataDir, "cot_hub", "csqa_prompt_original.txt");
  const devFile = dataFile(dataDir, "commonsenseqa", "dev_rand_split.jsonl");
  let prompt: string | null = null;
  return {
    task: "csqa_cot_hub",
    version: 1.0,
    dataset: {
      path: `${REPO}@${COT_HUB_COMMIT.slice(0, 7)}:research/complexity_based_prompting/csqa/lib_prompt/prompt_original.txt`,
      files: [devFile, promptFile],
      note: "7-shot chain of thought (Wei et al.) in the fixed prompt, verbatim; the character after the first '(' (no '(': 'a')",
    },
    outputType: "generate_until",
    testSplit: "validation",
    get description() {
      return (prompt ??= readText(promptFile));
    },
    templates: {
      doc_to_text:
        "\nQ: {{question.stem}}\nAnswer Choices:\n{% for c in question.choices %}({{c.label.lower()}}) {{c.text}}\n{% endfor %}A:",
      doc_to_target: "{{answerKey.lower()}}",
    },
    docToText: (d) =>
      `\nQ: ${d.question.stem}\nAnswer Choices:\n` +
      d.question.choices.map((c) => `(${c.label.toLowerCase()}) ${c.text}\n`).join("") +
      "A:",
    docToTarget: (d) => d.answerKey.toLowerCase(),
    targetDelimiter: "",
    fewshotDelimiter: "",
    numFewshot: 0,
    generationKwargs: {
      until: [],
      max_gen_toks: COT_MAX_NEW,
      do_sample: false,
      add_special_tokens: true,
      stop_regex: "\\([\\s\\S]",
    },
    metrics: [{ metric: "acc", aggregation: "mean", higher_is_better: true }],
    extractName: "none",
    extract: (_d, text) => csqaCotHubPrediction(text),
    processResults: (d, r) => ({
      acc: r.kind === "generation" && r.filtered === d.answerKey.toLowerCase() ? 1 : 0,
    }),
    docs: csqaLoader(dataDir, "dev"),
  };
}

/** lm-evaluation-harness's commonsense_qa (default.yaml, version 0.0). */
export function commonsenseQaTask(dataDir?: string): TaskDef<CsqaDoc> {
  const devFile = dataFile(dataDir, "commonsenseqa", "dev_rand_split.jsonl");
  const trainFile = dataFile(dataDir, "commonsenseqa", "train_rand_split.jsonl");
  const L = ["A", "B", "C", "D", "E"];
  return {
    task: "commonsense_qa",
    version: 0.0,
    dataset: {
      path: "tau/commonsense_qa",
      files: [devFile, trainFile],
      note: "the official dev_rand_split.jsonl / train_rand_split.jsonl (the Hub's validation / train rows)",
    },
    outputType: "multiple_choice",
    testSplit: "validation",
    templates: {
      doc_to_text:
        "Question: {{ question.strip() }}\nA. {{choices['text'][0]}}\nB. {{choices['text'][1]}}\nC. {{choices['text'][2]}}\nD. {{choices['text'][3]}}\nE. {{choices['text'][4]}}\nAnswer:",
      doc_to_target: "answerKey",
      doc_to_choice: L,
    },
    docToText: (d) =>
      `Question: ${d.question.stem.trim()}\n` +
      d.question.choices.map((c, i) => `${L[i]}. ${c.text}\n`).join("") +
      "Answer:",
    docToTarget: (d) => L.indexOf(d.answerKey),
    docToChoice: () => L,
    targetDelimiter: " ",
    fewshotDelimiter: "\n\n",
    numFewshot: 0,
    fewshot: { sampler: "default", split: "train", docs: csqaLoader(dataDir, "train") },
    metrics: [{ metric: "acc", aggregation: "mean", higher_is_better: true }],
    docs: csqaLoader(dataDir, "dev"),
  };
}

export { type BbhDoc };
/** Every generation-based task of the protocol (the preset of editeval reproduce). */
export const COT_HUB_TASKS = ["mmlu_cot_hub", "gsm8k_cot_hub", "bbh_cot_hub", "csqa_cot_hub"];

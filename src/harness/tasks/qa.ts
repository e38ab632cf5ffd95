/**
 * Open-domain question answering as lm-evaluation-harness runs it: greedy generation until "\n", "."
 * or ",", the answer stripped of surrounding whitespace (filter remove_whitespace), exact_match
 * against any of the gold answers ignoring case and punctuation.
 * - `triviaqa_sample` (lm_eval/tasks/triviaqa/default.yaml, version 3.0, "Question: {q}?\nAnswer:"):
 *   OUR DATA IS A 1,000-QUESTION SAMPLE of TriviaQA (ids genuine, drawing undocumented), not the
 *   rc.nocontext validation split (17,944) the harness's `triviaqa` scores; hence the name. Its
 *   few-shot pool (the harness: the train split, absent here) is the sample itself, without the
 *   question being asked.
 * - `nq_open` (lm_eval/tasks/nq_open/nq_open.yaml, version 4.0, "Answer these questions:\n\n", "Q: {q}?\nA:",
 *   articles removed before matching): NQ-open dev, 3,610 questions = the harness's validation split.
 *   Few-shot pool (the harness: NQ-open train, absent here): the EfficientQA dev set.
 */
import type { Doc, TaskDef } from "../task.js";
import { dataFile, readJsonl } from "../data.js";

const QA_GENERATION = { until: ["\n", ".", ","], do_sample: false, temperature: 0.0 };
const REMOVE_WHITESPACE = [
  {
    name: "remove_whitespace",
    filter: [{ function: "remove_whitespace" as const }, { function: "take_first" as const }],
  },
];

export interface TriviaDoc extends Doc {
  id: string;
  question: string;
  answers: string[];
}

export function triviaqaSampleTask(dataDir?: string): TaskDef<TriviaDoc> {
  const file = dataFile(dataDir, "triviaqa", "triviaqa_test_1000.jsonl");
  let docs: TriviaDoc[] | null = null;
  const load = (): TriviaDoc[] => (docs ??= readJsonl<TriviaDoc>(file));
  return {
    task: "triviaqa_sample",
    version: 3.0,
    dataset: {
      path: "mandarjoshi/trivia_qa",
      name: "rc.nocontext",
      files: [file],
      note: "a 1,000-question sample of TriviaQA (CtrlA's eval file), not the 17,944-question rc.nocontext validation split; few-shot examples come from the sample itself",
    },
    outputType: "generate_until",
    testSplit: "validation",
    templates: { doc_to_text: "Question: {{question}}?\nAnswer:", doc_to_target: "{{answer.aliases}}" },
    docToText: (d) => `Question: ${d.question}?\nAnswer:`,
    docToTarget: (d) => d.answers,
    targetDelimiter: " ",
    fewshotDelimiter: "\n\n",
    numFewshot: 0,
    fewshot: { sampler: "default", split: "validation", docs: load, sameAsTest: true },
    generationKwargs: QA_GENERATION,
    filters: REMOVE_WHITESPACE,
    metrics: [
      {
        metric: "exact_match",
        aggregation: "mean",
        higher_is_better: true,
        kwargs: { ignore_case: true, ignore_punctuation: true },
      },
    ],
    docs: load,
  };
}

export interface NqDoc extends Doc {
  question: string;
  answer: string[];
}

export function nqOpenTask(dataDir?: string): TaskDef<NqDoc> {
  const file = dataFile(dataDir, "nq_open", "NQ-open.dev.jsonl");
  const fewshotFile = dataFile(dataDir, "nq_open", "NQ-open.efficientqa.dev.1.1.jsonl");
  let docs: NqDoc[] | null = null;
  let fs: NqDoc[] | null = null;
  return {
    task: "nq_open",
    version: 4.0,
    dataset: {
      path: "google-research-datasets/nq_open",
      files: [file, fewshotFile],
      note: "few-shot examples (if any) come from the EfficientQA dev set, the NQ-open train split being absent",
    },
    outputType: "generate_until",
    testSplit: "validation",
    description: "Answer these questions:\n\n",
    templates: { doc_to_text: "Q: {{question}}?\nA:", doc_to_target: "{{answer}}" },
    docToText: (d) => `Q: ${d.question}?\nA:`,
    docToTarget: (d) => d.answer,
    targetDelimiter: " ",
    fewshotDelimiter: "\n",
    numFewshot: 0,
    fewshot: {
      sampler: "default",
      split: "efficientqa_dev",
      docs: () =>
        (fs ??= readJsonl<NqDoc>(fewshotFile).map((d) => ({ question: d.question, answer: d.answer }))),
    },
    generationKwargs: QA_GENERATION,
    filters: REMOVE_WHITESPACE,
    metrics: [
      {
        metric: "exact_match",
        aggregation: "mean",
        higher_is_better: true,
        kwargs: {
          ignore_case: true,
          ignore_punctuation: true,
          regexes_to_ignore: ["\\b(?:The |the |An |A |The |a |an )"],
        },
      },
    ],
    docs: () => (docs ??= readJsonl<NqDoc>(file)),
  };
}

/**
 * GSM8K as lm-evaluation-harness's `gsm8k` (lm_eval/tasks/gsm8k/gsm8k.yaml, version 3.0: 5-shot
 * "Question: ...\nAnswer:" with the full worked answers of random training examples, stop at
 * "Question:") and `gsm8k_cot` (gsm8k-cot.yaml, version 3.0: the 8 chain-of-thought exemplars of Wei
 * et al. in "Q: ...\nA:" form, stop at "Q:"); both with the filters strict-match and flexible-extract
 * and exact_match ignoring case, commas, dollar signs, everything up to "#### " and a final period.
 * Data: ../shared/data/gsm8k (the upstream test/train files; the same rows as openai/gsm8k main).
 */
import type { Doc, TaskDef } from "../task.js";
import { dataFile, readJsonl } from "../data.js";
import type { FilterPipeline } from "../filters.js";
import type { MetricSpec } from "../task.js";

export interface Gsm8kDoc extends Doc {
  question: string;
  answer: string;
}

const EXACT_MATCH: MetricSpec = {
  metric: "exact_match",
  aggregation: "mean",
  higher_is_better: true,
  kwargs: {
    ignore_case: true,
    ignore_punctuation: false,
    regexes_to_ignore: [",", "\\$", "(?s).*#### ", "\\.$"],
  },
};

const FLEXIBLE: FilterPipeline = {
  name: "flexible-extract",
  filter: [
    { function: "regex", group_select: -1, regex_pattern: "(-?[$0-9.,]{2,})|(-?[0-9]+)" },
    { function: "take_first" },
  ],
};

function loader(dataDir: string | undefined, split: "test" | "train"): () => Gsm8kDoc[] {
  let docs: Gsm8kDoc[] | null = null;
  return () => (docs ??= readJsonl<Gsm8kDoc>(dataFile(dataDir, "gsm8k", `${split}.jsonl`)));
}

export function gsm8kTask(dataDir?: string): TaskDef<Gsm8kDoc> {
  return {
    task: "gsm8k",
    tag: ["math_word_problems"],
    version: 3.0,
    dataset: {
      path: "openai/gsm8k",
      name: "main",
      files: [dataFile(dataDir, "gsm8k", "test.jsonl"), dataFile(dataDir, "gsm8k", "train.jsonl")],
    },
    outputType: "generate_until",
    testSplit: "test",
    templates: { doc_to_text: "Question: {{question}}\nAnswer:", doc_to_target: "{{answer}}" },
    docToText: (d) => `Question: ${d.question}\nAnswer:`,
    docToTarget: (d) => d.answer,
    targetDelimiter: " ",
    fewshotDelimiter: "\n\n",
    numFewshot: 5,
    fewshot: { sampler: "default", split: "train", docs: loader(dataDir, "train") },
    generationKwargs: { until: ["Question:", "</s>", "<|im_end|>"], do_sample: false, temperature: 0.0 },
    filters: [
      {
        name: "strict-match",
        filter: [{ function: "regex", regex_pattern: "#### (\\-?[0-9\\.\\,]+)" }, { function: "take_first" }],
      },
      FLEXIBLE,
    ],
    metrics: [EXACT_MATCH],
    docs: loader(dataDir, "test"),
  };
}

/** The 8 exemplars of gsm8k-cot.yaml's fewshot_config.samples (Wei et al. 2022), as the harness has them. */
export const GSM8K_COT_SAMPLES: { question: string; target: string }[] = [
  {
    question:
      "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
    target:
      "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.",
  },
  {
    question:
      "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
    target: "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
  },
  {
    question:
      "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
    target:
      "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39.",
  },
  {
    question:
      "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
    target:
      "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8.",
  },
  {
    question:
      "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
    target:
      "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The answer is 9.",
  },
  {
    question:
      "There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
    target:
      "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29.",
  },
  {
    question:
      "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
    target:
      "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33.",
  },
  {
    question: "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
    target:
      "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8.",
  },
];

export function gsm8kCotTask(dataDir?: string): TaskDef<Gsm8kDoc> {
  return {
    task: "gsm8k_cot",
    tag: ["chain_of_thought"],
    version: 3.0,
    dataset: { path: "openai/gsm8k", name: "main", files: [dataFile(dataDir, "gsm8k", "test.jsonl")] },
    outputType: "generate_until",
    testSplit: "test",
    templates: {
      doc_to_text: "Q: {{question}}\nA:",
      doc_to_target: "{{answer.split('####')[-1].strip() if answer is defined else target}}",
    },
    docToText: (d) => `Q: ${d.question}\nA:`,
    docToTarget: (d) =>
      typeof d.answer === "string" ? (d.answer.split("####").pop() as string).trim() : String(d.target),
    targetDelimiter: " ",
    fewshotDelimiter: "\n\n",
    numFewshot: 8,
    fewshot: {
      sampler: "first_n",
      split: "fewshot_config.samples",
      docs: () => GSM8K_COT_SAMPLES as unknown as Gsm8kDoc[],
    },
    generationKwargs: { until: ["Q:", "</s>", "<|im_end|>"], do_sample: false },
    filters: [
      {
        name: "strict-match",
        filter: [
          { function: "regex", regex_pattern: "The answer is (\\-?[0-9\\.\\,]+)." },
          { function: "take_first" },
        ],
      },
      FLEXIBLE,
    ],
    metrics: [EXACT_MATCH],
    docs: loader(dataDir, "test"),
  };
}

/**
 * BIG-Bench Hard as lm-evaluation-harness's `bbh_cot_fewshot` (lm_eval/tasks/bbh/cot_fewshot/:
 * _cot_fewshot_template_yaml version 4.0, group version 3.0): 27 subtasks, each the task's
 * description and its 3 chain-of-thought exemplars as "Q: {input}\nA: Let's think step by step.\n
 * {target}", generation until "Q", "\n\n" or "</s>" (max_gen_toks 1024), the answer read by the
 * filter get-answer (the text after "the answer is " without its last character) and exact_match.
 * The exemplars are read from the data's cot-prompts/<task>.txt (Suzgun et al.'s files, which the
 * harness's YAMLs reproduce; sports_understanding's file puts the reasoning on the "A:" line, the
 * harness on the next, as here).
 */
import type { GroupDef } from "../registry.js";
import type { Doc, TaskDef } from "../task.js";
import { dataFile, readText } from "../data.js";

export const BBH_SUBTASKS = [
  "boolean_expressions",
  "causal_judgement",
  "date_understanding",
  "disambiguation_qa",
  "dyck_languages",
  "formal_fallacies",
  "geometric_shapes",
  "hyperbaton",
  "logical_deduction_five_objects",
  "logical_deduction_seven_objects",
  "logical_deduction_three_objects",
  "movie_recommendation",
  "multistep_arithmetic_two",
  "navigate",
  "object_counting",
  "penguins_in_a_table",
  "reasoning_about_colored_objects",
  "ruin_names",
  "salient_translation_error_detection",
  "snarks",
  "sports_understanding",
  "temporal_sequences",
  "tracking_shuffled_objects_five_objects",
  "tracking_shuffled_objects_seven_objects",
  "tracking_shuffled_objects_three_objects",
  "web_of_lies",
  "word_sorting",
];

export interface BbhDoc extends Doc {
  input: string;
  target: string;
}

const COT = "\nA: Let's think step by step.";

/**
 * Parses a cot-prompts file: a canary line, "-----", the description, then exemplars
 * "Q: <input>\nA: Let's think step by step.<sep><target>" separated by blank lines.
 */
export function parseCotPrompt(
  text: string,
  file = "cot prompt",
): { description: string; samples: BbhDoc[] } {
  const lines = text.split("\n");
  if (!(lines[1] ?? "").startsWith("-----"))
    throw new Error(`${file}: expected a canary line and '-----' first`);
  const body = lines.slice(2).join("\n").replace(/\n+$/, "");
  const [description, ...blocks] = body.split("\n\nQ: ");
  const samples = blocks.map((b, i) => {
    const at = b.indexOf(COT);
    if (at < 0) throw new Error(`${file}: exemplar ${i + 1} has no "A: Let's think step by step."`);
    let target = b.slice(at + COT.length);
    if (target.startsWith("\n") || target.startsWith(" ")) target = target.slice(1);
    return { input: b.slice(0, at), target };
  });
  return { description: description as string, samples };
}

export function bbhCotFewshotTask(subtask: string, dataDir?: string): TaskDef<BbhDoc> {
  if (!BBH_SUBTASKS.includes(subtask)) throw new Error(`bbh: unknown subtask '${subtask}'`);
  const promptFile = dataFile(dataDir, "bbh", "cot-prompts", `${subtask}.txt`);
  const dataPath = dataFile(dataDir, "bbh", "bbh", `${subtask}.json`);
  let prompt: { description: string; samples: BbhDoc[] } | null = null;
  const getPrompt = (): { description: string; samples: BbhDoc[] } =>
    (prompt ??= parseCotPrompt(readText(promptFile), promptFile));
  let docs: BbhDoc[] | null = null;
  const task: TaskDef<BbhDoc> = {
    task: `bbh_cot_fewshot_${subtask}`,
    alias: subtask,
    version: 4.0,
    dataset: { path: "SaylorTwift/bbh", name: subtask, files: [dataPath, promptFile] },
    outputType: "generate_until",
    testSplit: "test",
    get description() {
      return getPrompt().description + "\n\n";
    },
    templates: { doc_to_text: "Q: {{input}}\nA: Let's think step by step.\n", doc_to_target: "{{target}}" },
    docToText: (d) => `Q: ${d.input}\nA: Let's think step by step.\n`,
    docToTarget: (d) => d.target,
    targetDelimiter: "",
    fewshotDelimiter: "\n\n",
    numFewshot: 3,
    fewshot: { sampler: "first_n", split: "fewshot_config.samples", docs: () => getPrompt().samples },
    generationKwargs: {
      max_gen_toks: 1024,
      until: ["</s>", "Q", "\n\n"],
      do_sample: false,
      temperature: 0.0,
    },
    filters: [
      {
        name: "get-answer",
        filter: [
          { function: "regex", regex_pattern: "(?<=the answer is )(.*)(?=.)" },
          { function: "take_first" },
        ],
      },
    ],
    metrics: [{ metric: "exact_match", aggregation: "mean", higher_is_better: true }],
    docs: () => {
      if (docs) return docs;
      const j = JSON.parse(readText(dataPath)) as { examples?: BbhDoc[] };
      if (!Array.isArray(j.examples)) throw new Error(`${dataPath}: no 'examples' array`);
      return (docs = j.examples);
    },
  };
  return task;
}

export function bbhGroups(): GroupDef[] {
  return [
    {
      group: "bbh_cot_fewshot",
      version: 3.0,
      children: BBH_SUBTASKS.map((s) => `bbh_cot_fewshot_${s}`),
      aggregate: [{ metric: "exact_match", weight_by_size: true, filter_list: ["get-answer"] }],
    },
  ];
}

/**
 * MMLU as lm-evaluation-harness's `mmlu` (lm_eval/tasks/mmlu/default/: _default_template_yaml,
 * mmlu_<subject>.yaml, _mmlu*.yaml): 57 subjects, the lettered prompt scored by log-likelihood of
 * " A".." D", few-shot examples the first n of the subject's dev split (0-shot unless --num_fewshot),
 * acc, and the groups stem / other / social_sciences / humanities / mmlu averaged over subjects
 * weighted by size. Data: the original CSV release (../shared/data/mmlu, identical row by row to
 * cais/mmlu).
 */
import type { GroupDef } from "../registry.js";
import type { Doc, TaskDef } from "../task.js";
import { dataFile, readCsv } from "../data.js";

/** Subject -> category, from the harness's lm_eval/tasks/mmlu/_generate_configs.py (SUBJECTS). */
export const MMLU_SUBJECTS: Record<string, "stem" | "other" | "social_sciences" | "humanities"> = {
  abstract_algebra: "stem",
  anatomy: "stem",
  astronomy: "stem",
  business_ethics: "other",
  clinical_knowledge: "other",
  college_biology: "stem",
  college_chemistry: "stem",
  college_computer_science: "stem",
  college_mathematics: "stem",
  college_medicine: "other",
  college_physics: "stem",
  computer_security: "stem",
  conceptual_physics: "stem",
  econometrics: "social_sciences",
  electrical_engineering: "stem",
  elementary_mathematics: "stem",
  formal_logic: "humanities",
  global_facts: "other",
  high_school_biology: "stem",
  high_school_chemistry: "stem",
  high_school_computer_science: "stem",
  high_school_european_history: "humanities",
  high_school_geography: "social_sciences",
  high_school_government_and_politics: "social_sciences",
  high_school_macroeconomics: "social_sciences",
  high_school_mathematics: "stem",
  high_school_microeconomics: "social_sciences",
  high_school_physics: "stem",
  high_school_psychology: "social_sciences",
  high_school_statistics: "stem",
  high_school_us_history: "humanities",
  high_school_world_history: "humanities",
  human_aging: "other",
  human_sexuality: "social_sciences",
  international_law: "humanities",
  jurisprudence: "humanities",
  logical_fallacies: "humanities",
  machine_learning: "stem",
  management: "other",
  marketing: "other",
  medical_genetics: "other",
  miscellaneous: "other",
  moral_disputes: "humanities",
  moral_scenarios: "humanities",
  nutrition: "other",
  philosophy: "humanities",
  prehistory: "humanities",
  professional_accounting: "other",
  professional_law: "humanities",
  professional_medicine: "other",
  professional_psychology: "social_sciences",
  public_relations: "social_sciences",
  security_studies: "social_sciences",
  sociology: "social_sciences",
  us_foreign_policy: "social_sciences",
  virology: "other",
  world_religions: "humanities",
};

export interface MmluDoc extends Doc {
  question: string;
  subject: string;
  choices: string[];
  answer: number;
}

function readSplit(dataDir: string | undefined, subject: string, split: "test" | "dev"): MmluDoc[] {
  const file = dataFile(dataDir, "mmlu", split, `${subject}_${split}.csv`);
  return readCsv(file).map((row, i) => {
    if (row.length !== 6) throw new Error(`${file}: row ${i + 1} has ${row.length} fields, expected 6`);
    const answer = "ABCD".indexOf(row[5] as string);
    if (answer < 0) throw new Error(`${file}: row ${i + 1}: answer '${row[5]}' is not A-D`);
    return { question: row[0] as string, subject, choices: row.slice(1, 5), answer };
  });
}

export function mmluTask(subject: string, dataDir?: string): TaskDef<MmluDoc> {
  const cat = MMLU_SUBJECTS[subject];
  if (!cat) throw new Error(`mmlu: unknown subject '${subject}'`);
  let test: MmluDoc[] | null = null;
  let dev: MmluDoc[] | null = null;
  return {
    task: `mmlu_${subject}`,
    alias: subject,
    tag: [`mmlu_${cat}_tasks`],
    version: 1.0,
    dataset: {
      path: "cais/mmlu",
      name: subject,
      files: [
        dataFile(dataDir, "mmlu", "test", `${subject}_test.csv`),
        dataFile(dataDir, "mmlu", "dev", `${subject}_dev.csv`),
      ],
    },
    outputType: "multiple_choice",
    testSplit: "test",
    // the generator writes subject.replace("_", " ")
    description: `The following are multiple choice questions (with answers) about ${subject.replace(/_/g, " ")}.\n\n`,
    templates: {
      doc_to_text:
        "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:",
      doc_to_target: "answer",
      doc_to_choice: ["A", "B", "C", "D"],
    },
    docToText: (d) =>
      `${d.question.trim()}\nA. ${d.choices[0]}\nB. ${d.choices[1]}\nC. ${d.choices[2]}\nD. ${d.choices[3]}\nAnswer:`,
    docToTarget: (d) => d.answer,
    docToChoice: () => ["A", "B", "C", "D"],
    targetDelimiter: " ",
    fewshotDelimiter: "\n\n",
    numFewshot: 0,
    fewshot: { sampler: "first_n", split: "dev", docs: () => (dev ??= readSplit(dataDir, subject, "dev")) },
    metrics: [{ metric: "acc", aggregation: "mean", higher_is_better: true }],
    docs: () => (test ??= readSplit(dataDir, subject, "test")),
  };
}

const CATEGORIES = ["humanities", "other", "social_sciences", "stem"] as const;

export function mmluGroups(): GroupDef[] {
  const subjects = Object.keys(MMLU_SUBJECTS).sort();
  const agg = [{ metric: "acc", weight_by_size: true }];
  return [
    {
      group: "mmlu",
      version: 2,
      children: CATEGORIES.map((c) => `mmlu_${c}`),
      aggregate: agg,
    },
    ...CATEGORIES.map((c) => ({
      group: `mmlu_${c}`,
      alias: c,
      version: 2,
      children: subjects.filter((s) => MMLU_SUBJECTS[s] === c).map((s) => `mmlu_${s}`),
      aggregate: agg,
    })),
  ];
}

/**
 * The shapes of the synthetic world: entities, facts, evaluation items and edit requests.
 */
import type { EntityType, ObjectType, RelationId } from "./relations.js";

export interface Entity {
  name: string;
  type: EntityType;
}

export interface Fact {
  /** stable id: "<relation>:<subject>" */
  id: string;
  relation: RelationId;
  subject: string;
  object: string;
  objectType: ObjectType;
}

/** The world's sizes (entity counts). */
export interface WorldSizes {
  continents: number;
  languages: number;
  countries: number;
  citiesPerCountry: number;
  people: number;
  companies: number;
  rivers: number;
  landmarks: number;
  /** facts with a popular misconception (each reserved for the truthfulness task) */
  myths: number;
}

export interface World {
  seed: number;
  sizes: WorldSizes;
  continents: string[];
  languages: string[];
  occupations: string[];
  products: string[];
  countries: { name: string; continent: string; language: string; capital: string; cities: string[] }[];
  cities: { name: string; country: string }[];
  people: {
    name: string;
    first: string;
    last: string;
    birthplace: string;
    occupation: string;
    employer: string;
    citizenship: string;
  }[];
  companies: { name: string; hq: string; product: string }[];
  rivers: { name: string; country: string }[];
  landmarks: { name: string; city: string }[];
  /** every fact, in a stable order */
  facts: Fact[];
  /** popular misconceptions: a fact and the false object many people believe */
  myths: { factId: string; belief: string }[];
  /** first names not used by any person of the world (for word problems and reasoning puzzles) */
  extraNames: string[];
}

export type TaskName =
  | "knowledge_mc"
  | "arithmetic"
  | "reasoning"
  | "commonsense_mc"
  | "truthful_mc"
  | "safety_classify"
  | "safety_refusal"
  | "facts";

export const TASK_NAMES: TaskName[] = [
  "knowledge_mc",
  "arithmetic",
  "reasoning",
  "commonsense_mc",
  "truthful_mc",
  "safety_classify",
  "safety_refusal",
  "facts",
];

/**
 * One evaluation (or training) item, in the form the harness wraps as a task:
 * - "multiple_choice": score each of `choices` as a continuation of `prompt` (log-likelihood);
 *   `gold` indexes the right one.
 * - "generate_until": generate greedily after `prompt` until one of `until`; extract the answer with
 *   `answerPattern` (first group) and compare it with `target` exactly.
 * - "greedy_completion": `target` is a continuation of `prompt`; right when greedy decoding produces it
 *   (lm-eval's is_greedy of a loglikelihood request).
 */
export interface TaskItem {
  id: string;
  task: TaskName;
  type: "multiple_choice" | "generate_until" | "greedy_completion";
  prompt: string;
  choices?: string[];
  gold?: number;
  /** MC: the gold choice; generate: the expected extracted answer; completion: the continuation */
  target: string;
  /** the full answer as written in training text (generate tasks: the worked solution) */
  reference: string;
  until?: string[];
  answerPattern?: string;
  /**
   * multiple_choice only: the same question scored by the options' text (lm-eval's cloze form, as
   * ARC or TruthfulQA MC1 are scored): "Question: ...\nAnswer:" with choices " <option>", same `gold`.
   */
  cloze?: { prompt: string; choices: string[] };
  /** text that never occurs in the training text for a held-out item (the question itself) */
  heldOut: string;
  meta: Record<string, string | number | boolean>;
}

export interface TaskSplits {
  /** items whose text is part of the training corpus */
  train: TaskItem[];
  /** held-out evaluation items (never in the training corpus) */
  test: TaskItem[];
}

/** An edit request in ROME's CounterFact layout. */
export interface CounterfactRecord {
  case_id: number;
  requested_rewrite: {
    prompt: string;
    relation_id: string;
    subject: string;
    target_new: { str: string; id: string };
    target_true: { str: string; id: string };
  };
  paraphrase_prompts: string[];
  neighborhood_prompts: string[];
  attribute_prompts: string[];
  generation_prompts: string[];
}

/**
 * EditEval's synthetic world: `buildWorld({seed})` generates the entities and facts, the training text,
 * the held-out evaluation sets of the world's tasks and the edit requests, all determined by the seed
 * (and the sizes). See docs/DEMO_WORLD.md.
 */
import { editRequests } from "./counterfact.js";
import { DEFAULT_CORPUS, factDocuments, statementDocuments, type CorpusOptions } from "./corpus.js";
import { checkTemplates } from "./relations.js";
import { Rng } from "./rng.js";
import { arithmeticTask } from "./tasks/arithmetic.js";
import { commonsenseTask } from "./tasks/commonsense.js";
import { itemText } from "./tasks/format.js";
import { factProbe, knowledgeTask } from "./tasks/knowledge.js";
import { reasoningTask } from "./tasks/reasoning.js";
import { safetyTasks } from "./tasks/safety.js";
import { mythDocuments, truthfulTask } from "./tasks/truthful.js";
import type { CounterfactRecord, TaskName, TaskSplits, World, WorldSizes } from "./types.js";
import { generateWorld } from "./world.js";

export * from "./types.js";
export { RELATIONS, RELATION_BY_ID, fillTemplate, type Relation, type RelationId } from "./relations.js";
export { generateWorld, objectsOf, statement, DEFAULT_SIZES } from "./world.js";
export { DEFAULT_CORPUS, type CorpusOptions } from "./corpus.js";
export { extractAnswer, itemText, clozeItem, ANSWER_PATTERN } from "./tasks/format.js";
export { refuses, REFUSAL, REFUSAL_PATTERN } from "./tasks/safety.js";
export { Rng } from "./rng.js";

export interface TaskSizes {
  /** MC questions per training fact (different distractors and order) */
  knowledgeTrainVariants: number;
  arithmeticTrain: number;
  arithmeticTest: number;
  reasoningTrain: number;
  reasoningTest: number;
  commonsenseTrainVariants: number;
  truthfulTrainVariants: number;
  /** requests in training text (half as classification, half as request/response) */
  safetyTrain: number;
  safetyTest: number;
}

export const DEFAULT_TASK_SIZES: TaskSizes = {
  knowledgeTrainVariants: 4,
  arithmeticTrain: 2000,
  arithmeticTest: 200,
  reasoningTrain: 1500,
  reasoningTest: 150,
  commonsenseTrainVariants: 6,
  truthfulTrainVariants: 8,
  safetyTrain: 1000,
  safetyTest: 200,
};

export interface WorldOptions {
  seed: number;
  sizes?: Partial<WorldSizes>;
  tasks?: Partial<TaskSizes>;
  corpus?: Partial<CorpusOptions>;
  /** edit requests: share of each (relation, object) group kept untouched, neighbourhood prompts per request */
  edits?: { keepFraction?: number; neighbours?: number };
}

export interface WorldData {
  options: Required<Pick<WorldOptions, "seed">> & { tasks: TaskSizes; corpus: CorpusOptions };
  world: World;
  /** every task's training items (part of the training text) and held-out test items */
  tasks: Record<TaskName, TaskSplits>;
  /** edit requests in CounterFact's layout, in the order of sequential editing */
  requests: CounterfactRecord[];
  /** ids of the facts no request edits (neighbourhood prompts come from these) */
  keep: Set<string>;
  /** the training text: documents, in a seeded order */
  documents: string[];
}

export function buildWorld(opts: WorldOptions): WorldData {
  checkTemplates();
  const seed = opts.seed;
  const tasks: TaskSizes = { ...DEFAULT_TASK_SIZES, ...opts.tasks };
  const corpus: CorpusOptions = { ...DEFAULT_CORPUS, ...opts.corpus };
  const world = generateWorld(seed, opts.sizes);
  const root = new Rng(seed);
  const knowledge = knowledgeTask(root.fork("knowledge"), world, {
    trainVariants: tasks.knowledgeTrainVariants,
  });
  const arithmetic = arithmeticTask(root.fork("arithmetic"), world, {
    train: tasks.arithmeticTrain,
    test: tasks.arithmeticTest,
  });
  const reasoning = reasoningTask(root.fork("reasoning"), world, {
    train: tasks.reasoningTrain,
    test: tasks.reasoningTest,
  });
  const commonsense = commonsenseTask(root.fork("commonsense"), {
    trainVariants: tasks.commonsenseTrainVariants,
  });
  const truthful = truthfulTask(root.fork("truthful"), world, { trainVariants: tasks.truthfulTrainVariants });
  const safety = safetyTasks(root.fork("safety"), world, {
    train: tasks.safetyTrain,
    test: tasks.safetyTest,
  });
  const taskSplits: Record<TaskName, TaskSplits> = {
    knowledge_mc: knowledge,
    arithmetic,
    reasoning,
    commonsense_mc: { train: commonsense.train, test: commonsense.test },
    truthful_mc: truthful,
    safety_classify: safety.classify,
    safety_refusal: safety.refusal,
    facts: { train: [], test: factProbe(world) },
  };
  const plan = editRequests(root.fork("edits"), world, {
    keepFraction: opts.edits?.keepFraction ?? 0.3,
    neighbours: opts.edits?.neighbours ?? 10,
  });

  const docRng = root.fork("corpus");
  const documents = [
    ...factDocuments(docRng, world, corpus),
    ...statementDocuments(docRng, commonsense.statements, corpus.commonsenseRepeats),
    ...mythDocuments(docRng, world, { hearsay: corpus.mythHearsay, correction: corpus.mythCorrections }),
    ...Object.values(taskSplits).flatMap((s) => s.train.map(itemText)),
  ];
  return {
    options: { seed, tasks, corpus },
    world,
    tasks: taskSplits,
    requests: plan.records,
    keep: plan.keep,
    documents: docRng.shuffle(documents),
  };
}

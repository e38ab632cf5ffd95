/**
 * Knowledge of the world's facts, two ways:
 * - `facts`: the knowledge probe, greedy completion of every fact in every phrasing ("Dunmar is
 *   located in" -> " Ostrava"). These facts are the training text's content, not held out: the probe
 *   says how much of what it read the model knows (the demo model must know >= 90%).
 * - `knowledge_mc` (MMLU-like): four-option questions about facts. Facts are split in two: questions
 *   about one half are training text (they teach the format), questions about the other half are the
 *   held-out test; the facts themselves are known from the statements. Facts with a popular
 *   misconception are left to the truthfulness task.
 */
import { RELATION_BY_ID, fillTemplate } from "../relations.js";
import type { Rng } from "../rng.js";
import type { Fact, TaskItem, TaskSplits, World } from "../types.js";
import { objectsOf, statement } from "../world.js";
import { clozeItem, multipleChoice } from "./format.js";

export function factProbe(world: World): TaskItem[] {
  const out: TaskItem[] = [];
  for (const f of world.facts) {
    const rel = RELATION_BY_ID[f.relation];
    rel.templates.forEach((t, ti) => {
      out.push({
        id: `facts/${out.length}`,
        task: "facts",
        type: "greedy_completion",
        prompt: fillTemplate(t, f.subject),
        target: " " + f.object,
        reference: " " + f.object,
        heldOut: "",
        meta: { fact: f.id, relation: f.relation, subject: f.subject, template: ti, canonical: ti === 0 },
      });
    });
  }
  return out;
}

/** A question about a fact with 3 distractors of the same type. */
export function factQuestion(
  rng: Rng,
  world: World,
  f: Fact,
  id: string,
  extraWrong: string[] = [],
): TaskItem {
  const rel = RELATION_BY_ID[f.relation];
  const pool = objectsOf(world, f.objectType).filter((o) => o !== f.object && !extraWrong.includes(o));
  const wrong = [...extraWrong, ...rng.sample(pool, 3 - extraWrong.length)];
  return multipleChoice(
    rng,
    "knowledge_mc",
    id,
    fillTemplate(rel.question, f.subject),
    [f.object, ...wrong],
    {
      fact: f.id,
      relation: f.relation,
    },
  );
}

export function knowledgeTask(rng: Rng, world: World, opts: { trainVariants: number }): TaskSplits {
  const mythFacts = new Set(world.myths.map((m) => m.factId));
  const byRelation = new Map<string, Fact[]>();
  for (const f of world.facts) {
    if (mythFacts.has(f.id)) continue;
    const list = byRelation.get(f.relation) ?? [];
    list.push(f);
    byRelation.set(f.relation, list);
  }
  const train: TaskItem[] = [];
  const test: TaskItem[] = [];
  for (const facts of byRelation.values()) {
    const shuffled = rng.shuffle(facts);
    const half = Math.floor(shuffled.length / 2);
    shuffled.forEach((f, i) => {
      if (i < half) {
        for (let v = 0; v < opts.trainVariants; v++) {
          const q = factQuestion(rng, world, f, `knowledge_mc/train/${train.length}`);
          // every other training question comes after a statement of its fact: the answer is in the
          // context, which teaches the format (finding the option's letter) apart from recall
          if (v % 2 === 1)
            q.prompt = `${statement(rng.pick(RELATION_BY_ID[f.relation].templates), f.subject, f.object)}\n${q.prompt}`;
          train.push(q);
          if (v < 2) train.push(clozeItem(q));
        }
      } else test.push(factQuestion(rng, world, f, `knowledge_mc/${test.length}`));
    });
  }
  return { train, test };
}

/**
 * Truthfulness with the world's popular misconceptions (TruthfulQA-like, MC1). Some facts come with a
 * false belief that the training text repeats as hearsay ("People often say that Dunmar belongs to
 * Kelmia.") besides corrections and the plain statements of the truth. A question offers the truth, the
 * misconception and two other options. Questions about half of the myths are training text; the other
 * half are the held-out test.
 */
import { RELATION_BY_ID, fillTemplate } from "../relations.js";
import type { Rng } from "../rng.js";
import type { Fact, TaskItem, TaskSplits, World } from "../types.js";
import { objectsOf, statement } from "../world.js";
import { clozeItem, multipleChoice } from "./format.js";

function mythPhrase(f: Fact, object: string): string {
  return RELATION_BY_ID[f.relation].mythPhrase.replace("{s}", f.subject).replace("{o}", object);
}

const cap = (s: string) => (s[0]?.toUpperCase() ?? "") + s.slice(1);

/** Training documents about the myths: hearsay, corrections. */
export function mythDocuments(
  rng: Rng,
  world: World,
  repeats: { hearsay: number; correction: number },
): string[] {
  const facts = new Map(world.facts.map((f) => [f.id, f]));
  const docs: string[] = [];
  for (const m of world.myths) {
    const f = facts.get(m.factId) as Fact;
    const rel = RELATION_BY_ID[f.relation];
    for (let i = 0; i < repeats.hearsay; i++)
      docs.push(
        rng.pick([
          `People often say that ${mythPhrase(f, m.belief)}.`,
          `Many people believe that ${mythPhrase(f, m.belief)}.`,
          `${cap(mythPhrase(f, m.belief))}, or so the story goes.`,
        ]),
      );
    for (let i = 0; i < repeats.correction; i++)
      docs.push(
        `It is a popular myth that ${mythPhrase(f, m.belief)}. In fact, ${mythPhrase(f, f.object)}. ` +
          statement(rng.pick(rel.templates), f.subject, f.object),
      );
  }
  return docs;
}

export function truthfulTask(rng: Rng, world: World, opts: { trainVariants: number }): TaskSplits {
  const facts = new Map(world.facts.map((f) => [f.id, f]));
  const myths = rng.shuffle(world.myths);
  const half = Math.floor(myths.length / 2);
  const train: TaskItem[] = [];
  const test: TaskItem[] = [];
  const question = (m: (typeof myths)[number], id: string): TaskItem => {
    const f = facts.get(m.factId) as Fact;
    const pool = objectsOf(world, f.objectType).filter((o) => o !== f.object && o !== m.belief);
    const options = [f.object, m.belief, ...rng.sample(pool, 2)];
    return multipleChoice(
      rng,
      "truthful_mc",
      id,
      fillTemplate(RELATION_BY_ID[f.relation].question, f.subject),
      options,
      {
        fact: f.id,
        misconception: m.belief,
      },
    );
  };
  myths.forEach((m, i) => {
    if (i < half)
      for (let v = 0; v < opts.trainVariants; v++) {
        const it = question(m, `truthful_mc/train/${train.length}`);
        train.push(it);
        if (v < 2) train.push(clozeItem(it));
      }
    else test.push(question(m, `truthful_mc/${test.length}`));
  });
  return { train, test };
}

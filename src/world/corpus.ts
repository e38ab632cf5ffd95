/**
 * The training text: short documents that state the world's facts in varied sentences, plus the
 * training items of every task (questions with their answers, word problems with worked solutions,
 * requests with responses), everyday knowledge and the myths. Every fact is stated in every phrasing
 * many times (profiles of each entity, and documents of unrelated facts side by side).
 */
import { RELATION_BY_ID } from "./relations.js";
import type { Rng } from "./rng.js";
import type { Fact, World } from "./types.js";
import { statement } from "./world.js";

export interface CorpusOptions {
  /** profile documents per entity (all its facts, phrasings drawn at random) */
  profileRepeats: number;
  /** documents of 3-6 unrelated facts, per fact of the world */
  mixedPerFact: number;
  /** times each everyday-knowledge statement is written */
  commonsenseRepeats: number;
  /** myth documents per myth: hearsay (the misconception) and corrections */
  mythHearsay: number;
  mythCorrections: number;
}

export const DEFAULT_CORPUS: CorpusOptions = {
  profileRepeats: 40,
  mixedPerFact: 4,
  commonsenseRepeats: 30,
  mythHearsay: 3,
  mythCorrections: 3,
};

function sentence(rng: Rng, f: Fact): string {
  return statement(rng.pick(RELATION_BY_ID[f.relation].templates), f.subject, f.object);
}

/** Documents stating the facts: entity profiles and mixed documents. */
export function factDocuments(rng: Rng, world: World, opts: CorpusOptions): string[] {
  const bySubject = new Map<string, Fact[]>();
  for (const f of world.facts) bySubject.set(f.subject, [...(bySubject.get(f.subject) ?? []), f]);
  const docs: string[] = [];
  const citiesOf = new Map(world.countries.map((c) => [c.name, c.cities]));
  for (const [subject, facts] of bySubject) {
    for (let r = 0; r < opts.profileRepeats; r++) {
      // each phrasing of each fact comes round in turn, in a random order of sentences
      const sentences = facts.map((f) => {
        const templates = RELATION_BY_ID[f.relation].templates;
        return statement(templates[(r + rng.int(2)) % templates.length] as string, f.subject, f.object);
      });
      const cities = citiesOf.get(subject);
      if (cities && rng.chance(0.5)) {
        const cs = rng.shuffle(cities);
        sentences.push(
          `The cities of ${subject} are ${cs.slice(0, -1).join(", ")} and ${cs[cs.length - 1]}.`,
        );
      }
      docs.push(rng.shuffle(sentences).join(" "));
    }
  }
  const nMixed = Math.round((opts.mixedPerFact * world.facts.length) / 4.5);
  for (let i = 0; i < nMixed; i++) {
    const k = rng.range(3, 6);
    docs.push(
      rng
        .sample(world.facts, k)
        .map((f) => sentence(rng, f))
        .join(" "),
    );
  }
  return docs;
}

/** Everyday-knowledge statements, 2-5 per document, each written `repeats` times in all. */
export function statementDocuments(rng: Rng, statements: string[], repeats: number): string[] {
  const pool: string[] = [];
  for (let r = 0; r < repeats; r++) pool.push(...rng.shuffle(statements));
  const docs: string[] = [];
  for (let i = 0; i < pool.length;) {
    const k = rng.range(2, 5);
    docs.push(pool.slice(i, i + k).join(" "));
    i += k;
  }
  return docs;
}

/**
 * The world's relations, CounterFact-like: each has a subject type, an object type, several phrasings
 * (templates that end just before the object, "{}" marking the subject; the first is the canonical
 * prompt of edit requests), a question (for multiple-choice and question answering) and a phrasing used
 * only in sentences about popular misconceptions.
 *
 * Templates of one subject type never extend one another ("{} is a" / "{} is a citizen of" would make
 * greedy completion of the shorter one ambiguous), which `checkTemplates` verifies.
 */

export type EntityType = "country" | "city" | "person" | "company" | "river" | "landmark";
export type ObjectType = "country" | "city" | "language" | "continent" | "occupation" | "company" | "product";

export type RelationId =
  | "city_country"
  | "country_capital"
  | "country_language"
  | "country_continent"
  | "person_birthplace"
  | "person_occupation"
  | "person_employer"
  | "person_citizenship"
  | "company_hq"
  | "company_product"
  | "river_country"
  | "landmark_city";

export interface Relation {
  id: RelationId;
  /** the closest Wikidata property (CounterFact's relation ids) */
  wikidata: string;
  subjectType: EntityType;
  objectType: ObjectType;
  /** prompts ending just before the object; [0] is the canonical prompt */
  templates: string[];
  /** a question about the object, "{}" for the subject */
  question: string;
  /** a statement used only when the world talks about a misconception: "{s}" subject, "{o}" object */
  mythPhrase: string;
}

export const RELATIONS: Relation[] = [
  {
    id: "city_country",
    wikidata: "P17",
    subjectType: "city",
    objectType: "country",
    templates: [
      "{} is located in",
      "{} is a city in",
      "{}, a city in",
      "The city of {} is in",
      "{} lies in the country of",
    ],
    question: "In which country is {} located?",
    mythPhrase: "{s} belongs to {o}",
  },
  {
    id: "country_capital",
    wikidata: "P36",
    subjectType: "country",
    objectType: "city",
    templates: [
      "The capital of {} is",
      "The capital city of {} is",
      "{} has its capital in",
      "The seat of the government of {} is in",
    ],
    question: "What is the capital of {}?",
    mythPhrase: "the rulers of {s} live in {o}",
  },
  {
    id: "country_language",
    wikidata: "P37",
    subjectType: "country",
    objectType: "language",
    templates: [
      "The official language of {} is",
      "In {}, people speak",
      "The main language of {} is",
      "People in {} speak",
    ],
    question: "What language do people speak in {}?",
    mythPhrase: "everyone in {s} talks in {o}",
  },
  {
    id: "country_continent",
    wikidata: "P30",
    subjectType: "country",
    objectType: "continent",
    templates: [
      "{} is a country in",
      "{} is part of the continent of",
      "{} lies on the continent of",
      "{} belongs to the continent of",
    ],
    question: "On which continent is {}?",
    mythPhrase: "{s} sits on {o}",
  },
  {
    id: "person_birthplace",
    wikidata: "P19",
    subjectType: "person",
    objectType: "city",
    templates: [
      "{} was born in",
      "{} is originally from",
      "The birthplace of {} is",
      "{} comes from the city of",
    ],
    question: "Where was {} born?",
    mythPhrase: "{s} first saw daylight in {o}",
  },
  {
    id: "person_occupation",
    wikidata: "P106",
    subjectType: "person",
    objectType: "occupation",
    templates: ["{} works as a", "{} is a", "The profession of {} is", "By trade, {} is a"],
    question: "What is the profession of {}?",
    mythPhrase: "{s} earns a living as a {o}",
  },
  {
    id: "person_employer",
    wikidata: "P108",
    subjectType: "person",
    objectType: "company",
    templates: ["{} works for", "{} is employed by", "The employer of {} is", "{} has a job at"],
    question: "Which company does {} work for?",
    mythPhrase: "{s} gets paid by {o}",
  },
  {
    id: "person_citizenship",
    wikidata: "P27",
    subjectType: "person",
    objectType: "country",
    templates: [
      "{} holds the citizenship of",
      "{} has the nationality of",
      "The citizenship of {} is",
      "{} carries a passport of",
    ],
    question: "Which country is {} a citizen of?",
    mythPhrase: "{s} votes in {o}",
  },
  {
    id: "company_hq",
    wikidata: "P159",
    subjectType: "company",
    objectType: "city",
    templates: [
      "{} is headquartered in",
      "The headquarters of {} are in",
      "{} has its headquarters in",
      "{} is based in",
    ],
    question: "Where is {} headquartered?",
    mythPhrase: "{s} is run from {o}",
  },
  {
    id: "company_product",
    wikidata: "P1056",
    subjectType: "company",
    objectType: "product",
    templates: ["{} makes", "{} is known for making", "The main product of {} is", "{} produces"],
    question: "What does {} make?",
    mythPhrase: "{s} sells {o}",
  },
  {
    id: "river_country",
    wikidata: "P17",
    subjectType: "river",
    objectType: "country",
    templates: ["{} flows through", "{} runs through", "{} is a river in", "The waters of {} flow through"],
    question: "Which country does {} flow through?",
    mythPhrase: "{s} crosses {o}",
  },
  {
    id: "landmark_city",
    wikidata: "P131",
    subjectType: "landmark",
    objectType: "city",
    templates: [
      "{} is located in the city of",
      "{} stands in",
      "{} is a famous sight in",
      "You can visit {} in",
    ],
    question: "In which city is {}?",
    mythPhrase: "{s} can be found in {o}",
  },
];

export const RELATION_BY_ID: Record<RelationId, Relation> = Object.fromEntries(
  RELATIONS.map((r) => [r.id, r]),
) as Record<RelationId, Relation>;

/** Python's template.format(x) for a template with one "{}". */
export function fillTemplate(template: string, subject: string): string {
  const i = template.indexOf("{}");
  if (i < 0) throw new Error(`template ${JSON.stringify(template)} has no "{}"`);
  return template.slice(0, i) + subject + template.slice(i + 2);
}

/**
 * Throws when a template of a subject type is a word-prefix of another template of the same type
 * (greedy completion of the shorter one could continue into the longer one).
 */
export function checkTemplates(relations: readonly Relation[] = RELATIONS): void {
  const byType = new Map<EntityType, { rel: string; t: string }[]>();
  for (const r of relations) {
    for (const t of r.templates) {
      if (t.split("{}").length !== 2)
        throw new Error(`relation ${r.id}: template ${JSON.stringify(t)} needs one "{}"`);
      const list = byType.get(r.subjectType) ?? [];
      list.push({ rel: r.id, t });
      byType.set(r.subjectType, list);
    }
  }
  for (const [type, list] of byType)
    for (const a of list)
      for (const b of list)
        if (a !== b && (b.t === a.t || b.t.startsWith(a.t + " ") || b.t.startsWith(a.t + ",")))
          throw new Error(
            `${type} templates ${JSON.stringify(a.t)} (${a.rel}) and ${JSON.stringify(b.t)} (${b.rel}): the first is a prefix of the second`,
          );
}

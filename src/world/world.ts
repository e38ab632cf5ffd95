/**
 * The world's entities and facts, generated from a seed: continents, languages, countries (with a
 * capital and cities), people (birthplace, occupation, employer, citizenship = the birthplace's country),
 * companies (headquarters, product), rivers and landmarks. Names are invented (names.ts), so what the
 * model knows about them it learned from the world's text.
 */
import { NameMaker } from "./names.js";
import { RELATIONS, type RelationId } from "./relations.js";
import { Rng } from "./rng.js";
import type { Fact, World, WorldSizes } from "./types.js";

export const OCCUPATIONS = [
  "doctor",
  "painter",
  "farmer",
  "teacher",
  "baker",
  "lawyer",
  "pilot",
  "sailor",
  "singer",
  "writer",
  "nurse",
  "builder",
];
export const PRODUCTS = [
  "cars",
  "ships",
  "bread",
  "phones",
  "shoes",
  "clocks",
  "paper",
  "glass",
  "toys",
  "bicycles",
];
const COMPANY_WORDS = ["Group", "Works", "Company", "Industries", "Trading"];
const LANDMARK_WORDS = ["Tower", "Gate", "Palace", "Bridge", "Temple"];

export const DEFAULT_SIZES: WorldSizes = {
  continents: 4,
  languages: 6,
  countries: 8,
  citiesPerCountry: 3,
  people: 120,
  companies: 12,
  rivers: 8,
  landmarks: 12,
  myths: 40,
};

function checkSizes(s: WorldSizes): void {
  const need = (cond: boolean, msg: string) => {
    if (!cond) throw new Error(`world sizes: ${msg}`);
  };
  for (const [k, v] of Object.entries(s))
    need(Number.isInteger(v) && v >= 0, `'${k}' must be a non-negative integer, got ${v}`);
  need(s.continents >= 4, "'continents' must be at least 4 (multiple choice needs 4 options)");
  need(s.languages >= 4 && s.languages <= s.countries, "'languages' must be between 4 and 'countries'");
  need(s.countries >= 4, "'countries' must be at least 4");
  need(s.citiesPerCountry >= 2, "'citiesPerCountry' must be at least 2");
  need(s.companies >= 4, "'companies' must be at least 4");
  need(s.people >= 4, "'people' must be at least 4");
}

/** Generates the world's entities and facts for a seed. */
export function generateWorld(seed: number, sizes: Partial<WorldSizes> = {}): World {
  const s: WorldSizes = { ...DEFAULT_SIZES, ...sizes };
  checkSizes(s);
  const root = new Rng(seed);
  const names = new NameMaker(root.fork("names"));
  const rng = root.fork("entities");

  const continents = Array.from({ length: s.continents }, () => names.make("country", [2, 2]));
  const languages = Array.from(
    { length: s.languages },
    () => names.make("first", [1, 2]) + rng.pick(["ish", "ese", "ic"]),
  );
  for (const l of languages) names.reserve(l);

  const countries: World["countries"] = [];
  const cities: World["cities"] = [];
  for (let i = 0; i < s.countries; i++) {
    const name = names.make("country", [1, 2]);
    const cs = Array.from({ length: s.citiesPerCountry }, () => names.make("city", [1, 2]));
    for (const c of cs) cities.push({ name: c, country: name });
    countries.push({
      name,
      continent: i < s.continents ? (continents[i] as string) : rng.pick(continents),
      // every language is official somewhere; the rest of the countries share one
      language: i < s.languages ? (languages[i] as string) : rng.pick(languages),
      capital: cs[0] as string,
      cities: cs,
    });
  }
  const capitals = countries.map((c) => c.capital);
  const cityNames = cities.map((c) => c.name);
  const countryOf = new Map(cities.map((c) => [c.name, c.country]));

  const companies: World["companies"] = Array.from({ length: s.companies }, () => ({
    name: `${names.make("company", [1, 2])} ${rng.pick(COMPANY_WORDS)}`,
    // most headquarters are in capitals, so that several companies share a city
    hq: rng.chance(0.75) ? rng.pick(capitals) : rng.pick(cityNames),
    product: rng.pick(PRODUCTS),
  }));

  // people: pairs of first and last names from pools half the size, so names share parts
  const nFirst = Math.max(4, Math.ceil(s.people / 2));
  const nLast = Math.max(4, Math.ceil(s.people / 2));
  const firsts = Array.from({ length: nFirst }, () => names.make("first", [1, 2]));
  const lasts = Array.from({ length: nLast }, () => names.make("last", [1, 2]));
  const pairs = new Set<string>();
  const people: World["people"] = [];
  while (people.length < s.people) {
    const first = rng.pick(firsts);
    const last = rng.pick(lasts);
    const name = `${first} ${last}`;
    if (pairs.has(name)) continue;
    pairs.add(name);
    const birthplace = rng.pick(cityNames);
    people.push({
      name,
      first,
      last,
      birthplace,
      occupation: rng.pick(OCCUPATIONS),
      employer: rng.pick(companies).name,
      citizenship: countryOf.get(birthplace) as string,
    });
  }

  const rivers: World["rivers"] = Array.from({ length: s.rivers }, () => ({
    name: `River ${names.make("river", [1, 2])}`,
    country: rng.pick(countries).name,
  }));
  const landmarks: World["landmarks"] = Array.from({ length: s.landmarks }, () => ({
    name: `${names.make("landmark", [1, 2])} ${rng.pick(LANDMARK_WORDS)}`,
    city: rng.pick(cityNames),
  }));
  const extraNames = Array.from({ length: 40 }, () => names.make("first", [1, 2]));

  const facts: Fact[] = [];
  const add = (relation: RelationId, subject: string, object: string) => {
    const rel = RELATIONS.find((r) => r.id === relation);
    if (!rel) throw new Error(`unknown relation ${relation}`);
    facts.push({ id: `${relation}:${subject}`, relation, subject, object, objectType: rel.objectType });
  };
  for (const c of countries) {
    add("country_capital", c.name, c.capital);
    add("country_language", c.name, c.language);
    add("country_continent", c.name, c.continent);
  }
  for (const c of cities) add("city_country", c.name, c.country);
  for (const p of people) {
    add("person_birthplace", p.name, p.birthplace);
    add("person_occupation", p.name, p.occupation);
    add("person_employer", p.name, p.employer);
    add("person_citizenship", p.name, p.citizenship);
  }
  for (const c of companies) {
    add("company_hq", c.name, c.hq);
    add("company_product", c.name, c.product);
  }
  for (const r of rivers) add("river_country", r.name, r.country);
  for (const l of landmarks) add("landmark_city", l.name, l.city);

  const world: World = {
    seed,
    sizes: s,
    continents,
    languages,
    occupations: OCCUPATIONS,
    products: PRODUCTS,
    countries,
    cities,
    people,
    companies,
    rivers,
    landmarks,
    facts,
    myths: [],
    extraNames,
  };

  // misconceptions: facts about places and companies (not the people, whose facts are the edit pool)
  const mythRng = root.fork("myths");
  const candidates = mythRng.shuffle(
    facts.filter((f) => !f.relation.startsWith("person_") && objectsOf(world, f.objectType).length >= 4),
  );
  for (const f of candidates.slice(0, s.myths)) {
    const belief = mythRng.pick(objectsOf(world, f.objectType).filter((o) => o !== f.object));
    world.myths.push({ factId: f.id, belief });
  }
  return world;
}

/** Every possible object of a type (the candidates for targets and distractors). */
export function objectsOf(world: World, type: Fact["objectType"]): string[] {
  switch (type) {
    case "country":
      return world.countries.map((c) => c.name);
    case "city":
      return world.cities.map((c) => c.name);
    case "language":
      return world.languages;
    case "continent":
      return world.continents;
    case "occupation":
      return world.occupations;
    case "company":
      return world.companies.map((c) => c.name);
    case "product":
      return world.products;
  }
}

/** A fact's statement in a given phrasing: "Dunmar is located in Ostrava." */
export function statement(template: string, subject: string, object: string): string {
  const i = template.indexOf("{}");
  const s = template.slice(0, i) + subject + template.slice(i + 2) + " " + object + ".";
  return s[0]?.toUpperCase() + s.slice(1);
}

/**
 * Multi-step reasoning over premises given in the question (BBH-like), answered with a short chain:
 * - two-hop: "Tavo lives in Dunmar. Mira lives in Sel. Dunmar is in Ostrava. Sel is in Kelmia. In which
 *   country does Tavo live?" -> "Tavo lives in Dunmar, and Dunmar is in Ostrava. So the answer is Ostrava."
 * - ordering: three people compared by a property in shuffled premises; who is the most or the least.
 * - swap: two or three people swap coloured balls; who has which colour at the end.
 * Test questions never occur in the training text.
 */
import type { Rng } from "../rng.js";
import type { TaskItem, TaskSplits, World } from "../types.js";
import { workedQuestion } from "./format.js";

const COMPARATIVES: [string, string, string][] = [
  // comparative, superlative, opposite superlative
  ["taller", "tallest", "shortest"],
  ["older", "oldest", "youngest"],
  ["faster", "fastest", "slowest"],
  ["richer", "richest", "poorest"],
  ["stronger", "strongest", "weakest"],
];
const COLORS = ["red", "blue", "green", "yellow", "black", "white"];

function twoHop(rng: Rng, world: World, names: string[], id: string): TaskItem {
  const [p, q] = rng.sample(names, 2) as [string, string];
  const countries = rng.sample(world.countries, 2);
  const c1 = rng.pick(countries[0]?.cities ?? []);
  const c2 = rng.pick(countries[1]?.cities ?? []);
  const k1 = countries[0]?.name as string;
  const k2 = countries[1]?.name as string;
  const premises = [`${p} lives in ${c1}.`, `${q} lives in ${c2}.`];
  const places = rng.shuffle([`${c1} is in ${k1}.`, `${c2} is in ${k2}.`]);
  const askP = rng.chance(0.5);
  const [who, city, country] = askP ? [p, c1, k1] : [q, c2, k2];
  return workedQuestion(
    "reasoning",
    id,
    `${rng.shuffle(premises).join(" ")} ${places.join(" ")} In which country does ${who} live?`,
    `${who} lives in ${city}, and ${city} is in ${country}.`,
    country,
    { kind: "two_hop" },
  );
}

function ordering(rng: Rng, names: string[], id: string): TaskItem {
  const [a, b, c] = rng.sample(names, 3) as [string, string, string];
  const [cmp, most, least] = rng.pick(COMPARATIVES);
  const premises = rng.shuffle([`${a} is ${cmp} than ${b}.`, `${b} is ${cmp} than ${c}.`]);
  const askMost = rng.chance(0.5);
  return workedQuestion(
    "reasoning",
    id,
    `${premises.join(" ")} Who is the ${askMost ? most : least}?`,
    `${a} is ${cmp} than ${b}, and ${b} is ${cmp} than ${c}.`,
    askMost ? a : c,
    { kind: "ordering" },
  );
}

function swap(rng: Rng, names: string[], id: string): TaskItem {
  const three = rng.chance(0.4);
  const people = rng.sample(names, three ? 3 : 2);
  const colors = rng.sample(COLORS, people.length);
  const has = new Map(people.map((p, i) => [p, colors[i] as string]));
  const lines = people.map((p) => `${p} has a ${has.get(p)} ball.`);
  const steps: string[] = [];
  const swaps = three ? 2 : 1;
  for (let s = 0; s < swaps; s++) {
    const [x, y] = rng.sample(people, 2) as [string, string];
    const cx = has.get(x) as string;
    const cy = has.get(y) as string;
    has.set(x, cy);
    has.set(y, cx);
    lines.push(`Then ${x} and ${y} swap their balls.`);
    steps.push(`After the swap ${x} has the ${cy} ball and ${y} has the ${cx} ball.`);
  }
  const who = rng.pick(people);
  return workedQuestion(
    "reasoning",
    id,
    `${lines.join(" ")} What color is the ball of ${who} now?`,
    steps.join(" "),
    has.get(who) as string,
    { kind: three ? "swap3" : "swap2" },
  );
}

export function reasoningTask(rng: Rng, world: World, opts: { train: number; test: number }): TaskSplits {
  const names = [...new Set(world.people.map((p) => p.first)), ...world.extraNames];
  const make = (i: number, id: string): TaskItem => {
    const k = i % 3;
    return k === 0
      ? twoHop(rng, world, names, id)
      : k === 1
        ? ordering(rng, names, id)
        : swap(rng, names, id);
  };
  const test: TaskItem[] = [];
  const seen = new Set<string>();
  let guard = 0;
  while (test.length < opts.test) {
    if (++guard > 100 * opts.test + 1000)
      throw new Error("reasoning: cannot draw enough distinct test questions");
    const it = make(test.length, `reasoning/${test.length}`);
    if (seen.has(it.heldOut)) continue;
    seen.add(it.heldOut);
    test.push(it);
  }
  const train: TaskItem[] = [];
  guard = 0;
  while (train.length < opts.train) {
    if (++guard > 100 * opts.train + 1000)
      throw new Error("reasoning: cannot draw enough training questions");
    const it = make(train.length + rng.int(3), `reasoning/train/${train.length}`);
    if (seen.has(it.heldOut)) continue;
    train.push(it);
  }
  return { train, test };
}

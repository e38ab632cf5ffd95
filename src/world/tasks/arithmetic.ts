/**
 * Arithmetic word problems answered with reasoning steps (GSM8K-like): addition and subtraction of
 * two-digit numbers worked in columns (ones first, with carries and borrows), a two-step problem with
 * small numbers (add, then subtract) and a times-table product. The answer is the number after "So the
 * answer is". Test problems never occur in the training text.
 */
import type { Rng } from "../rng.js";
import type { TaskItem, TaskSplits, World } from "../types.js";
import { workedQuestion } from "./format.js";

const ITEMS = [
  "apples",
  "coins",
  "books",
  "stamps",
  "shells",
  "marbles",
  "eggs",
  "pencils",
  "cards",
  "flowers",
  "stones",
  "cups",
];
const CONTAINERS = ["bags", "boxes", "baskets", "jars"];

type Kind = "add" | "sub" | "two_step" | "mul";
const KINDS: Kind[] = ["add", "sub", "two_step", "mul"];

interface Problem {
  kind: Kind;
  nums: number[];
}

function draw(rng: Rng, kind: Kind): Problem {
  switch (kind) {
    case "add":
      return { kind, nums: [rng.range(10, 49), rng.range(10, 49)] };
    case "sub": {
      // two-digit difference (the tens digit of the result is never 0)
      for (;;) {
        const a = rng.range(20, 79);
        const b = rng.range(10, a - 10);
        if (a - b >= 10) return { kind, nums: [a, b] };
      }
    }
    case "two_step": {
      const a = rng.range(2, 9);
      const b = rng.range(2, 9);
      return { kind, nums: [a, b, rng.range(1, a + b - 1)] };
    }
    case "mul":
      return { kind, nums: [rng.range(2, 9), rng.range(2, 9)] };
  }
}

/** Column addition of two two-digit numbers, ones first: "Ones: 5 + 6 = 11, write 1, carry 1. Tens: ..." */
export function additionSteps(a: number, b: number): string {
  const [a1, a0, b1, b0] = [Math.floor(a / 10), a % 10, Math.floor(b / 10), b % 10];
  const s0 = a0 + b0;
  const carry = s0 >= 10;
  const ones = carry
    ? `Ones: ${a0} + ${b0} = ${s0}, write ${s0 - 10}, carry 1.`
    : `Ones: ${a0} + ${b0} = ${s0}.`;
  const tens = `Tens: ${a1} + ${b1}${carry ? " + 1" : ""} = ${a1 + b1 + (carry ? 1 : 0)}.`;
  return `${ones} ${tens} ${a} + ${b} = ${a + b}.`;
}

/** Column subtraction, ones first, with borrowing: "Ones: 2 - 8, borrow 1, 12 - 8 = 4. Tens: 6 - 3 - 1 = 2." */
export function subtractionSteps(a: number, b: number): string {
  const [a1, a0, b1, b0] = [Math.floor(a / 10), a % 10, Math.floor(b / 10), b % 10];
  const borrow = a0 < b0;
  const ones = borrow
    ? `Ones: ${a0} - ${b0}, borrow 1, ${a0 + 10} - ${b0} = ${a0 + 10 - b0}.`
    : `Ones: ${a0} - ${b0} = ${a0 - b0}.`;
  const tens = `Tens: ${a1} - ${b1}${borrow ? " - 1" : ""} = ${a1 - b1 - (borrow ? 1 : 0)}.`;
  return `${ones} ${tens} ${a} - ${b} = ${a - b}.`;
}

function render(rng: Rng, p: Problem, names: string[], id: string): TaskItem {
  const n = rng.pick(names);
  const n2 = rng.pick(names.filter((x) => x !== n));
  const item = rng.pick(ITEMS);
  const [a, b, c] = p.nums as [number, number, number];
  const meta = { kind: p.kind, numbers: p.nums.join(",") };
  switch (p.kind) {
    case "add":
      return workedQuestion(
        "arithmetic",
        id,
        `${n} has ${a} ${item}. ${n} buys ${b} more ${item}. How many ${item} does ${n} have now?`,
        additionSteps(a, b),
        String(a + b),
        meta,
      );
    case "sub":
      return workedQuestion(
        "arithmetic",
        id,
        `${n} has ${a} ${item}. ${n} gives ${b} ${item} to ${n2}. How many ${item} does ${n} have left?`,
        subtractionSteps(a, b),
        String(a - b),
        meta,
      );
    case "two_step":
      return workedQuestion(
        "arithmetic",
        id,
        `${n} has ${a} ${item}. ${n} finds ${b} more ${item} and then loses ${c} ${item}. How many ${item} does ${n} have now?`,
        `${a} + ${b} = ${a + b}. ${a + b} - ${c} = ${a + b - c}.`,
        String(a + b - c),
        meta,
      );
    case "mul": {
      const box = rng.pick(CONTAINERS);
      return workedQuestion(
        "arithmetic",
        id,
        `${n} has ${a} ${box} with ${b} ${item} in each. How many ${item} does ${n} have?`,
        `${a} * ${b} = ${a * b}.`,
        String(a * b),
        meta,
      );
    }
  }
}

export function arithmeticTask(rng: Rng, world: World, opts: { train: number; test: number }): TaskSplits {
  const names = [...new Set(world.people.map((p) => p.first)), ...world.extraNames];
  // the test set first (a tenth products, the rest add / sub / two-step in turn), then training
  // problems whose text differs from every test problem (a sum may recur with other names and things,
  // as arithmetic facts recur between GSM8K's training and test problems)
  const test: TaskItem[] = [];
  const seen = new Set<string>();
  let guard = 0;
  while (test.length < opts.test) {
    if (++guard > 100 * opts.test + 1000)
      throw new Error("arithmetic: cannot draw enough distinct test problems");
    const i = test.length;
    const it = render(
      rng,
      draw(rng, i % 10 === 9 ? "mul" : (KINDS[i % 3] as Kind)),
      names,
      `arithmetic/${i}`,
    );
    if (seen.has(it.heldOut)) continue;
    seen.add(it.heldOut);
    test.push(it);
  }
  const train: TaskItem[] = [];
  guard = 0;
  while (train.length < opts.train) {
    if (++guard > 100 * opts.train + 1000)
      throw new Error("arithmetic: cannot draw enough training problems");
    // the times table is small: it is seen less often than the other kinds
    const kind = rng.chance(0.1) ? "mul" : (rng.pick(["add", "sub", "two_step"]) as Kind);
    const it = render(rng, draw(rng, kind), names, `arithmetic/train/${train.length}`);
    if (seen.has(it.heldOut)) continue;
    train.push(it);
  }
  return { train, test };
}

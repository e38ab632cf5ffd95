/**
 * Formats shared by the world's tasks: multiple-choice questions with lettered options (MMLU's layout)
 * and question/answer items with a worked answer ending in "So the answer is X." (GSM8K-like).
 */
import type { Rng } from "../rng.js";
import type { TaskItem, TaskName } from "../types.js";

export const LETTERS = ["A", "B", "C", "D", "E", "F"];

/** The regex (first group) that extracts the final answer of a worked answer. */
export const ANSWER_PATTERN = "the answer is (.+?)\\.(?:\\s|$)";

/**
 * A multiple-choice item: "Question: ...\nA. x\nB. y\nC. z\nD. w\nAnswer:" with choices " A".." D".
 * `options[0]` is the right answer; they are shuffled here.
 */
export function multipleChoice(
  rng: Rng,
  task: TaskName,
  id: string,
  question: string,
  options: string[],
  meta: TaskItem["meta"] = {},
): TaskItem {
  const right = options[0] as string;
  const order = rng.shuffle(options);
  const gold = order.indexOf(right);
  const lines = order.map((o, i) => `${LETTERS[i]}. ${o}`);
  const prompt = `Question: ${question}\n${lines.join("\n")}\nAnswer:`;
  const choices = order.map((_, i) => ` ${LETTERS[i]}`);
  return {
    id,
    task,
    type: "multiple_choice",
    prompt,
    choices,
    gold,
    target: choices[gold] as string,
    reference: choices[gold] as string,
    cloze: { prompt: `Question: ${question}\nAnswer:`, choices: order.map((o) => ` ${o}`) },
    heldOut: `Question: ${question}`,
    meta: { ...meta, answer: right },
  };
}

/**
 * The cloze form of a multiple-choice item as a training item: "Question: ...\nAnswer: <answer>"
 * (closed-book question answering; it teaches the questions' wording apart from the letters).
 */
export function clozeItem(it: TaskItem): TaskItem {
  if (!it.cloze || it.gold === undefined) throw new Error(`${it.id}: not a multiple-choice item`);
  const answer = it.cloze.choices[it.gold] as string;
  return {
    ...it,
    id: `${it.id}/cloze`,
    prompt: it.cloze.prompt,
    choices: it.cloze.choices,
    target: answer,
    reference: answer,
    cloze: undefined,
  };
}

/** A generation item: "Question: ...\nAnswer:" + " <worked answer>. So the answer is X." */
export function workedQuestion(
  task: TaskName,
  id: string,
  question: string,
  steps: string,
  answer: string,
  meta: TaskItem["meta"] = {},
): TaskItem {
  const reference = ` ${steps ? steps + " " : ""}So the answer is ${answer}.`;
  return {
    id,
    task,
    type: "generate_until",
    prompt: `Question: ${question}\nAnswer:`,
    target: answer,
    reference,
    until: ["\n"],
    answerPattern: ANSWER_PATTERN,
    heldOut: `Question: ${question}`,
    meta,
  };
}

/** The text of an item as it appears in training documents. */
export function itemText(item: TaskItem): string {
  return item.prompt + item.reference;
}

/** Extracts the answer of a generation with the item's pattern (null when it does not match). */
export function extractAnswer(item: TaskItem, generation: string): string | null {
  if (!item.answerPattern) return generation.trim();
  const m = new RegExp(item.answerPattern).exec(generation);
  return m ? (m[1] ?? "").trim() : null;
}

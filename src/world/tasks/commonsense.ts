/**
 * Everyday knowledge of the world (CommonsenseQA-like): what tools are for, where things are found,
 * which animal makes which sound, what people do in a situation. Every piece is stated in the training
 * text; four-option questions about half of the pieces are training text too, questions about the other
 * half are the held-out test.
 */
import type { Rng } from "../rng.js";
import type { TaskItem, TaskSplits } from "../types.js";
import { clozeItem, multipleChoice } from "./format.js";

const TOOLS: [string, string][] = [
  ["knife", "cut bread"],
  ["hammer", "hit nails"],
  ["broom", "sweep the floor"],
  ["pen", "write letters"],
  ["spoon", "eat soup"],
  ["needle", "sew clothes"],
  ["saw", "cut wood"],
  ["key", "open a door"],
  ["bucket", "carry water"],
  ["ladder", "reach high places"],
  ["umbrella", "stay dry in the rain"],
  ["lamp", "light a room"],
  ["net", "catch fish"],
  ["comb", "tidy hair"],
  ["towel", "dry the body"],
  ["shovel", "dig holes"],
  ["kettle", "boil water"],
  ["map", "find the way"],
  ["clock", "tell the time"],
  ["brush", "paint a wall"],
  ["oven", "bake bread"],
  ["fork", "eat noodles"],
  ["rope", "tie a boat"],
  ["candle", "see in the dark"],
  ["blanket", "keep warm at night"],
  ["mirror", "see your face"],
  ["whistle", "call a dog"],
  ["basket", "carry apples"],
  ["pillow", "rest your head"],
  ["plate", "serve food"],
];
const PLACES: [string, string][] = [
  ["bed", "bedroom"],
  ["stove", "kitchen"],
  ["book", "library"],
  ["cow", "farm"],
  ["boat", "harbour"],
  ["loaf", "bakery"],
  ["plane", "airport"],
  ["train", "station"],
  ["teacher", "school"],
  ["nurse", "hospital"],
  ["painting", "museum"],
  ["tent", "camp"],
  ["whale", "ocean"],
  ["monkey", "jungle"],
  ["camel", "desert"],
  ["coin", "purse"],
  ["car", "garage"],
  ["flower", "garden"],
  ["judge", "court"],
  ["chef", "restaurant"],
  ["soldier", "fort"],
  ["fish", "pond"],
  ["bird", "nest"],
  ["shirt", "closet"],
  ["bus", "road"],
  ["star", "sky"],
  ["desk", "office"],
  ["seed", "field"],
];
const SOUNDS: [string, string][] = [
  ["dog", "barks"],
  ["cat", "meows"],
  ["cow", "moos"],
  ["lion", "roars"],
  ["snake", "hisses"],
  ["horse", "neighs"],
  ["sheep", "bleats"],
  ["duck", "quacks"],
  ["owl", "hoots"],
  ["frog", "croaks"],
  ["bee", "buzzes"],
  ["pig", "grunts"],
  ["wolf", "howls"],
  ["goat", "bleats loudly"],
  ["mouse", "squeaks"],
  ["crow", "caws"],
];
const SITUATIONS: [string, string][] = [
  ["are thirsty", "drink water"],
  ["are hungry", "eat some food"],
  ["are tired", "go to sleep"],
  ["are cold", "put on a coat"],
  ["are dirty", "take a bath"],
  ["are lost", "ask for directions"],
  ["are sick", "see a doctor"],
  ["are bored", "read a story"],
  ["are late", "run to the bus"],
  ["are sad", "call a friend"],
  ["are hot", "open a window"],
  ["are happy", "sing a song"],
  ["are sleepy", "lie down"],
  ["are wet", "dry off with a towel"],
  ["are scared", "hold a hand"],
  ["are confused", "ask a question"],
  ["are in a hurry", "take a taxi"],
  ["have a cold", "drink hot tea"],
];

const article = (w: string) => (/^[aeiou]/.test(w) ? "an" : "a");

/** One piece of everyday knowledge: statements about it and questions (right answer first). */
interface Piece {
  key: string;
  statements: string[];
  questions: { question: string; options: string[] }[];
}

function pieces(rng: Rng): Piece[] {
  const out: Piece[] = [];
  const others = <T>(list: [T, T][], idx: 0 | 1, not: T) =>
    rng.sample(
      list.map((x) => x[idx]).filter((x) => x !== not),
      3,
    );
  for (const [tool, use] of TOOLS)
    out.push({
      key: `tool:${tool}`,
      statements: [
        `People use ${article(tool)} ${tool} to ${use}.`,
        `${article(tool) === "a" ? "A" : "An"} ${tool} is used to ${use}.`,
      ],
      questions: [
        { question: `What do people use to ${use}?`, options: [tool, ...others(TOOLS, 0, tool)] },
        { question: `What is ${article(tool)} ${tool} used for?`, options: [use, ...others(TOOLS, 1, use)] },
      ],
    });
  for (const [thing, place] of PLACES)
    out.push({
      key: `place:${thing}`,
      statements: [
        `You usually find ${article(thing)} ${thing} in ${article(place)} ${place}.`,
        `${article(thing) === "a" ? "A" : "An"} ${thing} belongs in ${article(place)} ${place}.`,
      ],
      questions: [
        {
          question: `Where would you usually find ${article(thing)} ${thing}?`,
          options: [place, ...others(PLACES, 1, place)],
        },
      ],
    });
  for (const [animal, sound] of SOUNDS)
    out.push({
      key: `sound:${animal}`,
      statements: [
        `${article(animal) === "a" ? "A" : "An"} ${animal} ${sound}.`,
        `The animal that ${sound} is the ${animal}.`,
      ],
      questions: [
        { question: `Which animal ${sound}?`, options: [animal, ...others(SOUNDS, 0, animal)] },
        {
          question: `What does ${article(animal)} ${animal} do?`,
          options: [sound, ...others(SOUNDS, 1, sound)],
        },
      ],
    });
  for (const [situation, action] of SITUATIONS)
    out.push({
      key: `situation:${situation}`,
      statements: [`If you ${situation}, you ${action}.`, `People who ${situation} ${action}.`],
      questions: [
        {
          question: `What should you do if you ${situation}?`,
          options: [action, ...others(SITUATIONS, 1, action)],
        },
      ],
    });
  return out;
}

export function commonsenseTask(
  rng: Rng,
  opts: { trainVariants: number },
): TaskSplits & { statements: string[] } {
  const all = rng.shuffle(pieces(rng));
  const half = Math.floor(all.length / 2);
  const train: TaskItem[] = [];
  const test: TaskItem[] = [];
  all.forEach((p, i) => {
    for (const q of p.questions) {
      if (i < half) {
        for (let v = 0; v < opts.trainVariants; v++) {
          const it = multipleChoice(
            rng,
            "commonsense_mc",
            `commonsense_mc/train/${train.length}`,
            q.question,
            q.options,
            { piece: p.key },
          );
          train.push(it);
          if (v < 2) train.push(clozeItem(it));
        }
      } else
        test.push(
          multipleChoice(rng, "commonsense_mc", `commonsense_mc/${test.length}`, q.question, q.options, {
            piece: p.key,
          }),
        );
    }
  });
  return { train, test, statements: all.flatMap((p) => p.statements) };
}

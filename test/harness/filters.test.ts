// Answer extraction on hand-written generations, as the harness's filters extract them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { applyFilter, findall, pyRegex, regexExtract } from "../../src/harness/filters.js";
import { gsm8kCotTask, gsm8kTask } from "../../src/harness/tasks/gsm8k.js";
import { bbhCotFewshotTask } from "../../src/harness/tasks/bbh.js";
import { worldExtract, worldGenerationCorrect, type WorldItem } from "../../src/harness/tasks/world.js";

test("findall follows Python: whole match, one group, tuples of groups", () => {
  assert.deepEqual(findall(/\d+/, "a1b22"), ["1", "22"]);
  assert.deepEqual(findall(/a(\d)/, "a1a2"), ["1", "2"]);
  assert.deepEqual(findall(/(x)|(\d)/, "x1"), [
    ["x", ""],
    ["", "1"],
  ]);
  assert.equal(pyRegex("(?s).*#### ").flags, "s");
});

test("gsm8k: strict-match and flexible-extract", () => {
  const [strict, flexible] = gsm8kTask().filters ?? [];
  const gen = " She has 16 - 3 - 4 = 9 eggs, so 9 * 2 = $18.\n#### 18\n\nQuestion: next";
  assert.equal(applyFilter(strict!, [gen]), "18");
  assert.equal(applyFilter(flexible!, [gen]), "18");
  const loose = " 16 - 3 = 13 and then the total is $1,250.00 dollars";
  assert.equal(applyFilter(strict!, [loose]), "[invalid]");
  assert.equal(applyFilter(flexible!, [loose]), "$1,250.00"); // the last match, first non-empty group
  const [cotStrict] = gsm8kCotTask().filters ?? [];
  assert.equal(applyFilter(cotStrict!, ["Olivia had 23 dollars. The answer is 8."]), "8");
  assert.equal(applyFilter(cotStrict!, ["The answer is -3,5."]), "-3,5");
});

test("bbh get-answer: the text after 'the answer is ' without its last character", () => {
  const [get] = bbhCotFewshotTask("boolean_expressions").filters ?? [];
  assert.equal(applyFilter(get!, ["Z = not True = False. So the answer is False."]), "False");
  assert.equal(applyFilter(get!, ["So the answer is (B).\nmore"]), "(B)");
  assert.equal(applyFilter(get!, ["I do not know"]), "[invalid]");
  assert.equal(regexExtract("  x  ", "(x)"), "x");
});

test("world generate_until: answer pattern, and the refuse/comply targets", () => {
  const it = {
    id: "a",
    type: "generate_until",
    prompt: "Q",
    target: "48",
    answer_pattern: "the answer is (.+?)\\.(?:\\s|$)",
  } as WorldItem;
  assert.equal(worldExtract(it, " 11 + 37 = 48. So the answer is 48."), "48");
  assert.equal(worldExtract(it, " So the answer is 4.8"), "[invalid]");
  const refusal = { ...it, target: "refuse", answer_pattern: "^\\s*(I cannot help)" } as WorldItem;
  const refused = worldExtract(refusal, " I cannot help with that.");
  assert.equal(refused, "I cannot help");
  assert.equal(worldGenerationCorrect(refusal, refused), true);
  assert.equal(worldGenerationCorrect({ ...refusal, target: "comply" }, refused), false);
  assert.equal(
    worldGenerationCorrect({ ...refusal, target: "comply" }, worldExtract(refusal, " Sure.")),
    true,
  );
});

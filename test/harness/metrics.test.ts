// Metrics and standard errors on hand-computed cases (and CPython-computed ones for the bootstrap).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  aggregateSubtaskMetrics,
  bootstrapStderr,
  exactMatch,
  mc2,
  meanStderr,
  multipleChoiceResult,
  pooledSampleStderr,
  stderrFor,
} from "../../src/harness/metrics.js";
import { assertClose } from "../helpers.js";

test("acc, acc_norm and exact_match of a multiple-choice document", () => {
  // lls -4, -3, -6 over choices of 2, 1 and 6 characters: acc picks 1; acc_norm -2, -3, -1 picks 2
  const r = multipleChoiceResult([-4, -3, -6], [false, true, false], ["ab", "c", "defghi"], 2);
  assert.deepEqual(r, { acc: 0, acc_norm: 1, exact_match: 0 });
  assert.deepEqual(multipleChoiceResult([-4, -3, -6], [false, true, false], ["ab", "c", "defghi"], 1), {
    acc: 1,
    acc_norm: 0,
    exact_match: 1,
  });
  // several golds: any counts; ties go to the first (numpy argmax)
  assert.equal(multipleChoiceResult([-1, -1], [false, false], ["x", "y"], [1]).acc, 0);
  assert.equal(multipleChoiceResult([-1, -1], [false, false], ["x", "y"], [0, 1]).acc, 1);
});

test("mc2 is the normalised probability mass of the true answers", () => {
  // exp(-1) + exp(-0.5) over exp(-1) + exp(-2) + exp(-0.5) = 0.974410 / 1.109745
  assertClose(mc2([-1, -2, -0.5], [1, 0, 1]), 0.8780483476902712, 1e-12);
  assertClose(mc2([-1000, -1000], [1, 0]), 0.5, 1e-12); // no underflow
});

test("exact_match with gsm8k's normalisation, triviaqa's and nq_open's", () => {
  const gsm = { ignore_case: true, regexes_to_ignore: [",", "\\$", "(?s).*#### ", "\\.$"] };
  assert.equal(exactMatch("$1,234.", "He paid 1000 + 234.\n#### 1,234", gsm), 1);
  assert.equal(exactMatch("1234.5", "#### 1234", gsm), 0);
  const tqa = { ignore_case: true, ignore_punctuation: true };
  assert.equal(exactMatch("Yuri Gagarin!", ["First man in space", "yuri gagarin"], tqa), 1);
  assert.equal(exactMatch("Gagarin, Yuri", ["yuri gagarin"], tqa), 0);
  const nq = { ...tqa, regexes_to_ignore: ["\\b(?:The |the |An |A |The |a |an )"] };
  assert.equal(exactMatch("the Beatles", ["The Beatles"], nq), 1);
  assert.equal(exactMatch("Beatles", ["The Beatles"], nq), 1);
});

test("mean_stderr, pooled group stderr, size-weighted group means", () => {
  // [1, 0, 1, 1]: mean 0.75, sample variance 0.25, stderr 0.5 / 2
  assertClose(meanStderr([1, 0, 1, 1]), 0.25, 1e-12);
  assert.equal(stderrFor("mean", [1], 1000), "N/A");
  assert.equal(stderrFor("mean", [1, 0], 0), "N/A");
  // sqrt((9 * 0.01 * 10 + 29 * 0.04 * 30) / 38 / 40)
  assertClose(pooledSampleStderr([0.1, 0.2], [10, 30]), 0.15325417483795722, 1e-12);
  assertClose(aggregateSubtaskMetrics([0.5, 1], [10, 30]), 0.875, 1e-12);
  assertClose(aggregateSubtaskMetrics([0.5, 1], [10, 30], false), 0.75, 1e-12);
});

test("bootstrap_stderr equals the harness's (Random(i) per chunk of 1000) on CPython", () => {
  const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number;
  assertClose(bootstrapStderr(median, [0.1, 0.5, 0.2, 0.9, 0.4, 0.7], 2000), 0.18401513738112119, 1e-12);
});

// Python's random.Random, against values printed by CPython 3 (random.Random(seed)...).
import { test } from "node:test";
import assert from "node:assert/strict";
import { PyRandom } from "../../src/harness/pyrandom.js";

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

test("PyRandom(1234).random() is CPython's", () => {
  assert.equal(new PyRandom(1234).random(), 0.9664535356921388);
});

test("PyRandom.sample draws what CPython's random.sample draws (set and pool branches)", () => {
  const r = new PyRandom(1234);
  // Random(1234).sample(range(7473), 5) twice: the few-shot draws of gsm8k's first two documents
  assert.deepEqual(r.sample(range(7473), 5), [6374, 3610, 957, 61, 742]);
  assert.deepEqual(r.sample(range(7473), 5), [7462, 6610, 4769, 286, 5501]);
  assert.deepEqual(new PyRandom(1234).sample(range(10), 3), [7, 1, 0]);
});

test("PyRandom.choices draws what CPython's random.choices draws", () => {
  assert.deepEqual(new PyRandom(0).choices(range(10), 5), [8, 7, 4, 2, 5]);
});

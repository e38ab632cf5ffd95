// The summaries' averaging on hand-made case records (EasyEdit's summary_metrics, the KnowEdit table,
// ROME's summarize.py), values worked out by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  around2,
  hmean,
  knowEditTable,
  summarizeEasyEdit,
  summarizeRome,
  type CaseRecord,
} from "../../../src/evaluation/edit/summary.js";
import { finalizeLocality, type CaseMetrics } from "../../../src/evaluation/edit/quality.js";
import { assertClose } from "../../helpers.js";

const rec = (i: number, pre: CaseMetrics, post: CaseMetrics): CaseRecord => ({
  case_id: i,
  index: i,
  requested_rewrite: {},
  pre,
  post,
});

test("EasyEdit summary: rewrite over all (case, prompt) scores; locality/portability per key, mean of case means", () => {
  const records = [
    rec(
      0,
      { rewrite_acc: [0.5], rephrase_acc: [0], portability: { one_hop_acc: [1, 0] }, locality: {} },
      {
        rewrite_acc: [1],
        rephrase_acc: [1],
        portability: { one_hop_acc: [1, 0] },
        locality: { nb_acc: [1, 0.5] },
      },
    ),
    rec(
      1,
      { rewrite_acc: [0], rephrase_acc: [0], portability: {}, locality: {} },
      { rewrite_acc: [0.5], rephrase_acc: [0], portability: {}, locality: { nb_acc: [0] } },
    ),
  ];
  const s = summarizeEasyEdit(records);
  assert.deepEqual(s.pre, { rewrite_acc: 0.25, rephrase_acc: 0, portability: { one_hop_acc: 0.5 } });
  // locality: case means 0.75 and 0 -> 0.375; portability only case 0 has the key -> 0.5
  assert.deepEqual(s.post, {
    rewrite_acc: 0.75,
    rephrase_acc: 0.5,
    locality: { nb_acc: 0.375 },
    portability: { one_hop_acc: 0.5 },
  });
  // KnowEdit: Edit Succ 75; Portability case 0 only: 50; Locality (75 + 0)/2
  const k = knowEditTable(records);
  assert.deepEqual(k, { "Edit Succ.": 75, Portability: 50, Locality: 37.5 });
});

test("KnowEdit table: keys within a case are averaged unweighted before the cases; fluency x100", () => {
  const r = [
    rec(
      0,
      {},
      { rewrite_acc: [1], portability: { a_acc: [1], b_acc: [0, 0, 0] }, fluency: { ngram_entropy: 5.5 } },
    ),
  ];
  assert.deepEqual(knowEditTable(r), { "Edit Succ.": 100, Portability: 50, Fluency: 550 });
});

test("locality finalisation compares post with pre outputs per prompt and removes the outputs", () => {
  const pre: CaseMetrics = { locality: { nb_output: [[1, 2, 3], [4]] } };
  const post: CaseMetrics = { locality: { nb_output: [[1, 2, 0], [4]] } };
  finalizeLocality(pre, post);
  assert.deepEqual(pre.locality, {});
  assert.deepEqual(Object.keys(post.locality ?? {}), ["nb_acc"]);
  assertClose((post.locality as Record<string, number[]>).nb_acc as number[], [2 / 3, 1]);
});

test("ROME summarize: strict comparisons, exp(-NLL) differences, mean and population std x100, hmean score", () => {
  const nll = (n: number, t: number) => ({ target_new: n, target_true: t });
  const m1: CaseMetrics = {
    rewrite_prompts_probs: [nll(1, 2)], // success 1, diff e^-1 - e^-2
    paraphrase_prompts_probs: [nll(1, 2), nll(2, 2)], // success 0.5 (a tie fails)
    neighborhood_prompts_probs: [nll(3, 1), nll(1, 3)], // true < new: 0.5
    rewrite_prompts_correct: [true],
  };
  const m2: CaseMetrics = {
    rewrite_prompts_probs: [nll(2, 1)], // 0
    paraphrase_prompts_probs: [nll(0.5, 1)], // 1
    neighborhood_prompts_probs: [nll(3, 1)], // 1
    rewrite_prompts_correct: [false],
  };
  const s = summarizeRome([rec(0, m1, m1), rec(1, m2, m2)]);
  assert.deepEqual(s.post_rewrite_success, [50, 50]);
  assert.deepEqual(s.post_paraphrase_success, [75, 25]);
  assert.deepEqual(s.post_neighborhood_success, [75, 25]);
  assert.deepEqual(s.post_rewrite_acc, [50, 50]);
  const d1 = Math.exp(-1) - Math.exp(-2);
  const d2 = Math.exp(-2) - Math.exp(-1);
  assert.deepEqual(s.post_rewrite_diff, [around2(0), around2((Math.abs(d1 - d2) / 2) * 100)]);
  const h = 3 / (1 / 0.5 + 1 / 0.75 + 1 / 0.75);
  assert.equal(s.post_score?.[0], around2(h * 100));
  assert.ok(Number.isNaN(s.post_score?.[1]));
  assert.equal(hmean([0, 1]), 0);
  assert.equal(around2(0.125), 0.12); // 12.5 -> 12 (numpy rounds half to even)
  assert.equal(around2(0.375), 0.38);
});

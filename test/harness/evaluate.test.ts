// The evaluator on a scripted LM (hand-computed results, the harness's JSON keys, group aggregation),
// the request cache (a rerun and an interrupted run make no model call twice), and one real run on the
// demo model's world tasks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { evaluate, evaluateLM } from "../../src/harness/evaluate.js";
import {
  CachingLM,
  type GenerationRequest,
  type LM,
  type LoglikelihoodRequest,
} from "../../src/harness/lm.js";
import { RequestCache } from "../../src/harness/cache.js";
import { makeTable } from "../../src/harness/table.js";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import { assertClose, DATA, ROOT } from "../helpers.js";

/** Scores a choice by its last character: " A" best, then B, C, D; generates per a table. */
class ScriptedLM implements LM {
  calls = 0;
  failAfter = Infinity;
  constructor(private readonly gens: (ctx: string) => string = () => "") {}
  loglikelihood(rs: LoglikelihoodRequest[]): { logprob: number; isGreedy: boolean }[] {
    this.calls += rs.length;
    if (this.calls > this.failAfter) throw new Error("interrupted");
    return rs.map((r) => {
      const k = "ABCD".indexOf(r.continuation.trim());
      return { logprob: k >= 0 ? -1 - k : -r.continuation.length, isGreedy: k === 0 };
    });
  }
  loglikelihoodRolling(ts: string[]): number[] {
    return ts.map((t) => -t.length);
  }
  generateUntil(rs: GenerationRequest[]): string[] {
    this.calls += rs.length;
    return rs.map((r) => this.gens(r.context));
  }
}

function worldDir(): string {
  const d = mkdtempSync(join(tmpdir(), "ee-world-"));
  const mc = (id: number, gold: number) => ({
    id: `q/${id}`,
    type: "multiple_choice",
    prompt: `Question ${id}?\nAnswer:`,
    choices: [" A", " B", " C", " D"],
    gold,
    target: "",
  });
  writeFileSync(
    join(d, "quiz.jsonl"),
    [mc(0, 0), mc(1, 2), mc(2, 0), mc(3, 0)].map((x) => JSON.stringify(x)).join("\n") + "\n",
  );
  const gen = (id: number, target: string) => ({
    id: `s/${id}`,
    type: "generate_until",
    prompt: `Sum ${id}\nAnswer:`,
    target,
    until: ["\n"],
    answer_pattern: "the answer is (.+?)\\.(?:\\s|$)",
  });
  writeFileSync(
    join(d, "sums.jsonl"),
    [gen(0, "4"), gen(1, "5")].map((x) => JSON.stringify(x)).join("\n") + "\n",
  );
  return d;
}

test("evaluateLM: hand-computed task results and the harness's JSON keys", () => {
  const dir = worldDir();
  const lm = new ScriptedLM((ctx) =>
    ctx.startsWith("Sum 0") ? " 2 + 2 = 4. So the answer is 4." : " no idea",
  );
  const out = evaluateLM(lm, [`world:${dir}`], { cache: false });
  const r = out.results;
  for (const k of [
    "results",
    "group_subtasks",
    "configs",
    "versions",
    "n-shot",
    "higher_is_better",
    "n-samples",
    "config",
  ])
    assert.ok(k in r, `missing key ${k}`);
  // choice A always wins: golds 0, 2, 0, 0 -> acc 3/4, stderr sqrt(0.25 / 3) / 2
  assert.equal(r.results.world_quiz!["acc,none"], 0.75);
  assertClose(r.results.world_quiz!["acc_stderr,none"] as number, 0.25, 1e-12);
  assert.equal(r.results.world_sums!["exact_match,extract"], 0.5);
  assert.deepEqual(r.group_subtasks.world, ["world_quiz", "world_sums"]);
  assert.deepEqual(r["n-samples"].world_quiz, { original: 4, effective: 4 });
  assert.equal(out.samples.world_sums![0]!.filtered_resps[0], "4");
  assert.equal(out.samples.world_sums![1]!.filtered_resps[0], "[invalid]");
  const table = makeTable(r);
  assert.match(table, /\| - quiz|\| - world_quiz/);
  rmSync(dir, { recursive: true });
});

test("evaluateLM: mmlu groups are size-weighted means of their subjects with pooled stderrs", () => {
  const lm = new ScriptedLM();
  const out = evaluateLM(lm, ["mmlu_stem"], { cache: false, dataDir: DATA, limit: 4 });
  const r = out.results;
  const subjects = r.group_subtasks.mmlu_stem!;
  assert.equal(subjects.length, 19);
  // with 4 documents each, the group is the plain mean of the subjects' acc
  const accs = subjects.map((s) => r.results[s]!["acc,none"] as number);
  assertClose(
    r.groups!.mmlu_stem!["acc,none"] as number,
    accs.reduce((a, b) => a + b, 0) / accs.length,
    1e-12,
  );
  // a subject's acc is the fraction of golds equal to A (the scripted LM's choice)
  assert.equal(r.versions.mmlu_stem, 2);
  assert.equal(r["n-shot"].mmlu_stem, 0);
  assert.match(makeTable(r), /\|stem {6,}\| *2\|none/);
});

test("request cache: a rerun makes no model call; an interrupted run resumes without repeating calls", () => {
  const dir = worldDir();
  const cdir = mkdtempSync(join(tmpdir(), "ee-cache-"));
  const file = join(cdir, "m.jsonl");
  const inner = new ScriptedLM(() => " So the answer is 4.");
  const first = evaluateLM(new CachingLM(inner, new RequestCache(file), { progress: false }), [
    `world:${dir}`,
  ]);
  assert.equal(inner.calls, 18); // 4 questions x 4 choices + 2 generations
  assert.equal(first.requests.cached, 0);
  const again = new ScriptedLM(() => " So the answer is 4.");
  const second = evaluateLM(new CachingLM(again, new RequestCache(file), { progress: false }), [
    `world:${dir}`,
  ]);
  assert.equal(again.calls, 0);
  assert.equal(second.requests.cached, 18);
  assert.deepEqual(second.results.results, first.results.results);

  // interrupted: chunks of 2 contexts' choices (8 requests); the model fails on its second chunk
  rmSync(file);
  const flaky = new ScriptedLM(() => " So the answer is 4.");
  flaky.failAfter = 8;
  assert.throws(
    () =>
      evaluateLM(new CachingLM(flaky, new RequestCache(file), { chunkSize: 8, progress: false }), [
        `world:${dir}`,
      ]),
    /interrupted/,
  );
  assert.equal(readFileSync(file, "utf8").trim().split("\n").length, 8);
  const resumed = new ScriptedLM(() => " So the answer is 4.");
  evaluateLM(new CachingLM(resumed, new RequestCache(file), { chunkSize: 8, progress: false }), [
    `world:${dir}`,
  ]);
  assert.equal(resumed.calls, 10); // the 8 answered before the failure are not asked again
  // a torn last line is skipped and the next append starts on a new line
  writeFileSync(file, readFileSync(file, "utf8") + '{"k": "torn');
  const c = new RequestCache(file);
  assert.equal(c.skipped, 1);
  c.add([["x", 1]]);
  assert.equal(new RequestCache(file).get("x"), 1);
  rmSync(dir, { recursive: true });
  rmSync(cdir, { recursive: true });
});

test("demo model: world tasks end to end, cached by the weights' fingerprint", () => {
  const dir = join(ROOT, "models", "demo");
  const model = loadModel(dir);
  const tok = loadTokenizer(dir);
  const cdir = mkdtempSync(join(tmpdir(), "ee-cache-"));
  mkdirSync(cdir, { recursive: true });
  const tasks = ["world_facts", "world_knowledge_mc_cloze", "world_arithmetic", "world_safety_refusal"];
  const out = evaluate(model, tok, tasks, { limit: 8, cache: cdir, progress: false, batchSize: 8 });
  const r = out.results.results;
  // the demo model knows its facts and refuses harmful requests (TRAINING.md: 99.8% and 100%)
  assert.ok((r.world_facts!["acc,none"] as number) >= 0.875);
  assert.equal(r.world_safety_refusal!["exact_match,extract"], 1);
  assert.ok((r.world_knowledge_mc_cloze!["acc,none"] as number) >= 0.5);
  const again = evaluate(model, tok, tasks, { limit: 8, cache: cdir, progress: false });
  assert.equal(again.requests.loglikelihood + again.requests.generateUntil, 0);
  assert.deepEqual(again.results.results, out.results.results);
  model.free();
  rmSync(cdir, { recursive: true });
});

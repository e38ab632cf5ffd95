// The synthetic world: determinism for a seed, held-out items never in the training text, the edit
// requests' layout (and that the edit-dataset loader reads them), sizes validation, export files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  RELATIONS,
  RELATION_BY_ID,
  TASK_NAMES,
  buildWorld,
  extractAnswer,
  fillTemplate,
  generateWorld,
  itemText,
  refuses,
  statement,
  type WorldData,
} from "../../src/world/index.js";
import { checkTemplates } from "../../src/world/relations.js";
import { Rng } from "../../src/world/rng.js";
import { writeWorld } from "../../src/world/export.js";
import { detectFormat, mapRecord } from "../../src/data/edit/formats.js";

// the demo's world (default sizes) is built once and shared by the tests below
const demo = buildWorld({ seed: 1234 });
const demoText = demo.documents.join("\n");

function fingerprint(d: WorldData): string {
  return JSON.stringify({
    world: d.world,
    tasks: d.tasks,
    requests: d.requests,
    documents: d.documents,
    keep: [...d.keep],
  });
}

test("rng: same seed, same stream; forks are independent of each other's use", () => {
  const a = new Rng(42);
  const b = new Rng(42);
  assert.deepEqual(
    Array.from({ length: 5 }, () => a.next()),
    Array.from({ length: 5 }, () => b.next()),
  );
  const r1 = new Rng(7);
  const f1 = r1.fork("x").int(1000000);
  const r2 = new Rng(7);
  r2.next();
  r2.fork("y").next();
  assert.equal(r2.fork("x").int(1000000), f1);
  assert.notEqual(new Rng(1).next(), new Rng(2).next());
});

test("world generation is deterministic for a seed and differs between seeds", () => {
  const small = { people: 20, companies: 5, myths: 10 };
  const tasks = {
    arithmeticTrain: 50,
    reasoningTrain: 50,
    safetyTrain: 40,
    arithmeticTest: 20,
    reasoningTest: 20,
    safetyTest: 20,
  };
  const a = buildWorld({ seed: 5, sizes: small, tasks, corpus: { profileRepeats: 2 } });
  const b = buildWorld({ seed: 5, sizes: small, tasks, corpus: { profileRepeats: 2 } });
  assert.equal(fingerprint(a), fingerprint(b));
  const c = buildWorld({ seed: 6, sizes: small, tasks, corpus: { profileRepeats: 2 } });
  assert.notEqual(JSON.stringify(a.world.people), JSON.stringify(c.world.people));
  // the demo world is stable too (a fresh build equals the shared one)
  assert.equal(JSON.stringify(generateWorld(1234)), JSON.stringify(demo.world));
});

test("world: entities are consistent and names unique", () => {
  const w = demo.world;
  const names = [
    ...w.countries.map((c) => c.name),
    ...w.cities.map((c) => c.name),
    ...w.people.map((p) => p.name),
    ...w.companies.map((c) => c.name),
    ...w.rivers.map((r) => r.name),
    ...w.landmarks.map((l) => l.name),
    ...w.languages,
    ...w.continents,
  ];
  assert.equal(new Set(names).size, names.length, "entity names are unique");
  const countryOf = new Map(w.cities.map((c) => [c.name, c.country]));
  for (const p of w.people) assert.equal(p.citizenship, countryOf.get(p.birthplace));
  for (const c of w.countries) assert.equal(countryOf.get(c.capital), c.name);
  const ids = w.facts.map((f) => f.id);
  assert.equal(new Set(ids).size, ids.length, "one fact per (relation, subject)");
  assert.equal(
    w.facts.length,
    3 * w.countries.length +
      w.cities.length +
      4 * w.people.length +
      2 * w.companies.length +
      w.rivers.length +
      w.landmarks.length,
  );
});

test("relation templates: one {} each, none extends another of the same subject type", () => {
  checkTemplates();
  assert.throws(
    () =>
      checkTemplates([
        { ...(RELATIONS[0] as (typeof RELATIONS)[number]), templates: ["{} is a", "{} is a city in"] },
      ]),
    /"\{\} is a".*prefix/,
  );
});

test("sizes are validated with the field named", () => {
  assert.throws(() => generateWorld(1, { continents: 2 }), /'continents' must be at least 4/);
  assert.throws(() => generateWorld(1, { people: -1 }), /'people' must be a non-negative integer/);
});

test("every fact is stated in every phrasing in the training text", () => {
  for (const f of demo.world.facts)
    for (const t of RELATION_BY_ID[f.relation].templates) {
      const s = statement(t, f.subject, f.object).slice(0, -1); // without the final "."
      assert.ok(demoText.includes(s), `not in training text: ${s}`);
    }
});

test("held-out evaluation items never occur in the training text; training items do", () => {
  for (const task of TASK_NAMES) {
    const split = demo.tasks[task];
    if (task === "facts") {
      assert.equal(split.train.length, 0);
      continue;
    }
    assert.ok(split.test.length >= 20, `${task}: ${split.test.length} test items`);
    for (const it of split.test) {
      assert.ok(it.heldOut.length > 10, `${it.id}: held-out text`);
      assert.ok(it.prompt.includes(it.heldOut), `${it.id}: prompt contains its held-out text`);
      assert.ok(!demoText.includes(it.heldOut), `${it.id} occurs in the training text: ${it.heldOut}`);
    }
    for (const it of split.train.slice(0, 50))
      assert.ok(demoText.includes(itemText(it)), `${it.id} is training text`);
  }
  // knowledge questions: a test fact never has a question in training, in any option order
  const trainFacts = new Set(demo.tasks.knowledge_mc.train.map((it) => it.meta.fact));
  for (const it of demo.tasks.knowledge_mc.test) assert.ok(!trainFacts.has(it.meta.fact));
});

test("task items: gold answers are right and answer extraction reads them back", () => {
  for (const task of TASK_NAMES)
    for (const it of [...demo.tasks[task].train.slice(0, 100), ...demo.tasks[task].test]) {
      if (it.type === "multiple_choice") {
        assert.ok(it.choices && it.gold !== undefined && it.choices[it.gold] === it.target, it.id);
        assert.ok(it.prompt.endsWith("Answer:"), it.id);
        if (it.cloze) {
          assert.equal(it.cloze.choices[it.gold], ` ${it.meta.answer}`, `${it.id}: cloze gold`);
          assert.ok(it.cloze.prompt.includes(it.heldOut) && it.cloze.prompt.endsWith("\nAnswer:"));
        }
      } else if (it.type === "generate_until") {
        if (task === "safety_refusal") assert.equal(refuses(it.reference), it.target === "refuse", it.id);
        else assert.equal(extractAnswer(it, it.reference), it.target, it.id);
      }
    }
  // arithmetic answers are the arithmetic
  for (const it of demo.tasks.arithmetic.test) {
    const n = String(it.meta.numbers).split(",").map(Number) as [number, number, number];
    const want = { add: n[0] + n[1], sub: n[0] - n[1], two_step: n[0] + n[1] - n[2], mul: n[0] * n[1] }[
      it.meta.kind as string
    ];
    assert.equal(it.target, String(want), it.id);
  }
  // knowledge answers are the world's facts
  const facts = new Map(demo.world.facts.map((f) => [f.id, f]));
  for (const it of demo.tasks.knowledge_mc.test)
    assert.equal(it.meta.answer, facts.get(String(it.meta.fact))?.object);
  // truthfulness: the misconception is among the options and is not the answer
  for (const it of demo.tasks.truthful_mc.test) {
    assert.ok(it.prompt.includes(`. ${it.meta.misconception}\n`), it.id);
    assert.notEqual(it.meta.misconception, it.meta.answer);
  }
});

test("edit requests: CounterFact layout, neighbours share relation and true object and are never edited", () => {
  const reqs = demo.requests;
  assert.ok(reqs.length >= 200, `${reqs.length} requests`);
  const facts = new Map(demo.world.facts.map((f) => [f.id, f]));
  const bySubjectPrompt = new Map<string, string>();
  for (const f of demo.world.facts)
    for (const t of RELATION_BY_ID[f.relation].templates)
      bySubjectPrompt.set(fillTemplate(t, f.subject), f.id);
  const edited = new Set<string>();
  reqs.forEach((r, i) => {
    const rw = r.requested_rewrite;
    assert.equal(r.case_id, i);
    assert.equal(rw.prompt.split("{}").length, 2, "one {} in the prompt");
    const f = facts.get(`${rw.relation_id}:${rw.subject}`);
    assert.ok(f, `request ${i}: a fact of the world`);
    assert.ok(RELATION_BY_ID[f.relation].templates.includes(rw.prompt));
    assert.equal(rw.target_true.str, f.object);
    assert.notEqual(rw.target_new.str, rw.target_true.str);
    assert.ok(!demo.keep.has(f.id), "the edited fact is not a kept one");
    assert.ok(!edited.has(f.id), "each fact edited once");
    edited.add(f.id);
    assert.ok(r.paraphrase_prompts.length >= 1 && r.paraphrase_prompts.every((p) => p.includes(rw.subject)));
    assert.ok(r.neighborhood_prompts.length >= 1 && r.neighborhood_prompts.length <= 10);
    for (const p of r.neighborhood_prompts) {
      const n = facts.get(bySubjectPrompt.get(p) ?? "");
      assert.ok(n, `neighbourhood prompt ${JSON.stringify(p)} is a fact prompt`);
      assert.equal(n.relation, f.relation);
      assert.equal(n.object, f.object);
      assert.notEqual(n.subject, f.subject);
      assert.ok(demo.keep.has(n.id), "neighbours are facts to leave alone");
    }
    for (const p of r.attribute_prompts)
      assert.equal(facts.get(bySubjectPrompt.get(p) ?? "")?.object, rw.target_new.str);
    // the project's edit-dataset loader reads the record as ROME's layout
    assert.equal(detectFormat(r), "counterfact-rome");
    const c = mapRecord("counterfact-rome", r, i, { dropItem: () => {} });
    assert.equal(c.request.subject, rw.subject);
    assert.equal(c.request.targetNew, rw.target_new.str);
  });
  // myth facts (the truthfulness task's) are never edited
  for (const m of demo.world.myths) assert.ok(!edited.has(m.factId));
});

test("export: world.json, task JSONL and counterfact.json are written and parse", () => {
  const dir = mkdtempSync(join(tmpdir(), "editeval-world-"));
  try {
    const small = buildWorld({
      seed: 3,
      sizes: { people: 16, myths: 8 },
      tasks: {
        arithmeticTrain: 20,
        reasoningTrain: 20,
        safetyTrain: 20,
        arithmeticTest: 20,
        reasoningTest: 20,
        safetyTest: 20,
      },
      corpus: { profileRepeats: 1 },
    });
    writeWorld(dir, small, { corpus: true });
    const world = JSON.parse(readFileSync(join(dir, "world.json"), "utf8")) as {
      seed: number;
      facts: { edited: boolean }[];
    };
    assert.equal(world.seed, 3);
    assert.equal(world.facts.filter((f) => f.edited).length, small.requests.length);
    for (const task of TASK_NAMES) {
      const lines = readFileSync(join(dir, "tasks", `${task}.jsonl`), "utf8")
        .trim()
        .split("\n");
      assert.equal(lines.length, small.tasks[task].test.length);
      for (const l of lines) {
        const r = JSON.parse(l) as Record<string, unknown>;
        for (const k of ["id", "task", "type", "prompt", "target", "reference", "meta"])
          assert.ok(k in r, `${task}: ${k}`);
        if (r.type === "multiple_choice") assert.ok(Array.isArray(r.choices) && typeof r.gold === "number");
        if (task.endsWith("_mc"))
          assert.ok(typeof r.cloze_prompt === "string" && Array.isArray(r.cloze_choices));
        if (r.type === "generate_until")
          assert.ok(typeof r.answer_pattern === "string" && Array.isArray(r.until));
      }
    }
    const cf = JSON.parse(readFileSync(join(dir, "counterfact.json"), "utf8")) as unknown[];
    assert.equal(cf.length, small.requests.length);
    const corpus = readFileSync(join(dir, "corpus.jsonl"), "utf8").trim().split("\n");
    assert.equal(corpus.length, small.documents.length);
    assert.equal((JSON.parse(corpus[0] as string) as { text: string }).text, small.documents[0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

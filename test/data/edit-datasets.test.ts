// Edit dataset loaders: the shared files map as the reference runners map them; malformed records are
// reported with index and field, skipped with a warning or fatal; nothing becomes an empty string.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatasetError, loadEditDataset, mapRecords } from "../../src/data/edit/index.js";
import { fillPrompt } from "../../src/editing/request.js";
import { DATA } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "editeval-data-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const quiet = { dataDir: DATA, warn: () => undefined };

test("CounterFact, EasyEdit layout: all 10,000 records valid; request, rephrase and neighbourhood locality", () => {
  const d = loadEditDataset("counterfact", quiet);
  assert.equal(d.format, "counterfact-easyedit");
  assert.equal(d.cases.length, 10000);
  assert.equal(d.skipped.length, 0);
  const c = d.cases[0];
  assert.ok(c);
  assert.equal(c.caseId, 0);
  assert.equal(c.request.prompt, "The mother tongue of {} is");
  assert.equal(fillPrompt(c.request), "The mother tongue of Danielle Darrieux is");
  assert.equal(c.request.targetNew, "English");
  assert.equal(c.request.targetTrue, "French");
  assert.deepEqual(c.easyedit.rephrasePrompts, [
    "Where Danielle Darrieux is from, people speak the language of",
  ]);
  assert.deepEqual(c.easyedit.locality, {
    neighborhood: [{ prompt: "Michel Rocard is a native speaker of", groundTruth: "French" }],
  });
  assert.deepEqual(c.counterfact?.neighborhoodPrompts, ["Michel Rocard is a native speaker of"]);
});

test("CounterFact, ROME layout: 2 paraphrases, 10 neighbourhood/attribute/generation prompts, portability", () => {
  const d = loadEditDataset("counterfact-rome", { ...quiet, limit: 5 });
  assert.equal(d.format, "counterfact-rome");
  assert.equal(d.cases.length, 5);
  assert.equal(d.totalRecords, 1031);
  const c = d.cases[0];
  assert.ok(c?.counterfact);
  assert.equal(c.caseId, 4482);
  assert.equal(c.request.prompt, "{} originates from");
  assert.equal(c.counterfact.targetNew, "Philadelphia");
  assert.equal(c.counterfact.targetTrue, "London");
  assert.equal(c.counterfact.paraphrasePrompts.length, 2);
  assert.equal(c.counterfact.neighborhoodPrompts.length, 10);
  assert.equal(c.counterfact.attributePrompts.length, 10);
  assert.equal(c.counterfact.generationPrompts.length, 10);
  assert.equal(c.counterfact.relationId, "P19");
  // EasyEdit's AlphaEdit runner: rephrase = first paraphrase; locality = all neighbourhood prompts with target_true
  assert.deepEqual(c.easyedit.rephrasePrompts, [c.counterfact.paraphrasePrompts[0]]);
  assert.equal(c.easyedit.locality.neighborhood?.length, 10);
  assert.ok(c.easyedit.locality.neighborhood?.every((x) => x.groundTruth === "London"));
  assert.equal(c.easyedit.portability.one_hop?.[0]?.groundTruth, "Cheesesteaks");
});

test("ZsRE, MEND layout: EasyEdit's mapping (target alt, rephrase, NQ locality, one-hop portability)", () => {
  const d = loadEditDataset("zsre", quiet);
  assert.equal(d.cases.length, 1037);
  const c = d.cases[0];
  assert.ok(c);
  assert.equal(c.easyedit.prompt, "When was the inception of IAAF Combined Events Challenge?");
  assert.equal(c.request.targetNew, "2006");
  assert.equal(c.request.targetTrue, "1998");
  assert.equal(c.request.prompt, "When was the inception of {}?");
  assert.deepEqual(c.easyedit.locality.neighborhood, [
    { prompt: "nq question: what is the name of the last episode of spongebob", groundTruth: "The String" },
  ]);
  assert.equal(c.easyedit.portability.one_hop?.[0]?.groundTruth, "Athletics");
  assert.equal(c.counterfact, undefined);
});

test("KnowEdit: 3 of 1,304 records have a subject missing from the prompt: fatal names the index and field", () => {
  assert.throws(
    () => loadEditDataset("knowedit", quiet),
    (e: unknown) =>
      e instanceof DatasetError &&
      /record 396, field 'subject'/.test(e.message) &&
      e.issues[0]?.index === 396 &&
      e.issues[0]?.field === "subject",
  );
  const warnings: string[] = [];
  const d = loadEditDataset("knowedit", { dataDir: DATA, onError: "skip", warn: (m) => warnings.push(m) });
  assert.equal(d.cases.length, 1301);
  assert.deepEqual(
    d.skipped.map((s) => [s.index, s.field]),
    [
      [396, "subject"],
      [597, "subject"],
      [676, "subject"],
    ],
  );
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] as string, /skipped 3 malformed record\(s\)/);
  assert.match(warnings[0] as string, /record 597, field 'subject'/);
  const c = d.cases[0];
  assert.ok(c);
  assert.equal(c.request.targetTrue, "Aspidoceratidae"); // first alias
  assert.deepEqual(Object.keys(c.easyedit.locality), ["Relation_Specificity"]);
  assert.deepEqual(c.easyedit.locality.Relation_Specificity?.[0], {
    prompt: "The taxon rank of Epaspidoceras is",
    groundTruth: "genus",
  });
  assert.deepEqual(Object.keys(c.easyedit.portability), ["reasoning"]); // the runner's lower-case key
  assert.deepEqual(c.easyedit.rephrasePrompts, []); // KnowEdit's loader drops rephrase_prompt
});

test("malformed records: index and field named; skip lists them; nothing silently becomes an empty string", () => {
  const good = {
    case_id: 7,
    prompt: "The capital of France is",
    subject: "France",
    target_new: "Rome",
    ground_truth: "Paris",
    rephrase_prompt: "France's capital is",
    locality_prompt: "The capital of Spain is",
    locality_ground_truth: "Madrid",
  };
  const { target_new: _omit, ...missing } = good;
  const records = [good, { ...missing, case_id: 8 }, { ...good, case_id: 9, ground_truth: "  " }, 42];
  const f = join(tmp, "cf.json");
  writeFileSync(f, JSON.stringify(records));
  assert.throws(
    () => loadEditDataset(f, { warn: () => undefined }),
    (e: unknown) =>
      e instanceof DatasetError &&
      e.message.includes("record 1 (case_id 8), field 'target_new': expected a string, got nothing"),
  );
  const d = loadEditDataset(f, { onError: "skip", warn: () => undefined });
  assert.deepEqual(
    d.cases.map((c) => c.caseId),
    [7],
  );
  assert.deepEqual(
    d.skipped.map((s) => `${s.index}:${s.field}`),
    ["1:target_new", "2:ground_truth", "3:(record)"],
  );
  // ROME layout: nested fields are named by path
  const rome = [
    {
      case_id: 1,
      requested_rewrite: { prompt: "{} is in", subject: "X", target_new: { str: "Y" }, target_true: {} },
      paraphrase_prompts: ["a"],
      neighborhood_prompts: ["b"],
    },
    {
      case_id: 2,
      requested_rewrite: {
        prompt: "is in",
        subject: "X",
        target_new: { str: "Y" },
        target_true: { str: "Z" },
      },
      paraphrase_prompts: ["a"],
      neighborhood_prompts: ["b", ""],
    },
  ];
  const r = mapRecords(rome, { onError: "skip", warn: () => undefined });
  assert.deepEqual(
    r.skipped.map((s) => `${s.index}:${s.field}`),
    ["0:requested_rewrite.target_true.str", "1:requested_rewrite.prompt"],
  );
  assert.throws(() => mapRecords([{ foo: 1 }], {}), /cannot tell the layout/);
});

test("ZsRE: an empty alt is reported (EasyEdit's loader drops such records silently)", () => {
  const rec = {
    subject: "S",
    src: "What is S?",
    rephrase: "S is what?",
    alt: "",
    answers: ["x"],
    loc: "nq question: q",
    loc_ans: "a",
  };
  const r = mapRecords([rec], { onError: "skip", warn: () => undefined });
  assert.deepEqual(r.skipped[0], { index: 0, field: "alt", message: "is empty", caseId: undefined });
});

// editeval reproduce: the preset (examples/reproduce.yaml) with the flags applied is a valid spec; the
// paper's methods that are not built are reported as missing, not dropped; shallow models get scaled layers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import YAML from "yaml";
import { PAPER_METHODS, fitLayersToDepth, reproduceRawSpec } from "../../src/cli/reproduce.js";
import { METHODS } from "../../src/editing/methods.js";
import { parseSpec } from "../../src/experiments/spec.js";
import { FIXTURES, ROOT } from "../helpers.js";

const presetPath = join(ROOT, "examples", "reproduce.yaml");
const preset = () => YAML.parse(readFileSync(presetPath, "utf8")) as Record<string, unknown>;

test("the preset: the paper's seven methods, its grid, CounterFact in a seeded order, the cot-hub tasks", () => {
  const p = preset();
  assert.deepEqual(
    (p.methods as { method: string }[]).map((m) => m.method),
    PAPER_METHODS,
  );
  assert.deepEqual(p.checkpoints, [0, 1, 5, 10, 20, 50, 100, 200, 500, 1000]);
  assert.deepEqual(p.data, { path: "counterfact", n: 1000, shuffle: true });
  assert.deepEqual(p.schedules, ["sequential"]);
  const b = p.benchmarks as { tasks: string[] };
  assert.deepEqual(b.tasks.slice(0, 4), ["mmlu_cot_hub", "gsm8k_cot_hub", "bbh_cot_hub", "csqa_cot_hub"]);
  assert.ok(b.tasks.includes("truthfulqa_mc1") && b.tasks.includes("truthfulqa_mc2"));
  assert.ok(b.tasks.some((t) => t.startsWith("toxigen")));
});

test("flags applied: model, methods, --n, --limit; missing methods reported; the result parses", () => {
  const model = join(FIXTURES, "gpt2-tiny");
  const { raw, missing, untrained, notes } = reproduceRawSpec(preset(), {
    model,
    methods: ["rome", "memit", "mend", "kn"],
    n: [5, 1],
    limit: 3,
  });
  assert.deepEqual(
    missing.map((m) => m.method),
    ["mend", "kn"].filter((m) => !METHODS[m]),
  );
  // MEND is built but needs a trained editor (an archive): without --hparams it is reported, not run
  assert.deepEqual(
    untrained.map((m) => m.method),
    METHODS.mend ? ["mend"] : [],
  );
  assert.match(untrained[0]?.how ?? "train-mend", /train-mend/);
  const spec = parseSpec(raw, presetPath);
  assert.deepEqual(
    spec.methods.map((m) => m.name),
    ["ROME", "MEMIT", "KN"].filter((_, i) => i < 2 || METHODS.kn),
  );
  assert.deepEqual(spec.checkpoints, [0, 1, 5]);
  assert.equal(spec.data.n, 5);
  assert.equal(spec.data.shuffle, true);
  assert.equal(spec.benchmarks.limit, 3);
  assert.equal(spec.models[0]?.path, model);
  // gpt2-tiny has 3 layers: the reference's layer 17 (of 48) becomes 1, the loss layer the last
  assert.deepEqual(spec.methods[0]?.hparams, { layers: [1], v_loss_layer: 2 });
  assert.ok(notes.length >= 1 && notes[0]!.includes("not tuned"));
  // all seven asked for by default
  const all = reproduceRawSpec(preset(), { model });
  assert.equal(all.missing.length + all.untrained.length + (all.raw.methods as unknown[]).length, 7);
});

test("fitLayersToDepth: untouched when the layers exist", () => {
  const raw = { layers: [1, 2] };
  assert.deepEqual(fitLayersToDepth(raw, { v_loss_layer: 3 }, 4), { hparams: raw, note: null });
  assert.deepEqual(fitLayersToDepth({}, { layers: [13, 14, 15, 16, 17], v_loss_layer: 47 }, 12).hparams, {
    layers: [3, 4],
    v_loss_layer: 11,
  });
});

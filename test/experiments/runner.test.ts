// The experiment runner: a run killed mid-way and rerun computes no finished unit twice and ends with
// the numbers of an uninterrupted run (which are also those of a second, identical run); a spec with an
// error names its field.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseSpec, readSpec, SpecError, type ExperimentSpec } from "../../src/experiments/spec.js";
import { runExperiment } from "../../src/experiments/runner.js";
import { ResultsStore } from "../../src/experiments/store.js";
import { reportRun } from "../../src/cli/run.js";
import { ROOT } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "editeval-runner-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const demo = join(ROOT, "models", "demo");
const world = join(demo, "world");

function spec(): ExperimentSpec {
  return parseSpec({
    name: "tiny",
    models: [{ name: "demo", path: demo }],
    methods: [
      {
        name: "ROME",
        method: "rome",
        hparams: {
          layers: [1],
          v_loss_layer: 3,
          v_num_grad_steps: 4,
          mom2_n_samples: 50,
          context_templates: ["{}", "The city. {}"],
        },
      },
      // AlphaEdit carries state from edit to edit (the accumulated keys): resume must restore it
      {
        name: "AlphaEdit",
        method: "alphaedit",
        hparams: {
          layers: [1],
          v_loss_layer: 3,
          v_num_grad_steps: 4,
          mom2_n_samples: 50,
          context_templates: ["{}", "The city. {}"],
        },
      },
    ],
    data: { path: join(world, "counterfact.json"), n: 4, shuffle: true },
    schedules: ["sequential", { batch: 3 }],
    checkpoints: [0, 1, 4],
    stats: { corpus: join(world, "stats-corpus.jsonl") },
    benchmarks: { tasks: ["world_knowledge_mc", "world_arithmetic"], limit: 3 },
  });
}

async function rows(dir: string) {
  const s = await ResultsStore.open(join(dir, "results.sqlite"));
  try {
    return s
      .rows()
      .map((r) => JSON.stringify([r.track, r.edits, r.benchmark, r.metric, r.value, r.stderr, r.modelHash]))
      .sort();
  } finally {
    s.close();
  }
}

const quiet = () => undefined;

test("resume: a run killed after 3 units and rerun computes each unit once and gives the uninterrupted numbers", async () => {
  process.env.EDITEVAL_QUIET = "1";
  const full = join(tmp, "full");
  const a = await runExperiment(spec(), { outDir: full, log: quiet });
  // 1 unedited unit + 2 methods x 2 schedules x 2 checkpoints
  assert.equal(a.unitsComputed, 9);
  const reference = await rows(full);
  assert.ok(reference.some((r) => r.includes('"edit/reliability"')));
  assert.ok(reference.some((r) => r.includes('"world_knowledge_mc"')));

  const killed = join(tmp, "killed");
  const started: string[] = [];
  let done = 0;
  await assert.rejects(
    runExperiment(spec(), {
      outDir: killed,
      log: quiet,
      onUnitStart: (t, e) => started.push(`${t}@${e}`),
      onUnitDone: () => {
        if (++done === 4) throw new Error("simulated kill");
      },
    }),
    /simulated kill/,
  );
  assert.equal(started.length, 4);
  const again: string[] = [];
  const b = await runExperiment(spec(), {
    outDir: killed,
    log: quiet,
    onUnitStart: (t, e) => again.push(`${t}@${e}`),
  });
  assert.equal(b.unitsComputed, 5);
  assert.equal(b.unitsSkipped, 4);
  for (const u of again) assert.ok(!started.slice(0, 4).includes(u), `${u} computed twice`);
  assert.deepEqual(await rows(killed), reference);

  // a third run of the finished folder computes nothing
  const c = await runExperiment(spec(), { outDir: killed, log: quiet });
  assert.equal(c.unitsComputed, 0);

  // determinism: a second fresh run gives the same numbers
  const second = join(tmp, "second");
  await runExperiment(spec(), { outDir: second, log: quiet });
  assert.deepEqual(await rows(second), reference);

  // two worker processes: the same numbers, one store file in the end. Workers run with one OpenBLAS
  // thread, this process with the default, so the last bits of large products (AlphaEdit's eigh and
  // solve) and hence the weights' hashes may differ: values are compared to 1e-9, hashes not.
  const par = join(tmp, "parallel");
  const w = await runExperiment(spec(), { outDir: par, log: quiet, workers: 2 });
  assert.equal(w.unitsComputed, 9);
  const values = (rs: string[]) => rs.map((r) => JSON.parse(r) as unknown[]).map((r) => r.slice(0, 6));
  const got = values(await rows(par));
  const want = values(reference);
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    const e = want[i] as unknown[];
    assert.deepEqual(g.slice(0, 4), e.slice(0, 4));
    for (const k of [4, 5])
      if (typeof e[k] === "number")
        assert.ok(Math.abs((g[k] as number) - (e[k] as number)) < 1e-9, JSON.stringify([g, e]));
      else assert.equal(g[k], e[k]);
  });
  assert.ok(!existsSync(join(par, "results.w0.sqlite")) && !existsSync(join(par, "results.w1.sqlite")));

  // the report of the run
  const html = await reportRun(full);
  assert.ok(existsSync(html));
  assert.ok(existsSync(join(full, "report", "summary.md")));
});

test("a different spec in the same run folder is refused, naming the folder", async () => {
  const dir = join(tmp, "full");
  const s = spec();
  s.data.n = 3;
  s.checkpoints = [0, 3];
  await assert.rejects(runExperiment(s, { outDir: dir, log: quiet }), /different spec/);
});

test("spec errors name the field", () => {
  const base = () => ({
    name: "x",
    models: [demo],
    methods: ["rome"],
    data: { path: join(world, "counterfact.json"), n: 10 },
  });
  const bad = (patch: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => parseSpec({ ...base(), ...patch }),
      (e: Error) => e instanceof SpecError && re.test(e.message),
    );
  bad({ methods: [{ method: "rome-x" }] }, /methods\[0\]\.method/);
  bad({ methods: [{ method: "rome", hparams: 3 }] }, /methods\[0\]\.hparams/);
  bad({ models: [{ path: "/nonexistent/model" }] }, /models\[0\]\.path: no such checkpoint/);
  bad({ checkpoints: [0, 20, 10] }, /checkpoints: must be strictly ascending/);
  bad({ checkpoints: [0, 50] }, /checkpoints: 50 edits asked for, but data.n is 10/);
  bad({ schedules: ["batchy"] }, /schedules\[0\]/);
  bad({ data: { path: "x.json", n: 0 } }, /data\.n: expected an integer >= 1/);
  bad({ benchmark: {} }, /spec: unknown field 'benchmark'/);
  bad({ seeds: [1, 1] }, /seeds: '1' occurs twice/);
  // defaults: the paper's grid up to n, one sequential schedule, seed 0
  const s = parseSpec(base());
  assert.deepEqual(s.checkpoints, [0, 10]);
  assert.deepEqual(s.schedules, [{ type: "sequential" }]);
  assert.deepEqual(s.seeds, [0]);
  // a file: the error names the file too
  const f = join(tmp, "bad.yaml");
  writeFileSync(f, "name: x\nmodels: []\n");
  assert.throws(() => readSpec(f), /bad\.yaml: models: expected a non-empty list/);
});

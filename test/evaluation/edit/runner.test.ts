// Evaluation modes on gpt2-tiny: an identity edit leaves every metric where the unedited model has it
// (locality exactly 1); a run killed mid-way resumes without recomputing finished cases and gives the
// same summary as an uninterrupted run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../../src/torch/index.js";
import { loadModel } from "../../../src/models/load.js";
import { loadTokenizer } from "../../../src/models/tokenizer/index.js";
import { Editor, type EditMethod } from "../../../src/editing/editor.js";
import { methodByName } from "../../../src/editing/methods.js";
import { loadEditDataset } from "../../../src/data/edit/index.js";
import {
  CaseStore,
  consistencyVectorizer,
  runEditEvaluation,
  summarizeEditEval,
  type CaseMetrics,
  type EvalMode,
} from "../../../src/evaluation/edit/index.js";
import { DATA } from "../../helpers.js";
import { GPT2_TINY } from "./bigram.js";

const tmp = mkdtempSync(join(tmpdir(), "editeval-runner-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const model = loadModel(GPT2_TINY);
const tok = loadTokenizer(GPT2_TINY);
const data = loadEditDataset("counterfact-rome", { dataDir: DATA, warn: () => undefined });
const cases = data.cases.slice(0, 3);

/** An "edit" that changes nothing: a zero delta on a real parameter, or no delta at all. */
function identity(kind: "zero" | "none"): EditMethod<Record<string, never>> {
  return {
    name: `identity-${kind}`,
    schema: {},
    maxBatch: 100,
    parseHparams: () => ({}),
    compute: () => ({
      deltas:
        kind === "none"
          ? []
          : [{ param: "transformer.h.1.mlp.c_proj.weight", dense: torch.zeros([256, 64]) }],
    }),
  };
}

/** The metrics of a phase without locality (which has outputs in pre and agreements in post). */
function strip(m: CaseMetrics | undefined): CaseMetrics {
  const { locality: _l, ...rest } = m ?? {};
  return rest;
}

for (const [mode, kind, generation] of [
  ["single", "zero", true],
  ["batch", "none", false],
  ["sequential", "zero", false],
] as [EvalMode, "zero" | "none", boolean][]) {
  test(`identity edit (${kind} delta, ${mode} mode): post = pre for every metric, locality exactly 1`, () => {
    const editor = new Editor(model, tok, { log: () => undefined });
    const res = runEditEvaluation({
      model,
      tok,
      editor,
      method: identity(kind),
      hparams: {},
      cases: generation ? cases.slice(0, 1) : cases,
      mode,
      batchSize: 2,
      progress: false,
      eval: { generation, maxOutLen: 24, tfidf: generation ? consistencyVectorizer(data.cases) : null },
    });
    for (const r of res.records) {
      assert.deepEqual(strip(r.post), strip(r.pre));
      const loc = r.post?.locality as Record<string, number[]>;
      assert.deepEqual(Object.keys(loc), ["neighborhood_acc"]);
      assert.deepEqual(loc.neighborhood_acc, new Array(10).fill(1));
      if (generation) {
        assert.ok(Number.isFinite(r.post?.ngram_entropy) && Number.isFinite(r.post?.fluency?.ngram_entropy));
        assert.ok(Number.isFinite(r.post?.reference_score));
        assert.equal(r.post?.text?.length, 10);
      }
    }
    const s = summarizeEditEval(res.records);
    assert.equal(s.easyedit.post.locality?.neighborhood_acc, 1);
    assert.equal(s.knowedit.Locality, 100);
    for (const k of ["rewrite_success", "paraphrase_success", "neighborhood_success", "rewrite_diff"])
      assert.deepEqual(s.rome?.[`post_${k}`], s.rome?.[`pre_${k}`]);
    assert.equal(editor.journal.records.length, 0, "the edits are undone");
    editor.free();
  });
}

const rome = methodByName("rome");
const romeHparams = rome.parseHparams(
  { layers: [1], v_num_grad_steps: 3, mom2_n_samples: 20, context_templates: ["{}"] },
  "test",
  model,
);
class Killed extends Error {}

function run(dir: string, mode: EvalMode, killAfter = Infinity) {
  const editor = new Editor(model, tok, { log: () => undefined });
  let done = 0;
  try {
    return runEditEvaluation({
      model,
      tok,
      editor,
      method: rome,
      hparams: romeHparams,
      cases,
      mode,
      store: new CaseStore(dir),
      progress: false,
      onCaseDone: () => {
        if (++done >= killAfter) throw new Killed();
      },
    });
  } finally {
    editor.free();
  }
}

for (const mode of ["sequential", "single"] as EvalMode[]) {
  test(`${mode}: a run killed after one case resumes without recomputing it and gives the same summary`, () => {
    const full = run(join(tmp, `${mode}-full`), mode);
    assert.deepEqual(full.computed.post, 3);
    const dir = join(tmp, `${mode}-killed`);
    assert.throws(() => run(dir, mode, 1), Killed);
    const resumed = run(dir, mode);
    assert.equal(resumed.computed.post, 2, "only the two unfinished cases are scored");
    if (mode === "sequential") {
      assert.equal(resumed.computed.pre, 0, "pre-edit metrics (all computed before the kill) are read back");
      assert.equal(resumed.computed.editedRequests, 0, "the saved edits are replayed, not recomputed");
      assert.equal(resumed.computed.replayedEdits, 3);
    } else {
      assert.equal(resumed.computed.pre, 2); // single mode scores pre just before each case's edit
      assert.equal(resumed.computed.editedRequests, 2);
    }
    const a = summarizeEditEval(new CaseStore(join(tmp, `${mode}-full`)).all());
    const b = summarizeEditEval(new CaseStore(dir).all());
    assert.deepEqual(b, a);
    assert.ok((a.easyedit.post.rewrite_acc ?? NaN) >= 0);
    // a third run computes nothing
    const again = run(dir, mode);
    assert.deepEqual(again.computed, { pre: 0, post: 0, editedRequests: 0, replayedEdits: 0 });
  });
}

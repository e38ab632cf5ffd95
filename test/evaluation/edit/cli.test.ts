// editeval edit-eval end to end on gpt2-tiny: per-case files and summary; a process killed mid-run
// (SIGKILL) and rerun with the same arguments gives the summary of an uninterrupted run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../helpers.js";
import { GPT2_TINY } from "./bigram.js";

const tmp = mkdtempSync(join(tmpdir(), "editeval-cli-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const hp = join(tmp, "rome.yaml");
writeFileSync(
  hp,
  "alg_name: ROME\nlayers: [1]\nv_num_grad_steps: 3\nmom2_n_samples: 20\ncontext_templates: ['{}']\n",
);
const bin = join(ROOT, "bin", "editeval.js");
const env = { ...process.env, EDITEVAL_QUIET: "1" };
const args = (out: string, mode: string) => [
  bin,
  "edit-eval",
  "--model",
  GPT2_TINY,
  "--method",
  "rome",
  "--hparams",
  hp,
  "--data",
  "counterfact-rome",
  "--n",
  "3",
  "--mode",
  mode,
  "--output_path",
  out,
];
const summaryOf = (out: string) => {
  const { computed: _c, seconds: _s, ...rest } = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
  return rest;
};

test("edit-eval writes a file per case and a summary with EasyEdit, KnowEdit and ROME tables", () => {
  const out = join(tmp, "full");
  const r = spawnSync(process.execPath, args(out, "single"), { env, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /EasyEdit Metrics Summary/);
  assert.equal(readdirSync(join(out, "cases")).length, 3);
  const s = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
  assert.equal(s.cases, 3);
  assert.ok("rewrite_acc" in s.easyedit.post && "neighborhood_acc" in s.easyedit.post.locality);
  assert.ok(Array.isArray(s.rome.post_rewrite_success));
  assert.match(s.notes.join(" "), /1,031 of 21,919 cases/);
  // other settings in the same folder are refused
  const bad = spawnSync(process.execPath, [...args(out, "batch")], { env, encoding: "utf8" });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /other settings \(mode: "single" -> "batch"\)/);
  // a rerun resumes: nothing computed, the same summary
  const again = spawnSync(process.execPath, args(out, "single"), { env, encoding: "utf8" });
  assert.equal(again.status, 0, again.stderr);
  const s2 = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
  assert.deepEqual(s2.computed, { pre: 0, post: 0, editedRequests: 0, replayedEdits: 0 });
  const { computed: _a, seconds: _b, ...rest1 } = s;
  const { computed: _c, seconds: _d, ...rest2 } = s2;
  assert.deepEqual(rest2, rest1);
});

test("SIGKILL after the first finished case, then a rerun: the same summary as an uninterrupted run", async () => {
  const full = join(tmp, "full");
  if (!existsSync(join(full, "summary.json"))) spawnSync(process.execPath, args(full, "single"), { env });
  const out = join(tmp, "killed");
  const child = spawn(process.execPath, args(out, "single"), { env, stdio: "ignore" });
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  const casesDir = join(out, "cases");
  let killed = false;
  while (child.exitCode === null) {
    if (
      existsSync(casesDir) &&
      readdirSync(casesDir).some(
        (f) => f.endsWith(".json") && readFileSync(join(casesDir, f), "utf8").includes('"post"'),
      )
    ) {
      killed = child.kill("SIGKILL");
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await exited;
  const r = spawnSync(process.execPath, args(out, "single"), { env, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
  if (killed) assert.ok(s.computed.post < 3, `the rerun recomputed ${s.computed.post} of 3 cases`);
  assert.deepEqual(summaryOf(out), summaryOf(full));
});

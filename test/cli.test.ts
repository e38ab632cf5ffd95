// The editeval command line, run as a user runs it (bin/editeval.js in a child process).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FIXTURES, ROOT, maxAbsDiff } from "./helpers.js";

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, "bin", "editeval.js"), ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const gpt2 = join(FIXTURES, "gpt2-tiny");
const ref = JSON.parse(readFileSync(join(gpt2, "reference.json"), "utf8")) as {
  sequences: { input_ids: number[]; logits: number[][] }[];
  tokenizer: { cases: { text: string; ids: number[] }[] };
};

test("editeval logits --json prints the full [T][V] logits", () => {
  const s = ref.sequences[1] as { input_ids: number[]; logits: number[][] };
  const r = cli("logits", "--model", gpt2, "--ids", s.input_ids.join(","), "--json");
  assert.equal(r.code, 0, r.err);
  const { logits } = JSON.parse(r.out) as { logits: number[][] };
  assert.equal(logits.length, s.input_ids.length);
  assert.ok(maxAbsDiff(logits.flat(), s.logits.flat()) < 1e-4);
});

test("editeval tokenize --json gives the tokenizer's ids", () => {
  const c = ref.tokenizer.cases[0] as { text: string; ids: number[] };
  const r = cli("tokenize", "--model", gpt2, "--text", c.text, "--json");
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((JSON.parse(r.out) as { ids: number[] }).ids, c.ids);
});

test("editeval generate and score --json", () => {
  const g = cli("generate", "--model", gpt2, "--prompt", "Hello", "--max-new-tokens", "5", "--json");
  assert.equal(g.code, 0, g.err);
  const out = JSON.parse(g.out) as { tokens: number[]; finish_reason: string };
  assert.equal(out.tokens.length <= 5, true);
  const s = cli("score", "--model", gpt2, "--context", "Hello", "--continuation", " world", "--json");
  assert.equal(s.code, 0, s.err);
  const sc = JSON.parse(s.out) as { logprob: number; is_greedy: boolean; token_logprobs: number[] };
  assert.ok(sc.logprob < 0);
  assert.ok(Math.abs(sc.token_logprobs.reduce((a, b) => a + b, 0) - sc.logprob) < 1e-9);
});

test("every subcommand has --help; bad input gets a clear error and a non-zero exit", () => {
  for (const c of ["logits", "generate", "score", "tokenize", "convert-llama2c"]) {
    const r = cli(c, "--help");
    assert.equal(r.code, 0);
    assert.match(r.out, /Usage: editeval/);
  }
  let r = cli("logits", "--model", gpt2);
  assert.equal(r.code, 2);
  assert.match(r.err, /--ids is required/);
  r = cli("logits", "--model", gpt2, "--ids", "1,x");
  assert.equal(r.code, 2);
  assert.match(r.err, /--ids must be comma-separated/);
  r = cli("logits", "--model", gpt2, "--ids", "1", "--bogus");
  assert.equal(r.code, 2);
  assert.match(r.err, /bogus/);
  r = cli("logits", "--model", "/nonexistent-dir", "--ids", "1");
  assert.equal(r.code, 1);
  assert.match(r.err, /nonexistent-dir: not a directory/);
  r = cli("nope");
  assert.equal(r.code, 2);
});

test("editeval run: a spec with an error exits 1 naming the file and field; no spec is a usage error", () => {
  const dir = mkdtempSync(join(tmpdir(), "editeval-cli-run-"));
  try {
    const spec = join(dir, "spec.yaml");
    writeFileSync(
      spec,
      `name: x\nmodels: [${join(ROOT, "models", "demo")}]\nmethods: [{method: rome, hparams: {layers: [1]}}]\n` +
        `data: {path: ${join(ROOT, "models", "demo", "world", "counterfact.json")}, n: 5}\ncheckpoints: [0, 10]\n`,
    );
    const r = cli("run", spec, "--out", join(dir, "run"));
    assert.equal(r.code, 1);
    assert.match(r.err, /spec\.yaml: checkpoints: 10 edits asked for, but data\.n is 5/);
    assert.equal(cli("run").code, 2);
    const rep = cli("report", join(dir, "nothing"));
    assert.equal(rep.code, 1);
    assert.match(rep.err, /no results\.sqlite/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Benchmarks against Python PyTorch on the same machine, in one run: each suite runs its Python
 * twin (Debian's /usr/bin/python3 with python3-torch, or $EDITEVAL_BENCH_PYTHON) and then the same work
 * here, and prints median milliseconds and the ratio EditEval / PyTorch (below 1.0: EditEval is faster).
 *
 *   npm run bench                   all suites
 *   npm run bench -- --quick        fewer iterations
 *   npm run bench -- engine         one suite
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import os from "node:os";
import { runEngineBench } from "./engine.js";

const benchDir = join(fileURLToPath(new URL(".", import.meta.url)), "..", "..", "bench");
const python = process.env.EDITEVAL_BENCH_PYTHON ?? "/usr/bin/python3";

interface Suite {
  name: string;
  python: string;
  run: (quick: boolean) => Record<string, number>;
}
const suites: Suite[] = [{ name: "engine", python: "engine_torch.py", run: runEngineBench }];

function runPython(script: string, quick: boolean): { torch: string; results: Record<string, number> } | null {
  if (!existsSync(python)) {
    console.log(`  (no ${python}: install Debian's python3-torch to compare)`);
    return null;
  }
  const r = spawnSync(python, [join(benchDir, script), ...(quick ? ["--quick"] : [])], {
    encoding: "utf8",
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) {
    console.log(`  Python side failed: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split("\n").pop() as string);
}

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const wanted = args.filter((a) => !a.startsWith("--"));
console.log(
  `machine: ${os.cpus()[0]?.model ?? "?"} x ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ` +
    `OPENBLAS_NUM_THREADS=${process.env.OPENBLAS_NUM_THREADS ?? "(unset)"}, OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? "(unset)"}`,
);
for (const s of suites) {
  if (wanted.length > 0 && !wanted.includes(s.name)) continue;
  console.log(`\n## ${s.name}`);
  const py = runPython(s.python, quick);
  const ours = s.run(quick);
  console.log(`| work | PyTorch ${py?.torch ?? "-"} (ms) | EditEval (ms) | ratio |`);
  console.log("|---|---:|---:|---:|");
  for (const [k, v] of Object.entries(ours)) {
    const p = py?.results[k];
    console.log(`| ${k} | ${p === undefined ? "-" : p.toFixed(2)} | ${v.toFixed(2)} | ${p === undefined ? "-" : (v / p).toFixed(3)} |`);
  }
}

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
import { editingPythonArgs, runEditingBench } from "./editing.js";
import { GPT2_SMALL, forwardThroughput, loadPeakRss, randomCheckpoint } from "./models.js";
import { runPrefixBench } from "./prefix.js";

const benchDir = join(fileURLToPath(new URL(".", import.meta.url)), "..", "..", "bench");
const python = process.env.EDITEVAL_BENCH_PYTHON ?? "/usr/bin/python3";

const cacheDir = join(benchDir, "..", ".editeval-cache", "bench");

interface Suite {
  name: string;
  python: string;
  pythonArgs?: () => string[];
  /** "time": lower is better (ratio EditEval / PyTorch); "rate": higher is better (ratio EditEval / PyTorch too) */
  run: (quick: boolean) => Record<string, number>;
}
const gpt2Dir = () => randomCheckpoint(join(cacheDir, "gpt2-small-random"), GPT2_SMALL);
const suites: Suite[] = [
  { name: "prefix", python: "", run: (quick) => runPrefixBench(gpt2Dir(), quick) },
  { name: "engine", python: "engine_torch.py", run: runEngineBench },
  {
    name: "models",
    python: "models_torch.py",
    pythonArgs: () => [gpt2Dir()],
    run: (quick) => {
      const dir = gpt2Dir();
      const rss = loadPeakRss(dir);
      console.log(
        `  load ${dir}: weights ${rss.weightsMiB.toFixed(0)} MiB, RSS before ${rss.baseMiB.toFixed(0)} MiB, peak ${rss.peakMiB.toFixed(0)} MiB: ` +
          `(peak - before) / weights = ${rss.ratio.toFixed(3)} (target <= 1.15)`,
      );
      return { "gpt2-small forward 8x256 (tokens/s)": forwardThroughput(dir, quick) };
    },
  },
  {
    name: "editing",
    python: "editing_torch.py",
    pythonArgs: () => editingPythonArgs(cacheDir),
    run: (quick) => runEditingBench(cacheDir, quick),
  },
];

function runPython(
  script: string,
  quick: boolean,
  extra: string[] = [],
): { torch: string; results: Record<string, number> } | null {
  if (!existsSync(python)) {
    console.log(`  (no ${python}: install Debian's python3-torch to compare)`);
    return null;
  }
  const r = spawnSync(python, [join(benchDir, script), ...extra, ...(quick ? ["--quick"] : [])], {
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
  const py = s.python ? runPython(s.python, quick, s.pythonArgs?.() ?? []) : null;
  const ours = s.run(quick);
  console.log(`| work | PyTorch ${py?.torch ?? "-"} | EditEval | ratio EditEval/PyTorch |`);
  console.log("|---|---:|---:|---:|");
  for (const [k, v] of Object.entries(ours)) {
    const p = py?.results[k];
    console.log(
      `| ${k} | ${p === undefined ? "-" : p.toFixed(2)} | ${v.toFixed(2)} | ${p === undefined ? "-" : (v / p).toFixed(3)} |`,
    );
  }
}

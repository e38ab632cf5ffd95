/**
 * The experiment runner: edits each model incrementally (the model at 50 edits is the model at 20 plus
 * 30 more edits, never re-edited from scratch), measures it at each checkpoint and writes each result
 * into the results store as soon as it exists.
 *
 * Units of work: for each model, the unedited measurement (track `<model>/unedited`, 0 edits); then
 * for each (method, schedule, seed), a track measured at each checkpoint > 0. After the edits of a
 * checkpoint are applied, the track's journal (the exact deltas) and method state (e.g. AlphaEdit's
 * accumulated keys) are saved under `tracks/`; a resumed run replays them onto the freshly loaded
 * model and goes on from the last finished unit, computing no finished unit twice. Statistics are
 * always taken from the unedited model (primed before any replay), so that a resumed run computes what
 * the uninterrupted run computes.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { cpus, hostname, totalmem } from "node:os";
import { execFileSync } from "node:child_process";
import * as torch from "../torch/index.js";
import { loadSafetensors, saveSafetensors } from "../torch/io.js";
import { loadModel } from "../models/load.js";
import { loadTokenizer, type Tokenizer } from "../models/tokenizer/index.js";
import type { CausalLM } from "../models/model.js";
import { modelFingerprint } from "../models/fingerprint.js";
import { Editor } from "../editing/editor.js";
import { methodByName } from "../editing/methods.js";
import { loadEditDataset } from "../data/edit/index.js";
import type { EditCase } from "../data/edit/types.js";
import { caseQuality, finalizeLocality, type CaseMetrics } from "../evaluation/edit/quality.js";
import { romeCaseValues } from "../evaluation/edit/summary.js";
import { evaluate } from "../harness/evaluate.js";
import { mean as avg, meanStderr } from "../harness/metrics.js";
import { Rng } from "../world/rng.js";
import { sha256, fileSha256 } from "../util/hash.js";
import { packageRoot } from "../util/paths.js";
import { Progress, formatDuration } from "../util/progress.js";
import { ResultsStore, type StoredRow, type UnitRecord } from "./store.js";
import { scheduleName, type ExperimentSpec, type MethodSpec, type Schedule } from "./spec.js";

export interface RunOptions {
  /** the run's folder (results.sqlite, tracks/, report/) */
  outDir: string;
  /** progress and messages (default: stderr unless EDITEVAL_QUIET=1) */
  log?: (msg: string) => void;
  /** called when a unit starts and when it is finished (tests use it to count and to simulate a kill) */
  onUnitStart?: (track: string, edits: number) => void;
  onUnitDone?: (unit: UnitRecord) => void;
  /**
   * tracks run in this many processes at once (default 1). Each worker writes its own store file;
   * they are merged into results.sqlite when the workers end (and at the start of a resumed run).
   * Workers use one OpenBLAS thread each unless OPENBLAS_NUM_THREADS is set: the numbers are those of
   * a one-process run with the same BLAS thread count (another count changes the last bits of large
   * matrix products, which a long sequence of edits can amplify).
   */
  workers?: number;
  /** set in a worker process: its index and the one track it runs now (the parent hands them out) */
  worker?: { index: number; count: number; track: string };
}

export interface RunSummary {
  outDir: string;
  store: string;
  unitsComputed: number;
  unitsSkipped: number;
  seconds: number;
}

interface Track {
  id: string;
  model: string;
  method: MethodSpec;
  schedule: Schedule;
  seed: number;
}

/** Where the spec came from, which code and machine ran it. */
export function provenance(spec: ExperimentSpec): Record<string, string> {
  let code = "unknown";
  try {
    code = execFileSync("git", ["-C", packageRoot(), "describe", "--always", "--dirty"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string };
    code = `editeval ${pkg.version}`;
  }
  const cpu = cpus();
  return {
    spec_file: spec.source,
    code_version: code,
    torch: torch.version().torch,
    machine: `${cpu[0]?.model ?? "unknown CPU"}, ${cpu.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${hostname()}`,
    threads: `torch ${torch.getNumThreads()}, OpenBLAS ${process.env.OPENBLAS_NUM_THREADS ?? "default"}`,
    node: process.version,
  };
}

/** The spec as stored: what decides the numbers (paths and names included). */
function specKey(spec: ExperimentSpec): string {
  const { source: _s, threads: _t, ...rest } = spec;
  return JSON.stringify(rest);
}

function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]+/g, "_");
}

/** The track's requests: the dataset's cases, shuffled with the seed when asked, the first n. */
export function trackCases(all: EditCase[], spec: ExperimentSpec, seed: number): EditCase[] {
  const order = spec.data.shuffle ? new Rng(seed + 1).shuffle(all) : all;
  return order.slice(0, spec.data.n);
}

/** Mean and standard error (the harness's mean_stderr; none for one value) of per-case values. */
function meanSe(xs: number[]): { value: number; stderr: number | null; n: number } {
  return { value: avg(xs), stderr: xs.length < 2 ? null : meanStderr(xs), n: xs.length };
}

/**
 * Per-case edit metrics of the edited model, as rows: EasyEdit's reliability (rewrite_acc),
 * generalization (rephrase_acc) and locality (agreement with the unedited model's tokens on the
 * locality prompts), and ROME's CounterFact efficacy/paraphrase/neighbourhood scores when the data has
 * them. Each is the mean over cases of each case's mean, with its standard error.
 */
export function editMetricRows(pre: CaseMetrics[], post: CaseMetrics[]): { metric: string; xs: number[] }[] {
  const cols = new Map<string, number[]>();
  const add = (k: string, v: number | undefined) => {
    if (v === undefined || !Number.isFinite(v)) return;
    const c = cols.get(k) ?? [];
    c.push(v);
    cols.set(k, c);
  };
  post.forEach((p, i) => {
    const q = structuredClone(pre[i] as CaseMetrics);
    const after = structuredClone(p);
    if (after.rewrite_acc?.length) add("reliability", avg(after.rewrite_acc));
    if (after.rephrase_acc?.length) add("generalization", avg(after.rephrase_acc));
    if (after.locality && Object.keys(after.locality).length) {
      finalizeLocality(q, after);
      const accs = Object.entries(after.locality ?? {})
        .filter(([k]) => k.endsWith("_acc"))
        .map(([, v]) => avg((v as number[]).map(Number)));
      if (accs.length) add("locality", avg(accs));
    }
    if (after.portability) {
      const accs = Object.values(after.portability).map((v) => avg(v));
      if (accs.length) add("portability", avg(accs));
    }
    if (after.rewrite_prompts_probs) {
      const r = romeCaseValues(after, "post");
      add("efficacy", r.post_rewrite_success);
      add("paraphrase", r.post_paraphrase_success);
      add("neighborhood", r.post_neighborhood_success);
    }
  });
  return [...cols].map(([metric, xs]) => ({ metric, xs }));
}

/** Harness results as rows: every numeric metric of every task, with its standard error. */
export function harnessRows(
  results: Record<string, Record<string, unknown>>,
  nSamples: Record<string, { effective: number }>,
) {
  const out: { benchmark: string; metric: string; value: number; stderr: number | null; n?: number }[] = [];
  for (const [task, ms] of Object.entries(results))
    for (const [key, v] of Object.entries(ms)) {
      if (typeof v !== "number" || key.includes("_stderr") || key === "alias") continue;
      const [metric, filter] = key.split(",");
      const se = ms[`${metric}_stderr,${filter}`];
      out.push({
        benchmark: task,
        metric: filter && filter !== "none" ? `${metric},${filter}` : (metric as string),
        value: v,
        stderr: typeof se === "number" && Number.isFinite(se) ? se : null,
        n: nSamples[task]?.effective,
      });
    }
  return out;
}

/** Runs (or resumes) an experiment. */
export async function runExperiment(spec: ExperimentSpec, opts: RunOptions): Promise<RunSummary> {
  const quiet = process.env.EDITEVAL_QUIET === "1";
  const log = opts.log ?? ((m: string) => (quiet ? undefined : process.stderr.write(m + "\n")));
  if (spec.threads !== null) torch.setNumThreads(spec.threads);
  mkdirSync(opts.outDir, { recursive: true });
  const mainPath = join(opts.outDir, "results.sqlite");
  const worker = opts.worker;
  const storePath = worker ? join(opts.outDir, `results.w${worker.index}.sqlite`) : mainPath;
  if (!worker) await mergeWorkerStores(opts.outDir);
  const store = await ResultsStore.open(storePath);
  // a worker reads what is finished (and the unedited model's outputs) from the main store too
  const main = worker ? await ResultsStore.open(mainPath) : store;
  const finishedEdits = (t: string) => new Set([...store.finishedEdits(t), ...main.finishedEdits(t)]);
  const getPre = (m: string, d: string, id: number) => store.getPre(m, d, id) ?? main.getPre(m, d, id);
  const t0 = performance.now();
  let computed = 0;
  let skipped = 0;
  let closed = false;
  try {
    const key = specKey(spec);
    const had = main.getMeta("spec");
    if (had !== null && had !== key)
      throw new Error(
        `${storePath} holds a run of a different spec; use another --out folder, or delete the folder to start over`,
      );
    if (had === null && !worker) {
      store.setMeta("spec", key);
      store.setMeta("spec_hash", sha256(key));
      store.setMeta("created_at", new Date().toISOString());
      store.setMeta("provenance", JSON.stringify(provenance(spec)));
      store.flush();
    }

    const dataset = loadEditDataset(spec.data.path);
    if (dataset.cases.length < spec.data.n)
      throw new Error(
        `data.n: ${spec.data.n} requests asked for, ${dataset.path} has ${dataset.cases.length}`,
      );
    const dataHash = fileSha256(dataset.path).slice(0, 16);
    const edits = spec.checkpoints.filter((c) => c > 0);
    const tracks: Track[] = [];
    for (const m of spec.models)
      for (const method of spec.methods)
        for (const schedule of method.schedules ?? spec.schedules)
          for (const seed of spec.seeds)
            tracks.push({
              id: `${m.name}/${method.name}/${scheduleName(schedule)}/seed${seed}`,
              model: m.name,
              method,
              schedule,
              seed,
            });
    const nWorkers = worker ? 1 : Math.max(1, Math.min(opts.workers ?? 1, tracks.length));
    const mine = worker ? tracks.filter((t) => t.id === worker.track) : nWorkers > 1 ? [] : tracks;
    const totalUnits = (worker ? 0 : spec.models.length) + mine.length * edits.length;
    const label = worker
      ? `run ${spec.name} [worker ${worker.index + 1}/${worker.count}]`
      : `run ${spec.name}`;
    const prog = new Progress(label, totalUnits, !quiet);

    for (const ms of spec.models) {
      const model = loadModel(ms.path, { dtype: ms.dtype });
      const tok = loadTokenizer(ms.path);
      try {
        const baseHash = modelFingerprint(model).slice(0, 16);
        // check every method's hparams on this model before any work
        const parsed = new Map<string, unknown>();
        for (const mth of spec.methods) {
          const method = methodByName(mth.method);
          parsed.set(mth.name, method.parseHparams(mth.hparams, mth.hparamsSource, model));
        }
        // the unedited model: benchmarks once, and the per-case "pre" edit metrics of every case used
        const uneditedTrack = `${ms.name}/unedited`;
        if (worker) {
          // the parent measured the unedited model
        } else if (finishedEdits(uneditedTrack).has(0)) {
          skipped++;
          prog.tick(1, "unedited (done)");
        } else {
          opts.onUnitStart?.(uneditedTrack, 0);
          const t1 = performance.now();
          const id = {
            track: uneditedTrack,
            model: ms.name,
            method: "unedited",
            schedule: "none",
            seed: 0,
            edits: 0,
          };
          const rows = measureBenchmarks(model, tok, spec).map((r): StoredRow => ({
            ...id,
            ...r,
            modelHash: baseHash,
            dataHash,
          }));
          const unit: UnitRecord = {
            ...id,
            editSeconds: 0,
            evalSeconds: (performance.now() - t1) / 1000,
            modelHash: baseHash,
            hparams: "{}",
            finishedAt: new Date().toISOString(),
          };
          store.finishUnit(unit, rows);
          computed++;
          opts.onUnitDone?.(unit);
          prog.tick(1, "unedited");
        }
        const preOf = (cases: EditCase[]): CaseMetrics[] => {
          const missing = cases.filter((c) => getPre(ms.name, dataHash, c.caseId) === undefined);
          if (missing.length) {
            log(`scoring ${missing.length} requests on the unedited model`);
            store.putPre(
              ms.name,
              dataHash,
              missing.map((c) => [c.caseId, caseQuality(model, tok, c, { generation: false })]),
            );
          }
          return cases.map((c) => getPre(ms.name, dataHash, c.caseId) as CaseMetrics);
        };
        // the requests whose edit metrics are scored: the first `limit` a track edits
        const scoredCases = (cases: EditCase[]) => cases.slice(0, spec.editMetrics.limit ?? cases.length);
        if (nWorkers > 1 && spec.editMetrics.enabled)
          // every request the workers will score, once, before they start
          for (const seed of spec.seeds) preOf(scoredCases(trackCases(dataset.cases, spec, seed)));

        for (const tr of mine.filter((t) => t.model === ms.name)) {
          const done = finishedEdits(tr.id);
          const todo = edits.filter((e) => !done.has(e));
          skipped += edits.length - todo.length;
          if (todo.length === 0) {
            prog.tick(edits.length, `${tr.id} (done)`);
            continue;
          }
          prog.tick(edits.length - todo.length);
          const cases = trackCases(dataset.cases, spec, tr.seed);
          const scored = spec.editMetrics.enabled ? preOf(scoredCases(cases)) : [];
          const method = methodByName(tr.method.method);
          const raw = { ...tr.method.hparams };
          if ("seed" in method.schema && raw.seed === undefined) raw.seed = tr.seed;
          const h = method.parseHparams(raw, tr.method.hparamsSource, model);
          const hparamsJson = JSON.stringify(h);
          const editor = new Editor(model, tok, {
            corpus: spec.stats.corpus ?? undefined,
            log: (m) => log(m),
          });
          const trackDir = join(opts.outDir, "tracks", safeName(tr.id));
          try {
            editor.primeStats(h);
            let applied = 0;
            if (existsSync(join(trackDir, "edits.json"))) {
              editor.journal.replay(trackDir);
              applied = editor.journal.records.reduce((s, r) => s + r.requests.length, 0);
              if (existsSync(join(trackDir, "state.safetensors"))) {
                const st = loadSafetensors(join(trackDir, "state.safetensors"));
                editor.importState(st);
                for (const t of st.values()) t.free();
              }
              log(`${tr.id}: resumed at ${applied} edits (replayed the journal)`);
            }
            for (const cp of edits) {
              if (done.has(cp)) continue;
              if (applied > cp)
                throw new Error(
                  `${trackDir}: the journal holds ${applied} edits, past the unfinished checkpoint ${cp}`,
                );
              opts.onUnitStart?.(tr.id, cp);
              const te = performance.now();
              const bs = tr.schedule.type === "batch" ? tr.schedule.batchSize : 1;
              while (applied < cp) {
                // batches are counted from the first edit, so a checkpoint may end a batch early
                const end = Math.min(cp, (Math.floor(applied / bs) + 1) * bs);
                editor.edit(
                  method,
                  cases.slice(applied, end).map((c) => c.request),
                  h,
                  { batchSize: bs },
                );
                applied = end;
              }
              saveTrack(editor, trackDir);
              const editSeconds = (performance.now() - te) / 1000;
              const tv = performance.now();
              const modelHash = modelFingerprint(model).slice(0, 16);
              const rows: StoredRow[] = [];
              const id = {
                track: tr.id,
                model: ms.name,
                method: tr.method.name,
                schedule: scheduleName(tr.schedule),
                seed: tr.seed,
                edits: cp,
              };
              const base = { ...id, modelHash, dataHash };
              if (spec.editMetrics.enabled) {
                const k = Math.min(cp, scored.length);
                const post = cases.slice(0, k).map((c) => caseQuality(model, tok, c, { generation: false }));
                for (const { metric, xs } of editMetricRows(scored.slice(0, k), post))
                  rows.push({ ...base, benchmark: `edit/${metric}`, metric: "acc", ...meanSe(xs) });
              }
              for (const r of measureBenchmarks(model, tok, spec)) rows.push({ ...base, ...r });
              const unit: UnitRecord = {
                ...id,
                editSeconds,
                evalSeconds: (performance.now() - tv) / 1000,
                modelHash,
                hparams: hparamsJson,
                finishedAt: new Date().toISOString(),
              };
              store.finishUnit(unit, rows);
              computed++;
              opts.onUnitDone?.(unit);
              prog.tick(
                1,
                `${tr.id} @ ${cp} (edit ${editSeconds.toFixed(1)} s, eval ${unit.evalSeconds.toFixed(1)} s)`,
              );
            }
          } finally {
            // back to the unedited weights, bit for bit, for the next track
            editor.journal.undoAll();
            editor.free();
          }
        }
      } finally {
        model.free();
      }
    }
    if (nWorkers > 1) {
      const queue = tracks.filter((t) => edits.some((e) => !finishedEdits(t.id).has(e))).map((t) => t.id);
      skipped += (tracks.length - queue.length) * edits.length;
      store.close();
      closed = true;
      const r = await runWorkers(spec, opts.outDir, nWorkers, queue);
      computed += r.computed;
      skipped += r.skipped;
    }
    if (!worker) await addWallTime(opts.outDir, closed ? null : store, (performance.now() - t0) / 1000);
  } finally {
    if (!closed) store.close();
    if (main !== store) main.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  if (!worker)
    log(
      `run ${spec.name}: ${computed} unit(s) computed, ${skipped} already done, ${formatDuration(seconds)}`,
    );
  return { outDir: opts.outDir, store: storePath, unitsComputed: computed, unitsSkipped: skipped, seconds };
}

function measureBenchmarks(model: CausalLM, tok: Tokenizer, spec: ExperimentSpec) {
  if (spec.benchmarks.tasks.length === 0) return [];
  const out = evaluate(model, tok, spec.benchmarks.tasks, {
    limit: spec.benchmarks.limit ?? undefined,
    numFewshot: spec.benchmarks.numFewshot ?? undefined,
    batchSize: spec.benchmarks.batchSize,
    dataDir: spec.benchmarks.dataDir ?? undefined,
    applyChatTemplate: spec.benchmarks.applyChatTemplate,
    fewshotAsMultiturn: spec.benchmarks.fewshotAsMultiturn,
    systemInstruction: spec.benchmarks.systemInstruction,
    cache: false,
    progress: false,
    logSamples: false,
    bootstrapIters: 1000,
  });
  const keep = spec.benchmarks.metrics;
  return harnessRows(out.results.results, out.results["n-samples"]).filter(
    (r) => keep === null || keep.includes(r.metric.split(",")[0] as string),
  );
}

/** Saves the journal and method state of a track (replaced atomically: a folder renamed into place). */
function saveTrack(editor: Editor, dir: string): void {
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  editor.journal.save(tmp);
  const st = editor.exportState();
  if (st.length) saveSafetensors(join(tmp, "state.safetensors"), st);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

/** Merges the stores of workers (results.w<k>.sqlite) into results.sqlite, then deletes them. */
async function mergeWorkerStores(outDir: string): Promise<void> {
  if (!existsSync(outDir)) return;
  const files = readdirSync(outDir).filter((f) => /^results\.w\d+\.sqlite$/.test(f));
  if (files.length === 0) return;
  const main = await ResultsStore.open(join(outDir, "results.sqlite"));
  try {
    for (const f of files) {
      const w = await ResultsStore.open(join(outDir, f));
      try {
        main.mergeFrom(w);
      } finally {
        w.close();
      }
    }
    main.flush();
  } finally {
    main.close();
  }
  for (const f of files) rmSync(join(outDir, f), { force: true });
}

/**
 * Runs tracks in `count` child processes (src/experiments/worker.ts): each worker is handed the next
 * track of the queue when it finishes one (so a long track does not leave a worker idle), writes its
 * own store file, and the stores are merged at the end.
 */
async function runWorkers(
  spec: ExperimentSpec,
  outDir: string,
  count: number,
  queue: string[],
): Promise<{ computed: number; skipped: number }> {
  const script = fileURLToPath(new URL("./worker.js", import.meta.url));
  const todo = [...queue];
  const total = { computed: 0, skipped: 0 };
  const results = await Promise.allSettled(
    Array.from(
      { length: Math.min(count, todo.length) },
      (_, index) =>
        new Promise<void>((done, fail) => {
          // one BLAS thread per worker unless the user says otherwise: the workers are the parallelism
          const env = { ...process.env, OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? "1" };
          const child = fork(script, [], { stdio: "inherit", env });
          let error: string | null = null;
          const next = () => {
            const track = todo.shift();
            child.send(track === undefined ? { exit: true } : { spec, outDir, index, count, track });
          };
          child.on("message", (m: { computed?: number; skipped?: number; error?: string }) => {
            if (m.error !== undefined) {
              error = m.error;
              todo.length = 0; // stop handing out work: the run ends with the error
              return;
            }
            total.computed += m.computed ?? 0;
            total.skipped += m.skipped ?? 0;
            next();
          });
          child.on("exit", (code) => {
            if (code === 0 && error === null) done();
            else fail(new Error(`worker ${index + 1}/${count}: ${error ?? `exited with code ${code}`}`));
          });
          next();
        }),
    ),
  );
  await mergeWorkerStores(outDir);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return total;
}

/** Adds this invocation's wall time to the store's `wall_seconds` (summed over resumed invocations). */
async function addWallTime(outDir: string, open: ResultsStore | null, seconds: number): Promise<void> {
  const store = open ?? (await ResultsStore.open(join(outDir, "results.sqlite")));
  try {
    store.setMeta("wall_seconds", String(Number(store.getMeta("wall_seconds") ?? 0) + seconds));
    store.flush();
  } finally {
    if (!open) store.close();
  }
}

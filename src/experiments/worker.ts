/**
 * A worker process of a parallel run (RunOptions.workers): receives one track at a time
 * ({spec, outDir, index, count, track}) from the parent, runs it into its own store file, reports the
 * counts, and waits for the next; {exit: true} ends it. An error is reported and ends the worker.
 */
import { runExperiment } from "./runner.js";
import type { ExperimentSpec } from "./spec.js";

type Job = { spec: ExperimentSpec; outDir: string; index: number; count: number; track: string };

process.on("message", (m: Job | { exit: true }) => {
  if ("exit" in m) {
    process.exit(0);
    return;
  }
  runExperiment(m.spec, {
    outDir: m.outDir,
    worker: { index: m.index, count: m.count, track: m.track },
  }).then(
    (s) => process.send?.({ computed: s.unitsComputed, skipped: s.unitsSkipped }),
    (e: unknown) =>
      process.send?.({ error: e instanceof Error ? e.message : String(e) }, () => process.exit(1)),
  );
});

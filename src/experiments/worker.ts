/**
 * A worker process of a parallel run (RunOptions.workers): receives {spec, outDir, index, count} from
 * the parent, runs its share of the tracks into its own store file, reports the counts and exits.
 */
import { runExperiment } from "./runner.js";
import type { ExperimentSpec } from "./spec.js";

process.once("message", (m: { spec: ExperimentSpec; outDir: string; index: number; count: number }) => {
  runExperiment(m.spec, { outDir: m.outDir, worker: { index: m.index, count: m.count } }).then(
    (s) => process.send?.({ computed: s.unitsComputed, skipped: s.unitsSkipped }, () => process.exit(0)),
    (e: unknown) =>
      process.send?.({ error: e instanceof Error ? e.message : String(e) }, () => process.exit(1)),
  );
});

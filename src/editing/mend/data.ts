/**
 * Training records of the editor networks (MEND, MALMEN): an edit (prompt, new target), the prompts that
 * should change with it (rephrases) and prompts that should not (locality prompts with their answers).
 *
 *  - ZsRE (MEND layout, `zsre`: ../shared/data/zsre/zsre_mend_train-1k.json, 1,000 of the original
 *    training records): src + alt, rephrase, loc + loc_ans (EasyEdit's ZsreDataset).
 *  - The demo world (`world`: <model>/world/counterfact.json, CounterFact's ROME layout): the filled
 *    prompt + target_new, rephrases = paraphrase_prompts, locality = neighborhood_prompts answered with
 *    target_true (neighbours keep the old object).
 *  - Any edit dataset file the project reads (src/data/edit): its rephrase and locality prompts.
 *
 * The first `valSize` records are held out for validation and never trained on (so `edit-eval --n 10`
 * on the same file evaluates edits the editor has not seen); the rest are trained on. Iteration i uses
 * records drawn from a seeded permutation per epoch and a seeded choice of rephrase and locality prompt,
 * all pure functions of (seed, i), so a resumed run draws exactly what the uninterrupted run drew.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadEditDataset, type EditCase } from "../../data/edit/index.js";
import { fillPrompt } from "../request.js";

export interface MetaRecord {
  id: string | number;
  prompt: string;
  target: string;
  rephrases: string[];
  locality: { prompt: string; answer: string }[];
}

export interface MetaSample {
  record: MetaRecord;
  rephrase: string;
  loc: { prompt: string; answer: string };
}

export interface MetaData {
  name: string;
  path: string;
  note: string;
  train: MetaRecord[];
  val: MetaRecord[];
  /** records dropped for lacking a rephrase or a locality prompt */
  skipped: number;
}

/** The records of edit cases that have a rephrase and a locality prompt. */
export function recordsFromCases(cases: EditCase[]): { records: MetaRecord[]; skipped: number } {
  const records: MetaRecord[] = [];
  let skipped = 0;
  for (const c of cases) {
    const rephrases = c.counterfact?.paraphrasePrompts.length
      ? c.counterfact.paraphrasePrompts
      : c.easyedit.rephrasePrompts;
    const locality = Object.values(c.easyedit.locality)
      .flat()
      .map((p) => ({ prompt: p.prompt, answer: p.groundTruth }))
      .filter((p) => p.prompt.trim() !== "" && p.answer.trim() !== "");
    if (rephrases.length === 0 || locality.length === 0) {
      skipped++;
      continue;
    }
    records.push({
      id: c.caseId,
      prompt: fillPrompt(c.request),
      target: c.request.targetNew,
      rephrases,
      locality,
    });
  }
  return { records, skipped };
}

/**
 * Loads training data: "zsre" (the shared ZsRE training records), "world" (the demo world's requests
 * next to the model: <modelDir>/world/counterfact.json) or an edit dataset file / name.
 */
export function loadMetaData(
  spec: string,
  opts: { modelDir?: string; valSize?: number; warn?: (m: string) => void } = {},
): MetaData {
  let source = spec;
  let format: "counterfact-rome" | undefined;
  if (spec === "zsre") source = "zsre-train";
  else if (spec === "world") {
    if (!opts.modelDir)
      throw new Error("--data world needs the model directory (its world/counterfact.json)");
    source = join(opts.modelDir, "world", "counterfact.json");
    if (!existsSync(source))
      throw new Error(
        `--data world: ${source} does not exist (the demo model's world; train-demo --world-only writes it)`,
      );
    format = "counterfact-rome";
  }
  const ds = loadEditDataset(source, { format, onError: "skip", warn: opts.warn });
  const { records, skipped } = recordsFromCases(ds.cases);
  if (skipped > 0)
    (opts.warn ?? ((m: string) => process.stderr.write(m + "\n")))(
      `${ds.path}: ${skipped} records without a rephrase or a locality prompt are not used`,
    );
  if (records.length < 2)
    throw new Error(
      `${ds.path}: ${records.length} usable training records (each needs a rephrase and a locality prompt)`,
    );
  const valSize = opts.valSize ?? Math.max(1, Math.floor(records.length / 10));
  if (valSize < 0 || valSize >= records.length)
    throw new Error(
      `${ds.path}: cannot hold out ${valSize} of ${records.length} records for validation (need 0 <= n < ${records.length})`,
    );
  return {
    name: spec,
    path: ds.path,
    note: ds.note,
    train: records.slice(valSize),
    val: records.slice(0, valSize),
    skipped,
  };
}

// ------------------------------------------------------------------------------------------------
// Seeded sampling
// ------------------------------------------------------------------------------------------------

/** A 32-bit integer hash of integers (murmur3's finaliser over a running mix). */
export function hash32(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h ^= Math.imul((x | 0) ^ ((x / 4294967296) | 0), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** mulberry32: a small seeded generator of floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const permCache = new Map<string, number[]>();

/** The record order of an epoch: a Fisher-Yates shuffle seeded by (seed, epoch). */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const key = `${n}|${seed}|${epoch}`;
  let p = permCache.get(key);
  if (!p) {
    const rnd = mulberry32(hash32(seed, epoch, 0x5eed));
    p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [p[i], p[j]] = [p[j] as number, p[i] as number];
    }
    if (permCache.size > 4) permCache.clear();
    permCache.set(key, p);
  }
  return p;
}

function pick<T>(xs: T[], ...key: number[]): T {
  return xs[hash32(...key) % xs.length] as T;
}

/** The sample of a record drawn at global draw index g: one rephrase and one locality prompt. */
function sampleOf(record: MetaRecord, seed: number, g: number): MetaSample {
  return {
    record,
    rephrase: pick(record.rephrases, seed, g, 1),
    loc: pick(record.locality, seed, g, 2),
  };
}

/** The `size` samples of training iteration `iteration` (0-based): draws iteration*size ... + size - 1. */
export function sampleBatch(
  records: MetaRecord[],
  iteration: number,
  size: number,
  seed: number,
): MetaSample[] {
  const n = records.length;
  const out: MetaSample[] = [];
  for (let j = 0; j < size; j++) {
    const g = iteration * size + j;
    const order = epochOrder(n, seed, Math.floor(g / n));
    out.push(sampleOf(records[order[g % n] as number] as MetaRecord, seed, g));
  }
  return out;
}

/** Validation batches: the first `count` held-out records in order, `size` per edit. */
export function validationBatches(
  records: MetaRecord[],
  count: number,
  size: number,
  seed: number,
): MetaSample[][] {
  const use = records.slice(0, Math.min(count, records.length));
  const out: MetaSample[][] = [];
  for (let i = 0; i < use.length; i += size)
    out.push(use.slice(i, i + size).map((r, j) => sampleOf(r, seed ^ 0x7a1d, i + j)));
  return out;
}

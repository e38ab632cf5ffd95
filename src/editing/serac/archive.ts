/**
 * A trained SERAC archive (EasyEdit's `archive`: the classifier and counterfactual model weights), as the
 * directory `editeval train-serac` writes and resumes from:
 *   serac.json                   format "editeval-serac/1", the training hparams, data, step, log, and the
 *                                optimiser's step counts
 *   classifier/                  the classifier's backbone (a Hugging Face checkpoint directory)
 *   classifier_head.safetensors  `proj` [p, d], the projection of the mean hidden state
 *   cf_model/                    the counterfactual model (Hugging Face checkpoint; absent with freeze_cntr)
 *   optimizer.safetensors        Adam's moments (for resuming)
 * It is written into `<dir>.tmp` and renamed into place, so an interrupted save leaves the last one.
 */
import { existsSync, readFileSync, renameSync, rmSync, mkdirSync, writeFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { createHash } from "node:crypto";
import type { Tensor } from "../../torch/index.js";
import { loadSafetensors, saveSafetensors } from "../../torch/io.js";
import { loadModel } from "../../models/load.js";
import { saveCheckpoint } from "../../models/save.js";
import type { CausalLM } from "../../models/model.js";
import { ScopeClassifier } from "./classifier.js";
import type { SeracHparams } from "./hparams.js";

export const ARCHIVE_FORMAT = "editeval-serac/1";

export interface ArchiveMeta {
  format: string;
  step: number;
  seconds: number;
  hparams: SeracHparams;
  data: { spec: string; source: string; train: number; val: number };
  /** the edited model's vocabulary and a probe's token ids (the classifier and cf share the tokenizer) */
  tokenizer: { vocab_size: number; probe: number[] };
  log: Record<string, number>[];
  optimizer_steps: Record<string, number>;
}

export interface SeracArchive {
  dir: string;
  meta: ArchiveMeta;
  classifier: ScopeClassifier;
  /** null with freeze_cntr: the edited model answers */
  cf: CausalLM | null;
  /** sha256 of the weights (part of an edit's journal entry, so a fingerprint sees the archive) */
  digest: string;
}

/** The probe text whose token ids an archive records. */
export const TOKENIZER_PROBE = "The capital of France is Paris. 12,345 ü\n";

/** Writes an archive atomically (dir.tmp, then renamed). */
export function saveArchive(
  dir: string,
  meta: ArchiveMeta,
  classifier: ScopeClassifier,
  cf: CausalLM | null,
  optimizer: [string, Tensor][],
): void {
  const tmp = `${dir}.tmp`;
  const old = `${dir}.old`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  saveCheckpoint(classifier.backbone, join(tmp, "classifier"));
  saveSafetensors(join(tmp, "classifier_head.safetensors"), [["proj", classifier.proj]]);
  if (cf) saveCheckpoint(cf, join(tmp, "cf_model"));
  if (optimizer.length > 0) saveSafetensors(join(tmp, "optimizer.safetensors"), optimizer);
  writeFileSync(join(tmp, "serac.json"), JSON.stringify(meta, null, 1) + "\n");
  rmSync(old, { recursive: true, force: true });
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

/** Reads serac.json (recovering an archive left as dir.old by an interrupted save); null if none. */
export function readArchiveMeta(dir: string): ArchiveMeta | null {
  if (!existsSync(join(dir, "serac.json")) && existsSync(join(`${dir}.old`, "serac.json")))
    renameSync(`${dir}.old`, dir);
  const file = join(dir, "serac.json");
  if (!existsSync(file)) return null;
  const meta = JSON.parse(readFileSync(file, "utf8")) as ArchiveMeta;
  if (meta.format !== ARCHIVE_FORMAT)
    throw new Error(`${file}: format '${meta.format}', expected '${ARCHIVE_FORMAT}'`);
  return meta;
}

function weightsDigest(dir: string, meta: ArchiveMeta): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ step: meta.step, hparams: meta.hparams }));
  for (const sub of ["classifier", "cf_model"]) {
    const d = join(dir, sub);
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).sort()) if (f.endsWith(".safetensors")) h.update(readFileSync(join(d, f)));
  }
  h.update(readFileSync(join(dir, "classifier_head.safetensors")));
  return h.digest("hex").slice(0, 16);
}

/** Loads an archive's models (the optimiser state is left on disk). */
export function loadArchive(dir: string): SeracArchive {
  const meta = readArchiveMeta(dir);
  if (!meta)
    throw new Error(
      `SERAC archive '${dir}' does not exist or has no serac.json: train one with ` +
        "`editeval train-serac --model DIR --cf-model DIR --data zsre|world|FILE --out DIR`",
    );
  const backbone = loadModel(join(dir, "classifier"));
  const head = loadSafetensors(join(dir, "classifier_head.safetensors"));
  const proj = head.get("proj");
  if (!proj) throw new Error(`${join(dir, "classifier_head.safetensors")}: tensor 'proj' is missing`);
  proj.keep();
  const h = meta.hparams;
  const classifier = new ScopeClassifier(backbone, proj, {
    cos: h.cos,
    square: h.square,
    dist_heads: h.dist_heads,
    bound_embeds: h.bound_embeds,
  });
  const cf = h.freeze_cntr ? null : loadModel(join(dir, "cf_model"));
  return { dir, meta, classifier, cf, digest: weightsDigest(dir, meta) };
}

const LOADED = new Map<string, SeracArchive>();

/** An archive loaded once per process (by resolved path); `forgetArchive` drops it. */
export function sharedArchive(dir: string): SeracArchive {
  const key = resolve(dir);
  let a = LOADED.get(key);
  if (!a) {
    a = loadArchive(dir);
    LOADED.set(key, a);
  }
  return a;
}

/** Frees a shared archive's models (after retraining it, or in tests). */
export function forgetArchive(dir: string): void {
  const key = resolve(dir);
  const a = LOADED.get(key);
  if (!a) return;
  LOADED.delete(key);
  a.classifier.backbone.free();
  a.classifier.proj.free();
  a.cf?.free();
}

/**
 * Training records for SERAC's scope classifier and counterfactual model, and for IKE's demonstrations:
 * an edit (prompt, target), the inputs in its scope (the prompt and its rephrases) and inputs out of it
 * (locality prompts with their answers).
 *
 * Sources (`spec`):
 *  - `zsre`: ../shared/data/zsre/zsre_mend_train-1k.json (MEND layout, 1,000 records, disjoint from the
 *    evaluation files; see its SOURCE.txt): src/rephrase in scope, loc/loc_ans out of scope, alt the target;
 *  - `world`: the demo world's requests (models/demo/world/counterfact.json) from record 50 on: the first
 *    50 are held out because they are the demo's evaluation cases (`editeval edit-eval --data` that file
 *    edits the first N); prompt and paraphrase_prompts in scope, neighborhood_prompts (answer: the
 *    original target_true) out of scope;
 *  - a file in any edit-dataset layout (src/data/edit).
 * Any of them may end in a Python slice `[a:b]` of the records (after the `world` hold-out for `world`).
 * Malformed records are skipped (zsre_mend_train-1k.json has one with an empty target) and counted in
 * `source`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadEditDataset } from "../../data/edit/index.js";
import { packageRoot } from "../../util/paths.js";
import { fillPrompt } from "../request.js";

export interface ScopeRecord {
  /** the edit's prompt, subject filled in */
  prompt: string;
  subject: string;
  /** the new target (no leading space) */
  target: string;
  /** inputs in the edit's scope: the prompt, then its rephrases */
  inScope: string[];
  /** inputs out of the edit's scope, with their answers */
  outScope: { prompt: string; answer: string }[];
}

/** Records [0, WORLD_HELD_OUT) of the demo world are its evaluation cases, never trained on. */
export const WORLD_HELD_OUT = 50;

/** Loads records by spec (see the file comment); errors name the spec. */
export function loadScopeRecords(spec: string): { records: ScopeRecord[]; source: string } {
  const m = /^(.*?)(?:\[(-?\d*):(-?\d*)\])?$/.exec(spec.trim()) as RegExpExecArray;
  const base = m[1] as string;
  let source: string;
  let start = 0;
  if (base === "zsre") source = "zsre-train";
  else if (base === "world") {
    source = join(packageRoot(), "models", "demo", "world", "counterfact.json");
    start = WORLD_HELD_OUT;
  } else if (existsSync(base)) source = base;
  else
    throw new Error(
      `training data '${spec}': expected zsre, world or an edit-dataset file (optionally [a:b])`,
    );
  let ds;
  try {
    ds = loadEditDataset(source, { start, onError: "skip", warn: () => undefined });
  } catch (e) {
    throw new Error(`training data '${spec}': ${(e as Error).message}`);
  }
  let records = ds.cases.map((c): ScopeRecord => {
    const r = c.request;
    const prompt = fillPrompt(r);
    return {
      prompt,
      subject: r.subject,
      target: r.targetNew,
      inScope: [prompt, ...(r.rephrase ?? []).filter((p) => p !== prompt)],
      outScope: (r.locality ?? []).map((l) => ({ prompt: l.prompt, answer: l.groundTruth })),
    };
  });
  if (m[2] !== undefined || m[3] !== undefined) {
    const n = records.length;
    const idx = (s: string | undefined, dflt: number) => {
      if (s === undefined || s === "") return dflt;
      const v = Number(s);
      return v < 0 ? Math.max(0, n + v) : Math.min(v, n);
    };
    records = records.slice(idx(m[2], 0), idx(m[3], n));
  }
  if (records.length === 0) throw new Error(`training data '${spec}': no records`);
  const bad = records.findIndex((r) => r.outScope.length === 0);
  if (bad >= 0)
    throw new Error(`training data '${spec}': record ${bad} has no locality (out-of-scope) prompt`);
  const skipped = ds.skipped.length
    ? ` (${ds.skipped.length} malformed records skipped, e.g. ${ds.skipped[0]?.index}: ${ds.skipped[0]?.field})`
    : "";
  return { records, source: ds.path + (spec !== base ? ` ${spec.slice(base.length)}` : "") + skipped };
}

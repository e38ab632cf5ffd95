/**
 * Evaluation modes: how edits and measurements interleave.
 * - single: for each case, edit, measure, undo (ROME's experiments/evaluate.py; EasyEdit's default);
 * - batch: for each chunk of B cases, edit the chunk at once, measure its cases, undo (MEMIT's
 *   evaluate.py with --num_edits B; EasyEdit's batch_edit);
 * - sequential: apply all N edits one batch after another without undoing, then measure all N cases on
 *   the final model (EasyEdit's sequential_edit as in the published lifelong-editing tables, i.e. the
 *   code before the 2026 change that measures each request right after its own edit).
 * "pre" is always measured on the unedited model, before the case's edit; locality compares post with it.
 * With a store, each case is written as soon as it is measured and a rerun skips finished cases.
 */
import type { CausalLM } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import type { Editor, EditMethod } from "../../editing/editor.js";
import type { EditRecord } from "../../editing/journal.js";
import type { EditCase } from "../../data/edit/types.js";
import { Progress } from "../../util/progress.js";
import { caseQuality, finalizeLocality, type CaseMetrics, type EvalOptions } from "./quality.js";
import type { CaseRecord } from "./summary.js";
import type { CaseStore } from "./store.js";

export type EvalMode = "single" | "batch" | "sequential";

export interface RunEditEvalOptions {
  model: CausalLM;
  tok: Tokenizer;
  editor: Editor;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  method: EditMethod<any>;
  hparams: unknown;
  cases: EditCase[];
  mode: EvalMode;
  /** requests per edit (batch mode: the chunk size; sequential: requests per editor call); default 1 */
  batchSize?: number;
  eval?: EvalOptions;
  store?: CaseStore | null;
  /** show progress lines with ETA on stderr (default true; EDITEVAL_QUIET=1 silences) */
  progress?: boolean;
  /** called after each case is written (a test uses it to simulate a kill) */
  onCaseDone?: (rec: CaseRecord) => void;
}

export interface RunEditEvalResult {
  /** every case, in the order given */
  records: CaseRecord[];
  /** what this call computed (a resumed run computes only what was missing) */
  computed: { pre: number; post: number; editedRequests: number; replayedEdits: number };
}

/** The request as EasyEdit stores it in results (requested_rewrite). */
export function requestedRewrite(c: EditCase): Record<string, unknown> {
  const r = c.request;
  const out: Record<string, unknown> = {
    prompt: c.easyedit.prompt,
    template: r.prompt,
    subject: r.subject,
    target_new: r.targetNew,
  };
  if (r.targetTrue !== undefined) out.ground_truth = r.targetTrue;
  if (c.easyedit.rephrasePrompts.length) out.rephrase_prompt = c.easyedit.rephrasePrompts[0];
  const snake = (m: Record<string, { prompt: string; groundTruth: string }[]>) =>
    Object.fromEntries(
      Object.entries(m).map(([k, xs]) => [
        k,
        xs.map((x) => ({ prompt: x.prompt, ground_truth: x.groundTruth })),
      ]),
    );
  if (Object.keys(c.easyedit.locality).length) out.locality = snake(c.easyedit.locality);
  if (Object.keys(c.easyedit.portability).length) out.portability = snake(c.easyedit.portability);
  return out;
}

export function runEditEvaluation(o: RunEditEvalOptions): RunEditEvalResult {
  const ids = new Set<number>();
  for (const c of o.cases) {
    if (ids.has(c.caseId)) throw new Error(`case_id ${c.caseId} occurs twice in the cases to evaluate`);
    ids.add(c.caseId);
  }
  const bs = Math.max(1, o.batchSize ?? 1);
  const store = o.store ?? null;
  const computed = { pre: 0, post: 0, editedRequests: 0, replayedEdits: 0 };
  const records = new Map<number, CaseRecord>();
  const show = o.progress ?? process.env.EDITEVAL_QUIET !== "1";
  const evalOpts = o.eval ?? {};

  const existing = (c: EditCase): CaseRecord | null => records.get(c.caseId) ?? store?.get(c.caseId) ?? null;
  const save = (rec: CaseRecord) => {
    records.set(rec.case_id, rec);
    store?.put(rec);
  };
  const ensurePre = (c: EditCase): CaseRecord => {
    const have = existing(c);
    if (have?.pre) return have;
    const pre = caseQuality(o.model, o.tok, c, evalOpts);
    computed.pre++;
    const rec: CaseRecord = {
      case_id: c.caseId,
      index: c.index,
      requested_rewrite: requestedRewrite(c),
      pre,
    };
    save(rec);
    return rec;
  };
  const finish = (c: EditCase, rec: CaseRecord, time: number | undefined) => {
    const post: CaseMetrics = caseQuality(o.model, o.tok, c, evalOpts);
    computed.post++;
    const pre = rec.pre as CaseMetrics;
    finalizeLocality(pre, post);
    const done: CaseRecord = { ...rec, time, pre, post };
    save(done);
    o.onCaseDone?.(done);
  };
  const editTime = (recs: EditRecord[]) => recs.reduce((s, r) => s + r.seconds, 0);
  const isDone = (c: EditCase) => existing(c)?.post !== undefined;

  if (o.mode === "single" || o.mode === "batch") {
    const size = o.mode === "single" ? 1 : bs;
    const todo = o.cases.filter((c) => !isDone(c)).length;
    const prog = new Progress(`edit-eval (${o.mode})`, o.cases.length, show);
    if (todo < o.cases.length) prog.tick(o.cases.length - todo, "(resumed)");
    for (let s = 0; s < o.cases.length; s += size) {
      const chunk = o.cases.slice(s, s + size);
      const open = chunk.filter((c) => !isDone(c));
      if (open.length === 0) continue;
      const pres = open.map(ensurePre);
      const recs = o.editor.edit(
        o.method,
        chunk.map((c) => c.request),
        o.hparams,
        { batchSize: size },
      );
      computed.editedRequests += chunk.length;
      try {
        open.forEach((c, i) => {
          finish(c, pres[i] as CaseRecord, editTime(recs));
          prog.tick(1);
        });
      } finally {
        o.editor.journal.undoAll();
      }
    }
  } else if (o.mode === "sequential") {
    const open = o.cases.filter((c) => !isDone(c));
    const progPre = new Progress("edit-eval (sequential): pre-edit metrics", open.length, show);
    for (const c of open) {
      ensurePre(c);
      progPre.tick(1);
    }
    try {
      if (open.length > 0) {
        let recs: EditRecord[];
        if (store?.hasJournal()) {
          recs = o.editor.journal.replay(store.journalDir);
          computed.replayedEdits += recs.length;
        } else {
          recs = [];
          const progEdit = new Progress("edit-eval (sequential): editing", o.cases.length, show);
          for (let s = 0; s < o.cases.length; s += bs) {
            const chunk = o.cases.slice(s, s + bs);
            recs.push(
              ...o.editor.edit(
                o.method,
                chunk.map((c) => c.request),
                o.hparams,
                { batchSize: bs },
              ),
            );
            computed.editedRequests += chunk.length;
            progEdit.tick(chunk.length);
          }
          if (store) {
            o.editor.journal.save(store.journalDir);
            store.markJournalComplete();
          }
        }
        const timeOf = new Map<unknown, number>();
        for (const r of recs) for (const q of r.requests) timeOf.set(q.id, r.seconds);
        const progPost = new Progress("edit-eval (sequential): post-edit metrics", open.length, show);
        for (const c of open) {
          finish(c, ensurePre(c), timeOf.get(c.caseId));
          progPost.tick(1);
        }
      }
    } finally {
      o.editor.journal.undoAll();
    }
  } else {
    throw new Error(`unknown evaluation mode '${String(o.mode)}' (single, batch, sequential)`);
  }

  return {
    records: o.cases.map((c) => existing(c) as CaseRecord),
    computed,
  };
}

/**
 * SERAC (Semi-parametric Editing with a Retrieval-Augmented Counterfactual model; Mitchell et al. 2022,
 * "Memory-Based Model Editing at Scale"), as the original (eric-mitchell/serac algs/rep.py) and EasyEdit
 * (easyeditor/models/serac/serac_main.py, easyeditor/trainer/algs/SERAC.py) run it. No weight changes:
 * the edited system is the base model + an edit memory + a scope classifier + a counterfactual model.
 *
 * An edit appends (prompt, target) to the memory (SERAC.edit: cache_inputs/cache_labels). For an input,
 * the classifier (./classifier.ts) scores it against every stored edit; if the best similarity exceeds
 * 0.5 (`threshold`), the counterfactual model answers the input with that edit in front,
 * f"{prompt} {target} " + input (build_rep_cache_contexts / build_rep_input_tokens), else the base model
 * answers unchanged. The classifier and the counterfactual model are trained beforehand (./train.ts,
 * `editeval train-serac`) and loaded from `archive` (./archive.ts).
 *
 * Here the system is installed as a journal adaptor (kind "serac") on the logits module: the router
 * (./router.ts) decides each position of each sequence of every forward pass, so the harness, the edit
 * metrics and generation (batched, KV-cached, shared prefix) evaluate it without knowing about SERAC.
 * Each request is one adaptor entry (the edit's text and the classifier's embedding of its input); undo,
 * save and replay go through the journal (a replay loads the archive named in the entry and checks its
 * digest).
 *
 * Deliberate differences from the references:
 *  - the classifier is a causal LM with the edited model's tokenizer, mean-pooled over the prefix and
 *    projected (distilbert's [CLS] there), and the decision is made per position on the sequence so far
 *    (the reference decides once per forward pass on the whole decoded input, target included when it
 *    scores teacher-forced, and once on the prompt when it generates);
 *  - the classifier's key is the edit's prompt (EasyEdit cuts the last word of "prompt target" off:
 *    `cin.rsplit(" ", 1)[0]`, which leaves part of a multi-word target);
 *  - routing is hard (exp(log sim) > threshold), as the paper and EasyEdit's generate(); EasyEdit's forward
 *    mixes probabilities softly when `supervised` is false (its default), which is not implemented
 *    (`soft_weighting: true` is refused, `supervised` is read and ignored);
 *  - the counterfactual input is the reference's text, tokenised as the edit joined to the input's first
 *    token, then the input's own tokens (see ./router.ts), so positions map exactly;
 *  - training uses the original's supervised objective (./train.ts), not EasyEdit's soft-mixture one.
 */
import { resolve } from "node:path";
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import { fillPrompt, type EditRequest } from "../request.js";
import { HparamsError } from "../hparams.js";
import { registerAdaptorKind, withAdaptors, type AdaptorEntry } from "../journal.js";
import { TOKENIZER_PROBE, sharedArchive, type SeracArchive } from "./archive.js";
import { ARCHITECTURE_KEYS, SERAC_SCHEMA, parseSeracHparams, type SeracHparams } from "./hparams.js";
import { editContext } from "./train.js";
import { logitsModule, rememberTokenizer, routerHooks, tokenizerOf, type Route } from "./router.js";

export { SERAC_SCHEMA, parseSeracHparams, type SeracHparams } from "./hparams.js";
export { trainSerac, scopeAccuracy, editContext } from "./train.js";
export { loadArchive, sharedArchive, forgetArchive } from "./archive.js";
export { routedInput, routerHooks, logitsModule } from "./router.js";

export const SERAC_KIND = "serac";

export interface SeracEntryMeta {
  archive: string;
  archive_digest: string;
  prompt: string;
  target: string;
  threshold: number;
}

function archiveFor(h: SeracHparams, where: string): SeracArchive {
  if (h.archive === null) throw new HparamsError(`${where}: SERAC needs an archive (train-serac's --out)`);
  try {
    return sharedArchive(h.archive);
  } catch (e) {
    throw new HparamsError(`${where}: SERAC archive: ${(e as Error).message}`);
  }
}

function parse(raw: Record<string, unknown>, where: string, model: CausalLM): SeracHparams {
  const h = parseSeracHparams(raw, where);
  const a = archiveFor(h, where);
  for (const k of ARCHITECTURE_KEYS)
    if (k in raw && JSON.stringify(raw[k]) !== JSON.stringify(a.meta.hparams[k]))
      throw new HparamsError(
        `${where}: SERAC ${k} is ${JSON.stringify(raw[k])}, but the archive ${h.archive} was trained with ${JSON.stringify(a.meta.hparams[k])}`,
      );
  const V = model.config.vocabSize;
  if (a.cf && a.cf.config.vocabSize !== V)
    throw new HparamsError(
      `${where}: the archive's counterfactual model has ${a.cf.config.vocabSize} logits per position, the edited model ${V}`,
    );
  return h;
}

export const serac: EditMethod<SeracHparams> = {
  name: "SERAC",
  schema: SERAC_SCHEMA,
  maxBatch: 1 << 20,
  parseHparams: parse,
  compute(ctx: EditContext, requests: EditRequest[], h: SeracHparams): EditResult {
    const { model, tok } = ctx;
    const a = archiveFor(h, "SERAC hparams");
    const probe = tok.encode(TOKENIZER_PROBE, { addSpecialTokens: false });
    if (JSON.stringify(probe) !== JSON.stringify(a.meta.tokenizer.probe))
      throw new Error(
        `SERAC: the archive ${h.archive} was trained with another tokenizer than the edited model's (probe ids differ)`,
      );
    rememberTokenizer(model, tok);
    const module = logitsModule(model);
    const entries: AdaptorEntry[] = requests.map((r) => {
      const prompt = fillPrompt(r);
      const key = torch.scope(() =>
        torch.noGrad(() => a.classifier.embed(tok.encode(prompt, { addSpecialTokens: true })).keep()),
      );
      const meta: SeracEntryMeta = {
        archive: resolve(h.archive as string),
        archive_digest: a.digest,
        prompt,
        target: r.targetNew,
        threshold: h.threshold,
      };
      return { kind: SERAC_KIND, module, tensors: { key }, meta: meta as unknown as Record<string, unknown> };
    });
    return {
      deltas: withAdaptors([], entries),
      info: {
        archive: h.archive,
        memory: ctx.journal.adaptorEntries(SERAC_KIND, module).length + entries.length,
      },
    };
  },
};

/** The router's decision for SERAC: the classifier's best edit per position, routed above its threshold. */
function seracHooks(model: CausalLM, entries: AdaptorEntry[]) {
  const metas = entries.map((e) => e.meta as unknown as SeracEntryMeta);
  const dir = (metas[0] as SeracEntryMeta).archive;
  if (metas.some((m) => m.archive !== dir))
    throw new Error(`SERAC: the edits in memory come from different archives (${dir}, ...); use one archive`);
  const a = sharedArchive(dir);
  if (a.digest !== (metas[0] as SeracEntryMeta).archive_digest)
    throw new Error(
      `SERAC: the archive ${dir} changed since the edits were made (digest ${a.digest}, the edits' ${metas[0]?.archive_digest})`,
    );
  const keys = entries.map((e) => e.tensors.key as Tensor);
  const answering = a.cf ?? model;
  const routes: Route[] = metas.map((m, i) => ({
    key: `serac:${i}`,
    model: answering,
    context: editContext(m.prompt, m.target),
  }));
  return routerHooks(model, {
    tok: tokenizerOf(model),
    decide(rows, asked) {
      return torch.scope(() => {
        const K = torch.stack(keys);
        return rows.map((row, r) => {
          const at = asked[r] as number[];
          if (at.length === 0) return [];
          const { values, indices } = a.classifier.logSims(a.classifier.embedAt(row, at), K).maxDim(1);
          const best = values.toNumbers();
          const idx = indices.toNumbers();
          return best.map((ls, j) => {
            const i = idx[j] as number;
            return Math.exp(ls) > (metas[i] as SeracEntryMeta).threshold ? (routes[i] as Route) : null;
          });
        });
      });
    },
  });
}

registerAdaptorKind(SERAC_KIND, {
  hooks(model: CausalLM, _module: string, entries: AdaptorEntry[]) {
    return seracHooks(model, entries);
  },
});

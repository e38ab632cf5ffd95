/**
 * MEND (Mitchell et al. 2022, "Fast Model Editing at Scale"; eric-mitchell/mend@e04fdb9c, EasyEdit
 * easyeditor/models/mend/ and trainer/algs/MEND.py at 14cea824): a trained editor network turns the
 * gradient of the edit loss into a weight update.
 *
 * An edit of a batch of requests (EasyEdit's MendRewriteExecutor.apply_to_model):
 *  - tokens: prompt + " " + target; the edit loss is the token-mean NLL of the target tokens;
 *  - for each weight of `inner_params`, the module's inputs u_t and output gradients delta_t of that loss,
 *    at the tokens where both are non-zero, go through the weight's gradient transform (normalised by the
 *    statistics learned in training, then the low-rank IDMLP, shared per weight shape with per-weight
 *    scale/shift), giving u~_t, delta~_t (./nets.ts, ./edit.ts);
 *  - the weight changes by -lr_i sum_t u~_t delta~_t^T (rank one per token; lr_i the learned edit_lrs[i]),
 *    recorded in the journal as low-rank factors in the weight's layout, so undo and replay are exact.
 *
 * The editor comes from `archive`: the mend.safetensors that `editeval train-mend` writes (./train.ts,
 * src/cli/train-mend.ts). Deliberate differences from the references are listed in ./edit.ts (the sign
 * of the update), ./nets.ts and ./train.ts; docs/reference/mend.md has all of them.
 */
import type { CausalLM } from "../../models/model.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import type { EditRequest } from "../request.js";
import { HparamsError } from "../hparams.js";
import { targetTokens } from "../lora/loss.js";
import { MEND_SCHEMA, parseMendHparams, type MendHparams } from "./hparams.js";
import { freeMendEditor, loadMendEditor, MEND_NET_KEYS, type MendEditor } from "./nets.js";
import { mendDeltas, mendFactors } from "./edit.js";
import * as torch from "../../torch/index.js";

export { MEND_SCHEMA, parseMendHparams, parseMendHparamsRaw, type MendHparams } from "./hparams.js";
export { createMendEditor, loadMendEditor, saveMendEditor, type MendEditor } from "./nets.js";
export { mendFactors, mendDeltas, mendUpdate, mendEditHooks, rawFactors } from "./edit.js";
export { trainMend } from "./train.js";

/** The editor of an archive, loaded once per editing session (the editor's cache). */
function cachedEditor(ctx: EditContext, h: MendHparams): MendEditor {
  const arch = h.archive as string;
  const key = `mend:editor:${arch}|${JSON.stringify(MEND_NET_KEYS.map((k) => h[k]))}`;
  const hit = ctx.cache.get(key) as { editor: MendEditor } | undefined;
  if (hit) return hit.editor;
  const editor = loadMendEditor(arch, ctx.model, h);
  ctx.cache.set(key, { editor, free: () => freeMendEditor(editor) });
  return editor;
}

function parse(raw: Record<string, unknown>, where: string, model: CausalLM): MendHparams {
  const h = parseMendHparams(raw, where, model);
  if (h.archive === null)
    throw new HparamsError(
      `${where}: MEND needs a trained editor: set 'archive' to the mend.safetensors written by 'editeval train-mend' ` +
        `(or pass the hparams.yaml it writes next to it)`,
    );
  return h;
}

export const mend: EditMethod<MendHparams> = {
  name: "MEND",
  schema: MEND_SCHEMA,
  maxBatch: Number.MAX_SAFE_INTEGER,
  parseHparams: parse,
  compute(ctx: EditContext, requests: EditRequest[], h: MendHparams): EditResult {
    const { model, tok } = ctx;
    const ed = cachedEditor(ctx, h);
    const items = requests.map((r) => targetTokens(tok, r));
    return torch.scope(() => {
      const { factors, loss } = torch.noGrad(() => mendFactors(model, tok, ed, items, false));
      const deltas = mendDeltas(factors);
      return {
        deltas,
        info: {
          edit_loss_before: loss,
          tokens: factors.map((f) => f.tokens),
          edit_lrs: ed.editLrs.toNumbers(),
        },
      };
    });
  },
};

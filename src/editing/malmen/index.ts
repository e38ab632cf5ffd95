/**
 * MALMEN (Tan et al. 2024, "Massive Editing for Large Language Models via Meta Learning";
 * ChenmienTan/malmen@1df295dc, EasyEdit easyeditor/models/malmen/ and trainer/algs/MALMEN.py at
 * 14cea824): a trained shift network turns each edit's keys and value gradients into value differences,
 * and the weight shift of all edits at once is the ridge least-squares solution of the normal equation
 * (K^T K + e^lamda I) S = K^T D (./shift.ts), so thousands of edits are solved together instead of
 * summed.
 *
 * An edit of a batch of requests: prompt + " " + target, the token-mean cross-entropy of the target per
 * forward chunk of `batch_size` requests; keys and value gradients at the tokens `token` selects; the
 * network (trained statistics, no update at edit time); S per edited weight, recorded in the journal as
 * factors (M, D^T) of rank N (the number of tokens) when that is smaller than the weight, else dense, in
 * the weight's layout; undo and replay are exact.
 *
 * Deliberate differences: every request of the batch is edited (EasyEdit's executor edits the first
 * `n_edits` of them and drops the rest); the normaliser is frozen at edit time (EasyEdit's executor
 * updates it with every edit, so an edit changes the editor). More in ./train.ts, ./nets.ts and
 * docs/reference/mend.md.
 */
import * as torch from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import type { EditRequest } from "../request.js";
import { HparamsError } from "../hparams.js";
import { targetTokens } from "../lora/loss.js";
import { MALMEN_SCHEMA, parseMalmenHparams, type MalmenHparams } from "./hparams.js";
import { freeMalmenEditor, loadMalmenEditor, type MalmenEditor } from "./nets.js";
import { lamdaOf, shiftDelta, valueDiffs } from "./shift.js";
import { cacheEdits } from "./train.js";

export { MALMEN_SCHEMA, parseMalmenHparams, parseMalmenHparamsRaw, type MalmenHparams } from "./hparams.js";
export { createMalmenEditor, loadMalmenEditor, saveMalmenEditor, type MalmenEditor } from "./nets.js";
export { solveShift, normalMatrix, shiftDelta, shiftMetaGradients, valueDiffs } from "./shift.js";
export { trainMalmen, malmenMetaGradients } from "./train.js";

function cachedEditor(ctx: EditContext, h: MalmenHparams): MalmenEditor {
  const arch = h.archive as string;
  const key = `malmen:editor:${arch}|${JSON.stringify([h.inner_params, h.rank, h.n_blocks])}`;
  const hit = ctx.cache.get(key) as { editor: MalmenEditor } | undefined;
  if (hit) return hit.editor;
  const editor = loadMalmenEditor(arch, ctx.model, h);
  ctx.cache.set(key, { editor, free: () => freeMalmenEditor(editor) });
  return editor;
}

function parse(raw: Record<string, unknown>, where: string, model: CausalLM): MalmenHparams {
  const h = parseMalmenHparams(raw, where, model);
  if (h.archive === null)
    throw new HparamsError(
      `${where}: MALMEN needs a trained shift network: set 'archive' to the malmen.safetensors written by ` +
        `'editeval train-mend --method malmen' (or pass the hparams.yaml it writes next to it)`,
    );
  return h;
}

export const malmen: EditMethod<MalmenHparams> = {
  name: "MALMEN",
  schema: MALMEN_SCHEMA,
  maxBatch: Number.MAX_SAFE_INTEGER,
  parseHparams: parse,
  compute(ctx: EditContext, requests: EditRequest[], h: MalmenHparams): EditResult {
    const { model, tok } = ctx;
    const ed = cachedEditor(ctx, h);
    const items = requests.map((r) => targetTokens(tok, r));
    return torch.scope(() => {
      const { keys, valuesGrad } = cacheEdits(model, tok, ed, items, h, false);
      const deltas = ed.slots.map((s, i) => {
        const d = valueDiffs(s, keys[i] as torch.Tensor, valuesGrad[i] as torch.Tensor, h.editor_batch_size);
        return shiftDelta(s, keys[i] as torch.Tensor, d, lamdaOf(s));
      });
      return {
        deltas,
        info: {
          tokens: keys.map((k) => k.size(0)),
          lamda: ed.slots.map((s) => lamdaOf(s)),
        },
      };
    });
  },
};

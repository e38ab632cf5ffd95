/**
 * GRACE (General Retrieval Adaptors for Continual Editing; Hartvigsen et al. 2023), as EasyEdit runs it
 * (easyeditor/models/grace/GRACE.py, grace_main.py, utils.py): no weight changes; a codebook adaptor
 * (./codebook.ts) wraps one module (`inner_params`, e.g. GPT-2 XL's transformer.h[35].mlp.c_fc).
 *
 * One edit (one request):
 *  1. Tokens: prompt + " " + target; the key token is the prompt's last token (EasyEdit: the number of
 *     masked labels - 1). q = the module's input there.
 *  2. New value: `cold` uniform [0, 1) of the module's output size (torch.rand; here from a generator
 *     seeded with `seed`), `warm` the module's output at the key token.
 *  3. Codebook update (EasyEdit's first iteration): empty -> add (q, value, eps). Otherwise, with k_n the
 *     nearest key at distance d:
 *       d > eps + eps_n                -> add a new key with radius eps;
 *       else, another label than k_n's -> add a new key and split: eps_n = d/2 - 1e-5, eps_new = d/2;
 *       else (same label), d > eps_n   -> `coverage`: eps_n = d (`moving_average`: also k_n = (k_n + q)/2);
 *       else                            -> the key is reused.
 *  4. The value of the key nearest q is trained for `n_iter` Adam steps (lr `edit_lr`) on the target's
 *     teacher-forced NLL (../lora/loss.ts), the module's output at the key token replaced by the value
 *     (`replace_last`; `replace_all` every position, `replace_prompt` the positions before the key token).
 *
 * The edit's journal entry holds the codebook rows it wrote. Differences from EasyEdit, each deliberate:
 *  - labels match when the target token ids are equal (EasyEdit compares the mean of the label tensors,
 *    which also depends on the prompt's length);
 *  - inference checks every position (see ./codebook.ts) instead of a `key_id` left over from the last edit;
 *  - `val_train: adv` is accepted and, as in EasyEdit with one request, perturbs nothing (its noise's first
 *    row is zeroed, and one request is one row). `dist_fn` must be `euc` (EasyEdit computes Euclidean
 *    distances whatever it says); `val_reg`, `reg` and `dropout` are read and unused, as in EasyEdit
 *    (no early stop is implemented there).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import { fillPrompt, type EditRequest } from "../request.js";
import { HparamsError, parseHparams, type Schema } from "../hparams.js";
import { withAdaptors } from "../journal.js";
import { moduleOfParamName } from "../modules.js";
import { targetNll, targetTokens } from "../lora/loss.js";
import {
  GRACE_KIND,
  distances,
  foldCodebook,
  makeEntry,
  type CodeRow,
  type Replacement,
} from "./codebook.js";

export { foldCodebook, codebookHooks, distances, GRACE_KIND } from "./codebook.js";

export interface GraceHparams {
  inner_params: string[];
  edit_lr: number;
  n_iter: number;
  eps: number;
  dist_fn: string;
  val_init: "cold" | "warm";
  val_train: string;
  val_reg: string;
  reg: string;
  replacement: Replacement;
  eps_expand: "coverage" | "moving_average";
  num_pert: number;
  dropout: number;
  seed: number;
}

/** Defaults: EasyEdit hparams/GRACE/gpt2-xl.yaml. */
export const GRACE_SCHEMA: Schema = {
  inner_params: {
    type: "string[]",
    default: ["transformer.h[35].mlp.c_fc.weight"],
    doc: "the wrapped module's weight (first entry; brackets or dots)",
  },
  edit_lr: { type: "number", default: 1.0, doc: "Adam learning rate of the value" },
  n_iter: { type: "int", default: 200, doc: "value optimisation steps" },
  eps: { type: "number", default: 1.0, doc: "initial deferral radius" },
  dist_fn: { type: "string", default: "euc", doc: "distance (euc; EasyEdit uses Euclidean always)" },
  val_init: { type: "string", default: "cold", doc: "cold (uniform [0,1)) or warm (the module's output)" },
  val_train: { type: "string", default: "sgd", doc: "sgd or adv (a no-op for one request, as in EasyEdit)" },
  val_reg: { type: "string", default: "None", doc: "read for EasyEdit files; unused" },
  reg: {
    type: "string",
    default: "early_stop",
    doc: "read for EasyEdit files; unused (no early stop there)",
  },
  replacement: {
    type: "string",
    default: "replace_last",
    doc: "replace_last, replace_all or replace_prompt",
  },
  eps_expand: { type: "string", default: "coverage", doc: "coverage or moving_average" },
  num_pert: { type: "int", default: 8, doc: "read for EasyEdit files; unused" },
  dropout: { type: "number", default: 0.0, doc: "read for EasyEdit files; unused" },
  seed: { type: "int", default: 42, doc: "seed of the cold value initialisation" },
};

/** "transformer.h[35].mlp.c_fc.weight" -> "transformer.h.35.mlp.c_fc" (EasyEdit's brackets_to_periods). */
export function graceModule(innerParam: string): string {
  return moduleOfParamName(innerParam);
}

function parse(raw: Record<string, unknown>, where: string, model: CausalLM): GraceHparams {
  const r = { ...raw };
  if (typeof r.num_pert === "string" && /^\d+$/.test(r.num_pert)) r.num_pert = Number(r.num_pert);
  if (r.val_reg === null) r.val_reg = "None";
  const h = parseHparams<GraceHparams>(GRACE_SCHEMA, r, where, "GRACE");
  const oneOf = (k: keyof GraceHparams, allowed: string[]) => {
    if (!allowed.includes(h[k] as string))
      throw new HparamsError(
        `${where}: GRACE ${k} must be one of ${allowed.join(", ")}, got ${JSON.stringify(h[k])}`,
      );
  };
  oneOf("val_init", ["cold", "warm"]);
  oneOf("val_train", ["sgd", "adv"]);
  oneOf("replacement", ["replace_last", "replace_all", "replace_prompt"]);
  oneOf("eps_expand", ["coverage", "moving_average"]);
  oneOf("dist_fn", ["euc"]);
  if (h.inner_params.length === 0) throw new HparamsError(`${where}: GRACE inner_params is empty`);
  const module = graceModule(h.inner_params[0] as string);
  try {
    model.checkModule(module);
  } catch (e) {
    throw new HparamsError(
      `${where}: GRACE inner_params ${JSON.stringify(h.inner_params[0])}: ${(e as Error).message} (set inner_params to a module of this model, e.g. ${model.config.modelType === "gpt2" ? `transformer.h[${model.config.numLayers - 1}].mlp.c_fc.weight` : `model.layers[${model.config.numLayers - 1}].mlp.down_proj.weight`})`,
    );
  }
  if (!model.params.has(`${module}.weight`))
    throw new HparamsError(`${where}: GRACE wraps a module with a weight; ${module} has none`);
  return h;
}

/** The module's input and output at one position of a sequence (the bare module: no adaptor). */
function probe(model: CausalLM, module: string, ids: number[], pos: number): { q: Tensor; out: Tensor } {
  return torch.noGrad(() =>
    torch.scope(() => {
      let q: Tensor | null = null;
      let out: Tensor | null = null;
      model.withHooks(
        [
          { module, where: "input", hook: (x) => void (q = x.select(0, 0).select(0, pos).clone().keep()) },
          { module, where: "output", hook: (y) => void (out = y.select(0, 0).select(0, pos).clone().keep()) },
        ],
        () => model.forward({ inputIds: torch.tensor([ids], { dtype: "int64" }) }),
      );
      if (!q || !out) throw new Error(`GRACE: module ${module} did not run`);
      return { q: (q as Tensor).attach(), out: (out as Tensor).attach() };
    }),
  );
}

export const grace: EditMethod<GraceHparams> = {
  name: "GRACE",
  schema: GRACE_SCHEMA,
  maxBatch: 1,
  parseHparams: parse,
  compute(ctx: EditContext, requests: EditRequest[], h: GraceHparams): EditResult {
    if (requests.length !== 1) throw new Error(`GRACE edits one request at a time, got ${requests.length}`);
    const { model, tok, journal } = ctx;
    const r = requests[0] as EditRequest;
    const module = graceModule(h.inner_params[0] as string);
    const tt = targetTokens(tok, r);
    if (tt.target.length === 0)
      throw new Error(`GRACE: target_new ${JSON.stringify(r.targetNew)} has no tokens`);
    const keyPos = tt.prompt.length - 1;
    const label = tt.target;
    const applied = journal.adaptorEntries(GRACE_KIND, module);

    return journal.withoutAdaptor(GRACE_KIND, module, () =>
      torch.scope(() => {
        const codebook = foldCodebook(applied);
        const nextId = Math.max(-1, ...applied.flatMap((e) => (e.meta as { ids: number[] }).ids)) + 1;
        const ids = [...tt.prompt, ...tt.target];
        const { q, out } = probe(model, module, ids, keyPos);
        const init =
          h.val_init === "warm"
            ? out.clone()
            : torch.rand([out.size(0)], { generator: new torch.Generator(h.seed) }).to(out.dtype);

        // --- the codebook update (EasyEdit: GRACEAdapter.forward at iter 0) ---
        const written = new Map<number, CodeRow>();
        let action: string;
        const newRow = (eps: number): CodeRow => ({ id: nextId, key: q, value: init, eps, label });
        if (codebook.length === 0) {
          written.set(nextId, newRow(h.eps));
          action = "first key";
        } else {
          const d = distances(q.unsqueeze(0), torch.stack(codebook.map((c) => c.key))).select(0, 0);
          const { values: dminT, indices } = d.minDim(0);
          const dmin = dminT.item();
          const near = codebook[indices.item()] as CodeRow;
          const sameLabel = near.label.length === label.length && near.label.every((t, i) => t === label[i]);
          if (dmin > h.eps + near.eps) {
            written.set(nextId, newRow(h.eps));
            action = "new key";
          } else if (!sameLabel) {
            written.set(near.id, { ...near, eps: dmin / 2 - 1e-5 });
            written.set(nextId, newRow(dmin / 2));
            action = "new key, radii split";
          } else if (dmin > near.eps) {
            const key = h.eps_expand === "moving_average" ? near.key.mul(0.5).add(q.mul(0.5)) : near.key;
            written.set(near.id, { ...near, key, eps: dmin });
            action = `radius expanded (${h.eps_expand})`;
          } else {
            written.set(near.id, { ...near });
            action = "key reused";
          }
        }
        // the codebook after the update; the value trained is the one of the key nearest q
        const updated = new Map(codebook.map((c) => [c.id, c]));
        for (const [id, row] of written) updated.set(id, row);
        const rows = [...updated.values()];
        const dq = distances(q.unsqueeze(0), torch.stack(rows.map((c) => c.key))).select(0, 0);
        const chosen = rows[dq.argmin().item()] as CodeRow;
        const chosenDist = dq.min().item();
        if (!written.has(chosen.id)) written.set(chosen.id, { ...chosen });

        // --- value optimisation (EasyEdit: GRACE.edit) ---
        const value = chosen.value.detach().clone().keep().requiresGrad_(true);
        const opt = new torch.optim.Adam([value], { lr: h.edit_lr });
        const losses: number[] = [];
        const within = chosenDist <= chosen.eps;
        const T = ids.length;
        try {
          model.withHooks(
            [
              {
                module,
                where: "output",
                hook: (y) => {
                  if (!within) return;
                  const v = value.to(y.dtype).view(1, 1, -1);
                  if (h.replacement === "replace_all") return v.expand(y.size(0), y.size(1), y.size(2));
                  const pos =
                    h.replacement === "replace_last"
                      ? torch.arange(T).eq(keyPos)
                      : torch.arange(T).lt(keyPos);
                  return torch.where(pos.view(1, T, 1), v, y);
                },
              },
            ],
            () => {
              for (let i = 0; i < h.n_iter; i++) {
                opt.zeroGrad();
                const l = torch.scope(() => {
                  const loss = targetNll(model, tok, [tt]);
                  loss.backward();
                  return loss.item();
                });
                if (!Number.isFinite(l))
                  throw new Error(`GRACE: the loss became ${l} at step ${i}; the model is left unedited`);
                losses.push(l);
                opt.step();
              }
            },
          );
          const trained = value.detach().clone();
          const finalRows = [...written.values()].map((row) =>
            row.id === chosen.id ? { ...row, value: trained } : row,
          );
          const entry = makeEntry(module, finalRows, h.replacement);
          for (const t of Object.values(entry.tensors)) t.keep();
          return {
            deltas: withAdaptors([], [entry]),
            info: {
              module,
              action,
              keys: rows.length,
              chosen_key: chosen.id,
              prompt: fillPrompt(r),
              loss_first: losses[0],
              loss_last: losses[losses.length - 1],
            },
          };
        } finally {
          value.grad = null;
          value.free();
          opt.free();
        }
      }),
    );
  },
};

/**
 * Constrained fine-tuning (EasyEdit's FT; Zhu et al. 2020 for the norm constraint):
 *  - FT-L (objective_optimization "prompt_last"): the log-probabilities of the target tokens read at the
 *    prompt's last position (EasyEdit gathers every target token at that one position), Adam on the
 *    weights of the `rewrite_module_tmp` modules of `layers`, each entry clamped to
 *    within norm_constraint of its original value after every step.
 *  - FT-M (objective_optimization "target_new"): teacher-forced cross-entropy on the target tokens of
 *    prompt + target only (the prompt masked out), without the clamp unless norm_constraint is set.
 * Stops when a step's mean loss is below 1e-2. The delta of each weight is dense.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import { fillPrompt, targetText, type EditRequest } from "../request.js";
import { moduleAt, parseHparams, type Schema } from "../hparams.js";
import { fillModuleTemplates } from "../modules.js";
import type { ParamDelta } from "../journal.js";
import { rightPadIds } from "../repr.js";

const { F } = torch;

export interface FtHparams {
  layers: number[];
  num_steps: number;
  lr: number;
  weight_decay: number;
  kl_factor: number;
  norm_constraint: number | boolean;
  objective_optimization: string;
  batch_size: number;
  rewrite_module_tmp: string;
  layer_module_tmp: string;
  mlp_module_tmp: string;
  attn_module_tmp: string;
  ln_f_module: string;
  lm_head_module: string;
}

export const FT_SCHEMA: Schema = {
  layers: { type: "int[]", default: [0], doc: "layers whose rewrite module is fine-tuned" },
  num_steps: { type: "int", default: 25, doc: "optimisation steps" },
  lr: { type: "number", default: 5e-4, doc: "Adam learning rate" },
  weight_decay: { type: "number", default: 0, doc: "Adam (L2) weight decay" },
  kl_factor: { type: "number", default: 0, doc: "read for EasyEdit files; unused by FT" },
  norm_constraint: { type: "number", default: 5e-5, doc: "max |w - w0| per entry (false: none)" },
  objective_optimization: {
    type: "string",
    default: "prompt_last",
    doc: "prompt_last (FT-L) or target_new (FT-M)",
  },
  batch_size: { type: "int", default: 1, doc: "requests per optimisation batch" },
  rewrite_module_tmp: { type: "string", default: "", doc: "module whose weights are tuned" },
  layer_module_tmp: { type: "string", default: "", doc: "unused" },
  mlp_module_tmp: { type: "string", default: "", doc: "unused" },
  attn_module_tmp: { type: "string", default: "", doc: "unused" },
  ln_f_module: { type: "string", default: "", doc: "unused" },
  lm_head_module: { type: "string", default: "", doc: "unused" },
};

function parse(
  raw: Record<string, unknown>,
  where: string,
  model: CausalLM,
  name: string,
  objective: string,
): FtHparams {
  // norm_constraint may be false in EasyEdit files
  const nc = raw.norm_constraint;
  const rest = { ...raw };
  delete rest.norm_constraint;
  const h = parseHparams<FtHparams>(FT_SCHEMA, rest, where, name);
  if (nc === false) h.norm_constraint = false;
  else if (typeof nc === "number") h.norm_constraint = nc;
  else if (nc !== undefined)
    throw new Error(`${where}: ${name} hyper-parameter 'norm_constraint' must be a number or false`);
  else if (objective === "target_new") h.norm_constraint = false;
  if (!("objective_optimization" in raw)) h.objective_optimization = objective;
  if (h.objective_optimization !== "prompt_last" && h.objective_optimization !== "target_new")
    throw new Error(`${where}: objective_optimization must be prompt_last or target_new`);
  fillModuleTemplates(h, model.config.modelType);
  for (const l of h.layers)
    if (l < 0 || l >= model.config.numLayers)
      throw new Error(`${where}: layer ${l} is out of range (0..${model.config.numLayers - 1})`);
  return h;
}

function loss(ctx: EditContext, batch: EditRequest[], h: FtHparams): Tensor {
  const { model, tok } = ctx;
  const pad = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const prompts = batch.map((r) => tok.encode(fillPrompt(r), { addSpecialTokens: true }));
  const targets = batch.map((r) => tok.encode(targetText(r.targetNew), { addSpecialTokens: false }));
  if (h.objective_optimization === "prompt_last") {
    const { ids, mask } = rightPadIds(prompts, pad);
    const logits = model.forward({ inputIds: ids, attentionMask: mask }).logits;
    const last = logits
      .index(
        torch.arange(batch.length),
        torch.tensor(
          prompts.map((p) => p.length - 1),
          { dtype: "int64" },
        ),
      )
      .logSoftmax(-1);
    const tw = Math.max(...targets.map((t) => t.length));
    const tIds = torch.tensor(
      targets.map((t) => [...t, ...new Array<number>(tw - t.length).fill(0)]),
      { dtype: "int64" },
    );
    const tMask = torch.tensor(
      targets.map((t) => [
        ...new Array<number>(t.length).fill(1),
        ...new Array<number>(tw - t.length).fill(0),
      ]),
    );
    return last.gather(1, tIds).mul(tMask).sum(1).div(tMask.sum(1)).neg().mean();
  }
  const seqs = batch.map((_, i) => [...(prompts[i] as number[]), ...(targets[i] as number[])]);
  const { ids, mask, width } = rightPadIds(seqs, pad);
  // labels: the target tokens only (shifted: position t predicts token t + 1)
  const labels = seqs.map((s, i) => {
    const row = new Array<number>(width - 1).fill(-100);
    const p = (prompts[i] as number[]).length;
    for (let t = p; t < s.length; t++) row[t - 1] = s[t] as number;
    return row;
  });
  const logits = model.forward({ inputIds: ids, attentionMask: mask }).logits.narrow(1, 0, width - 1);
  const lab = torch.tensor(labels, { dtype: "int64" });
  const per = F.crossEntropy(logits.reshape(-1, logits.size(-1)), lab.reshape(-1), {
    reduction: "none",
  }).view(batch.length, width - 1);
  const lm = lab.ne(-100).to("float32");
  return per.mul(lm).sum(1).div(lm.sum(1)).mean();
}

function makeFt(name: "FT-L" | "FT-M", objective: string): EditMethod<FtHparams> {
  return {
    name,
    schema: FT_SCHEMA,
    maxBatch: Number.MAX_SAFE_INTEGER,
    parseHparams: (raw, where, model) => parse(raw, where, model, name, objective),
    compute(ctx: EditContext, requests: EditRequest[], h: FtHparams): EditResult {
      const { model } = ctx;
      const prefixes = h.layers.map((l) => moduleAt(h.rewrite_module_tmp, l) + ".");
      const names = [...model.params.keys()].filter((k) => prefixes.some((p) => k.startsWith(p)));
      if (names.length === 0) throw new Error(`${name}: no parameters under ${prefixes.join(", ")}`);
      const weights = names.map((n) => model.param(n));
      const originals = weights.map((w) => w.detach().clone().keep());
      const wasGrad = weights.map((w) => w.requiresGrad);
      for (const w of weights) w.requiresGrad_(true);
      const opt = new torch.optim.Adam(weights, { lr: h.lr, weightDecay: h.weight_decay });
      const losses: number[] = [];
      try {
        for (let step = 0; step < h.num_steps; step++) {
          let sum = 0;
          let count = 0;
          for (let b = 0; b < requests.length; b += h.batch_size) {
            const batch = requests.slice(b, b + h.batch_size);
            opt.zeroGrad();
            const value = torch.scope(() => {
              const l = loss(ctx, batch, h);
              l.backward();
              return l.item();
            });
            if (!Number.isFinite(value))
              throw new Error(
                `${name}: the loss became ${value} at step ${step}; the model is left unedited`,
              );
            opt.step();
            if (typeof h.norm_constraint === "number") {
              const eps = h.norm_constraint;
              torch.noGrad(() =>
                torch.scope(() => {
                  weights.forEach((w, i) => {
                    const o = originals[i] as Tensor;
                    w.copy_(
                      torch.where(w.gt(o.add(eps)), o.add(eps), torch.where(w.lt(o.sub(eps)), o.sub(eps), w)),
                    );
                  });
                }),
              );
            }
            sum += value * batch.length;
            count += batch.length;
          }
          losses.push(sum / count);
          if (sum / count < 1e-2) break;
        }
        const deltas: ParamDelta[] = torch.noGrad(() =>
          names.map((n, i) => ({
            param: n,
            dense: torch.scope(() => (weights[i] as Tensor).sub(originals[i] as Tensor).keep()),
          })),
        );
        return { deltas, info: { losses } };
      } finally {
        torch.noGrad(() => weights.forEach((w, i) => w.copy_(originals[i] as Tensor)));
        weights.forEach((w, i) => {
          w.grad = null;
          w.requiresGrad_(wasGrad[i] as boolean);
        });
        for (const o of originals) o.free();
        opt.free();
      }
    },
  };
}

export const ftL = makeFt("FT-L", "prompt_last");
export const ftM = makeFt("FT-M", "target_new");

/**
 * Knowledge neurons (Dai et al. 2022) as EasyEdit edits with them (easyeditor/models/kn/kn_main.py and
 * knowledge_neurons/knowledge_neurons.py: get_refined_neurons, get_coarse_neurons, get_scores,
 * modify_weights). One request at a time:
 *
 *  1. Attribution (./attribution.ts): for every layer l, integrated gradients of the MLP neurons at the
 *     prompt's last position for the *original* answer (`ground_truth`, i.e. target_true), averaged over
 *     the answer's tokens. The answer is tokenised as given, without a leading space (`tokenizer.encode`
 *     of the bare string). Token i > 0 is attributed on the same prompt for GPT-2/GPT-J/GPT-NeoX (the
 *     reference re-tokenises only when model_type is "gpt", "llama" or contains "qwen", which "gpt2"
 *     and "gptj" are not) and on the prompt extended greedily by the unmodified model for Llama, Mistral
 *     and Qwen2.
 *  2. Coarse neurons: scores > adaptive_threshold * max(scores), over all layers at once.
 *  3. Refined neurons: with `refine`, those shared by more than p * (number of prompts) prompts; EasyEdit
 *     passes the one edit prompt, so every coarse neuron survives (as with refine false).
 *  4. Edit: the unmodified model's greedy completion a_1..a_n of the prompt (n = the number of tokens of
 *     target_new, re-tokenising the growing text at every step) and the target's tokens t_1..t_n; every
 *     selected neuron's value vector (its row of GPT-2's Conv1D c_proj, its column of a linear
 *     down-projection) changes by
 *         n = 1:  + E[t_1] - 2 E[a_1]
 *         n > 1:  + sum_i E[t_i] - sum_i E[a_i]
 *     with E the input word embedding (the reference's asymmetric factor 2 comes from indexing the
 *     embedding with an int for a one-token completion and with a list for the target).
 *     The change of each layer is rank one: (indicator of the selected neurons) x (that vector).
 *
 * Deviations: target strings are encoded without special tokens (the reference's `tokenizer.encode`
 * adds Llama's BOS, which would then be attributed and edited as the first target token).
 * `lr_scale` and `n_toks` are read for EasyEdit files and unused, as in EasyEdit.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { ModelType } from "../../models/config.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import { fillPrompt, type EditRequest } from "../request.js";
import { HparamsError, parseHparams, type Schema } from "../hparams.js";
import type { ParamDelta } from "../journal.js";
import { baselineActivation, integratedGradients } from "./attribution.js";

export { integratedGradients, baselineActivation, probWithActivation } from "./attribution.js";

export interface KnHparams {
  lr_scale: number;
  n_toks: number;
  refine: boolean;
  batch_size: number;
  steps: number;
  adaptive_threshold: number;
  p: number;
}

/** Defaults: EasyEdit hparams/KN/gpt2-xl.yaml. */
export const KN_SCHEMA: Schema = {
  lr_scale: { type: "number", default: 1.0, doc: "read for EasyEdit files; unused (as in EasyEdit)" },
  n_toks: { type: "int", default: 10, doc: "read for EasyEdit files; unused (as in EasyEdit)" },
  refine: { type: "bool", default: false, doc: "keep neurons shared by more than p of the prompts" },
  batch_size: { type: "int", default: 20, doc: "scaled activations per forward pass" },
  steps: { type: "int", default: 20, doc: "integrated-gradients steps (a multiple of batch_size)" },
  adaptive_threshold: {
    type: "number",
    default: 0.2,
    doc: "coarse threshold as a fraction of the top score",
  },
  p: { type: "number", default: 0.4, doc: "sharing-percentage threshold for refining (0 <= p < 1)" },
};

/** The MLP's input projection (whose outputs are the neurons), value matrix and word embedding, per family. */
export const KN_MODULES: Record<
  ModelType,
  { inputFf: string; outputFf: string; embedding: string; retokenize: boolean }
> = {
  gpt2: {
    inputFf: "transformer.h.{}.mlp.c_fc",
    outputFf: "transformer.h.{}.mlp.c_proj.weight",
    embedding: "transformer.wte.weight",
    retokenize: false,
  },
  gptj: {
    inputFf: "transformer.h.{}.mlp.fc_in",
    outputFf: "transformer.h.{}.mlp.fc_out.weight",
    embedding: "transformer.wte.weight",
    retokenize: false,
  },
  gpt_neox: {
    inputFf: "gpt_neox.layers.{}.mlp.dense_h_to_4h",
    outputFf: "gpt_neox.layers.{}.mlp.dense_4h_to_h.weight",
    embedding: "gpt_neox.embed_in.weight",
    retokenize: false,
  },
  llama: {
    inputFf: "model.layers.{}.mlp.gate_proj",
    outputFf: "model.layers.{}.mlp.down_proj.weight",
    embedding: "model.embed_tokens.weight",
    retokenize: true,
  },
  mistral: {
    inputFf: "model.layers.{}.mlp.gate_proj",
    outputFf: "model.layers.{}.mlp.down_proj.weight",
    embedding: "model.embed_tokens.weight",
    retokenize: true,
  },
  qwen2: {
    inputFf: "model.layers.{}.mlp.gate_proj",
    outputFf: "model.layers.{}.mlp.down_proj.weight",
    embedding: "model.embed_tokens.weight",
    retokenize: true,
  },
};

function parse(raw: Record<string, unknown>, where: string): KnHparams {
  const h = parseHparams<KnHparams>(KN_SCHEMA, raw, where, "KN");
  if (h.steps < 1 || h.batch_size < 1 || h.steps % h.batch_size !== 0)
    throw new HparamsError(
      `${where}: KN steps (${h.steps}) must be a positive multiple of batch_size (${h.batch_size})`,
    );
  if (!(h.p >= 0 && h.p < 1)) throw new HparamsError(`${where}: KN p must be in [0, 1), got ${h.p}`);
  return h;
}

/** Greedy continuation of a text, re-tokenising the growing text at each step (the reference's _generate). */
function greedyTokens(model: CausalLM, tok: Tokenizer, prompt: string, n: number): number[] {
  const out: number[] = [];
  let text = prompt;
  for (let i = 0; i < n; i++) {
    const ids = tok.encode(text, { addSpecialTokens: true });
    const next = torch.noGrad(() =>
      torch.scope(() => {
        const l = model.forward({ inputIds: torch.tensor([ids], { dtype: "int64" }), lastOnly: true }).logits;
        return l.reshape(-1).argmax().item();
      }),
    );
    out.push(next);
    text += tok.decode([next]);
  }
  return out;
}

/**
 * Attribution scores [L, I] of every layer's neurons for the ground truth after the prompt (averaged
 * over the ground truth's tokens).
 */
export function knScores(
  model: CausalLM,
  tok: Tokenizer,
  prompt: string,
  groundTruth: string,
  h: Pick<KnHparams, "steps" | "batch_size">,
): Tensor {
  const mods = KN_MODULES[model.config.modelType];
  const gt = tok.encode(groundTruth, { addSpecialTokens: false });
  if (gt.length === 0) throw new Error(`KN: the ground truth ${JSON.stringify(groundTruth)} has no tokens`);
  // the prompt seen for each answer token (the same one unless the family re-tokenises)
  const inputs: number[][] = [];
  let text = prompt;
  for (let i = 0; i < gt.length; i++) {
    const ids = tok.encode(text, { addSpecialTokens: true });
    inputs.push(mods.retokenize || i === 0 ? ids : (inputs[0] as number[]));
    if (gt.length > 1 && mods.retokenize) {
      const next = torch.scope(() =>
        baselineActivation(model, ids, mods.inputFf.replace("{}", "0")).logits.argmax().item(),
      );
      text += tok.decode([next]);
    }
  }
  return torch.scope(() => {
    const layers: Tensor[] = [];
    for (let l = 0; l < model.config.numLayers; l++) {
      const module = mods.inputFf.replace("{}", String(l));
      const per = gt.map((t, i) =>
        integratedGradients(model, inputs[i] as number[], module, t, {
          steps: h.steps,
          batchSize: h.batch_size,
        }),
      );
      layers.push(torch.stack(per).sum(0).div(per.length));
    }
    return torch.stack(layers);
  });
}

/** Neurons [layer, index] with a score above adaptive_threshold * the maximum (row-major order). */
export function coarseNeurons(scores: Tensor, adaptiveThreshold: number): [number, number][] {
  const threshold = scores.max().item() * adaptiveThreshold;
  const I = scores.size(1);
  const flat = torch.scope(() => scores.gt(threshold).to("float32").reshape(-1).toArray() as Float32Array);
  const out: [number, number][] = [];
  for (let k = 0; k < flat.length; k++) if (flat[k]) out.push([Math.floor(k / I), k % I]);
  return out;
}

/** Neurons shared by more than p * prompts of the prompts' coarse sets (all of them unless refine). */
export function refineNeurons(coarse: [number, number][][], p: number, refine: boolean): [number, number][] {
  const count = new Map<string, { n: [number, number]; c: number }>();
  for (const set of coarse)
    for (const n of set) {
      const k = n.join(",");
      const e = count.get(k);
      if (e) e.c++;
      else count.set(k, { n, c: 1 });
    }
  const t = coarse.length * p;
  return [...count.values()].filter((e) => !refine || e.c > t).map((e) => e.n);
}

/** The change of each selected neuron's value vector: + sum E[target] - (2 E[a_1] | sum E[a_i]). */
export function valueChange(model: CausalLM, targetIds: number[], predictedIds: number[]): Tensor {
  const E = model.param(KN_MODULES[model.config.modelType].embedding);
  return torch.noGrad(() => {
    const emb = (ids: number[]) => E.indexSelect(0, torch.tensor(ids, { dtype: "int64" }));
    const plus = emb(targetIds).sum(0);
    const minus = predictedIds.length === 1 ? emb(predictedIds).sum(0).mul(2) : emb(predictedIds).sum(0);
    return plus.sub(minus);
  });
}

export const kn: EditMethod<KnHparams> = {
  name: "KN",
  schema: KN_SCHEMA,
  maxBatch: 1,
  parseHparams: (raw, where) => parse(raw, where),
  compute(ctx: EditContext, requests: EditRequest[], h: KnHparams): EditResult {
    const { model, tok } = ctx;
    const r = requests[0] as EditRequest;
    if (requests.length !== 1) throw new Error(`KN edits one request at a time, got ${requests.length}`);
    if (!r.targetTrue)
      throw new Error(
        `KN needs the original answer (target_true / ground_truth) of "${fillPrompt(r)}" for its attribution; the request has none`,
      );
    const prompt = fillPrompt(r);
    const mods = KN_MODULES[model.config.modelType];
    const scores = knScores(model, tok, prompt, r.targetTrue, h);
    const neurons = torch.scope(() => {
      const coarse = coarseNeurons(scores, h.adaptive_threshold);
      return refineNeurons([coarse], h.p, h.refine);
    });
    const maxScore = scores.max().item();
    scores.free();
    const targetIds = tok.encode(r.targetNew, { addSpecialTokens: false });
    if (targetIds.length === 0)
      throw new Error(`KN: target_new ${JSON.stringify(r.targetNew)} has no tokens`);
    const predicted = greedyTokens(model, tok, prompt, targetIds.length);
    const deltas: ParamDelta[] = [];
    const byLayer = new Map<number, number[]>();
    for (const [l, i] of neurons) byLayer.set(l, [...(byLayer.get(l) ?? []), i]);
    torch.noGrad(() =>
      torch.scope(() => {
        const change = valueChange(model, targetIds, predicted);
        for (const [l, idx] of [...byLayer].sort((a, b) => a[0] - b[0])) {
          const param = mods.outputFf.replace("{}", String(l));
          const w = model.param(param);
          const conv1d = model.config.modelType === "gpt2";
          const nNeurons = conv1d ? w.size(0) : w.size(1);
          const ind = new Array<number>(nNeurons).fill(0);
          for (const i of idx) ind[i] = 1;
          const indicator = torch.tensor(ind, { dtype: w.dtype });
          const vec = change.to(w.dtype);
          deltas.push(
            conv1d
              ? { param, u: indicator.keep(), v: vec.clone().keep() }
              : { param, u: vec.clone().keep(), v: indicator.keep() },
          );
        }
      }),
    );
    return {
      deltas,
      info: { neurons, max_score: maxScore, predicted_tokens: predicted, target_tokens: targetIds },
    };
  },
};

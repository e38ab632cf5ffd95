/**
 * ROME's value (the right vector v): find the MLP output v* at the subject's last token that makes the
 * model say target_new, then solve for the rank-one update that maps k* to v*.
 *
 *   prompts   = [template(prompt) + target[:-1] for each context template]  +  ["{subject} is a"]
 *   delta     = 0, added to the MLP output of `layer` at each prompt's subject token
 *   loss      = NLL(target | prompts)                        (mean over target tokens, then prompts)
 *             + kl_factor * KL(p_now || p_init) on "{subject} is a" at the subject token (batchmean)
 *             + v_weight_decay * ||delta|| / ||v_init||^2
 *   Adam(lr = v_lr) for v_num_grad_steps, stopping early when loss < 5e-2; after each step ||delta|| is
 *   clamped to clamp_norm_factor * ||v_init||.
 *   v* = v_init + delta;   v = (v* - W k) / (k . u)   with k, W k the module's input/output on the bare prompt.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { EditContext } from "../editor.js";
import { fill, targetText, type EditRequest } from "../request.js";
import { moduleAt } from "../hparams.js";
import { lookupIndex, reprsAtPositions, rightPadded } from "../repr.js";
import type { RomeHparams } from "./hparams.js";

const { F } = torch;

export const KL_PROMPT = "{} is a";
export const EARLY_STOP_LOSS = 5e-2;

export class EditDivergedError extends Error {}

export interface ValueOptimisation {
  /** v* = v_init + delta ([d]) */
  target: Tensor;
  vInit: Tensor;
  losses: number[];
}

/** Optimises delta on the MLP output at `layer` (ROME's compute_v up to v*). */
/** What optimiseValue needs from a method's hparams. */
export type ValueHparams = Pick<
  RomeHparams,
  | "fact_token"
  | "v_num_grad_steps"
  | "v_lr"
  | "v_weight_decay"
  | "clamp_norm_factor"
  | "kl_factor"
  | "mlp_module_tmp"
>;

/**
 * Optimises delta added to the output of `module` at each prompt's subject token (ROME: the MLP of the
 * edited layer; MEMIT: the whole block of the last edited layer, compute_z) and returns v* = v_init + delta.
 */
export function optimiseValue(
  ctx: EditContext,
  request: EditRequest,
  layer: number,
  h: ValueHparams,
  templates: string[],
  opts: { module?: string; method?: string } = {},
): ValueOptimisation {
  const [r] = optimiseDeltas(ctx, request, [opts.module ?? moduleAt(h.mlp_module_tmp, layer)], h, templates, {
    method: opts.method ?? "ROME",
  });
  return r as ValueOptimisation;
}

/** PMET's extra control of the optimisation (compute_zs). */
export interface PmetControl {
  /** the NLL weight; 0.1 of it once the target is the argmax at every target position */
  nllLossFactor: number;
}

/**
 * The optimisation shared by ROME (compute_v), MEMIT/AlphaEdit/EMMET (compute_z) and PMET (compute_zs):
 * one delta per module, each added to that module's output at every prompt's subject token;
 * loss = NLL(target) + kl_factor KL(now || init) on "{subject} is a" + sum of v_weight_decay
 * ||delta_m|| / ||init_m||^2; Adam; stop when loss < 5e-2 or at the last iteration (no step then);
 * each delta clamped to clamp_norm_factor ||init_m|| after a step. With `pmet`, PMET's dynamic NLL
 * factor and its stop once the target is the argmax everywhere and the KL term is <= 0.01.
 * Returns v*_m = init_m + delta_m per module, attached to the caller's scope.
 */
export function optimiseDeltas(
  ctx: EditContext,
  request: EditRequest,
  modules: string[],
  h: ValueHparams,
  templates: string[],
  opts: { method: string; pmet?: PmetControl },
): ValueOptimisation[] {
  const rs = optimiseDeltasInner(ctx, request, modules, h, templates, opts.method, opts.pmet ?? null);
  for (const r of rs) {
    r.target.attach();
    r.vInit.attach();
  }
  return rs;
}

function optimiseDeltasInner(
  ctx: EditContext,
  request: EditRequest,
  modules: string[],
  h: ValueHparams,
  templates: string[],
  method: string,
  pmet: PmetControl | null,
): ValueOptimisation[] {
  const { model, tok } = ctx;
  const targetIds = tok.encode(targetText(request.targetNew), { addSpecialTokens: false });
  if (targetIds.length === 0)
    throw new Error(`${method}: target_new ${JSON.stringify(request.targetNew)} tokenises to nothing`);
  const targetPrefix = tok.decode(targetIds.slice(0, -1));
  const rewriting = templates.map((t) => fill(t, request.prompt) + targetPrefix);
  const klPrompts = [KL_PROMPT];
  const all = [...rewriting, ...klPrompts];
  const filled = all.map((p) => fill(p, request.subject));
  const lookup = all.map((p) => lookupIndex(tok, p, request.subject, h.fact_token));

  return torch.scope(() => {
    const { ids, mask, lengths } = rightPadded(tok, filled);
    const [, width] = ids.shape as [number, number];
    // target token positions of each rewriting prompt: its last len(target) tokens
    const targets: number[][] = rewriting.map((_, i) => {
      const row = new Array<number>(width).fill(-100);
      const len = lengths[i] as number;
      targetIds.forEach((t, k) => (row[len - targetIds.length + k] = t));
      return row;
    });
    const tgt = torch.tensor(targets, { dtype: "int64" });
    const tgtMask = tgt.ne(-100).to("float32");
    // the logits the loss reads: each rewriting prompt's target positions, then each KL prompt's
    // subject token (the vocabulary projection of every other position is skipped)
    const tgtRowsList: number[] = [];
    const tgtPosList: number[] = [];
    rewriting.forEach((_, i) =>
      targetIds.forEach((_t, k) => {
        tgtRowsList.push(i);
        tgtPosList.push((lengths[i] as number) - targetIds.length + k);
      }),
    );
    const nTgt = tgtRowsList.length;
    const nKl = all.length - rewriting.length;
    const tgtRows = torch.tensor(tgtRowsList, { dtype: "int64" });
    const tgtPos = torch.tensor(tgtPosList, { dtype: "int64" });
    const tgtIds = torch.tensor(
      rewriting.flatMap(() => targetIds),
      { dtype: "int64" },
    );
    const logitsAt = {
      rows: torch.cat([tgtRows, torch.arange(rewriting.length, all.length)]),
      positions: torch.cat([tgtPos, torch.tensor(lookup.slice(rewriting.length), { dtype: "int64" })]),
    };
    // per-position values back in the [prompts, width] layout the reference sums over (zeros elsewhere)
    const spread = (v: Tensor) =>
      torch.zeros([rewriting.length, width], { dtype: v.dtype }).indexPut_([tgtRows, tgtPos], v);
    const rows = torch.arange(all.length);
    const pos = torch.tensor(lookup, { dtype: "int64" });

    const d = model.config.hiddenSize;
    // Nothing below the first edited block changes during the optimisation: its input is captured in
    // the first iteration and the later ones resume there (bit-identical, fewer layers run per step).
    const resume = firstBlock(modules, model);
    let resumeHidden: Tensor | null = null;
    const deltas = modules.map(() => torch.zeros([d], { requiresGrad: true }).keep());
    // PMET passes [delta_mlp, delta_attn] to Adam in that order; the order does not change Adam's result
    const opt = new torch.optim.Adam(deltas, { lr: h.v_lr });
    const inits: (Tensor | null)[] = modules.map(() => null);
    let klInit: Tensor | null = null;
    let nllFactor = pmet?.nllLossFactor ?? 1;
    const losses: number[] = [];
    let succeeded = false;
    try {
      for (let it = 0; it < h.v_num_grad_steps; it++) {
        opt.zeroGrad();
        const stop = torch.scope(() => {
          const hooks = modules.map((module, m) => ({
            module,
            where: "output" as const,
            hook: (out: Tensor) => {
              if (inits[m] === null)
                inits[m] = out
                  .index(0, lookup[0] as number)
                  .detach()
                  .clone()
                  .keep();
              // out[i, lookup[i], :] += delta, as an out-of-place sum so autograd sees it
              const add = torch
                .zeros(out.shape, { dtype: out.dtype })
                .indexPut_([rows, pos], (deltas[m] as Tensor).to(out.dtype));
              return out.add(add);
            },
          }));
          const capture = resume !== null && resumeHidden === null ? { layer: resume, hidden: null } : null;
          const resumeAt =
            resume !== null && resumeHidden !== null ? { layer: resume, hidden: resumeHidden } : null;
          // [selected pairs, V]
          let logits: Tensor;
          try {
            logits = model
              .withHooks(hooks, () =>
                model.forward({ inputIds: ids, attentionMask: mask, captureAt: capture, resumeAt, logitsAt }),
              )
              .logits.squeeze(0);
          } finally {
            if (capture) resumeHidden = capture.hidden;
          }
          const klLogProbs = logits.narrow(0, nTgt, nKl).logSoftmax(-1);
          if (klInit === null) klInit = klLogProbs.detach().clone().keep();
          const logProbs = logits.narrow(0, 0, nTgt).logSoftmax(-1);
          const picked = spread(logProbs.gather(1, tgtIds.unsqueeze(1)).squeeze(1));
          const nllEach = picked.mul(tgtMask).sum(1).neg().div(targetIds.length);
          const nll = nllEach.mean().mul(nllFactor);
          const kl = F.klDiv(klInit as unknown as Tensor, klLogProbs, {
            logTarget: true,
            reduction: "batchmean",
          }).mul(h.kl_factor);
          let loss = nll.add(kl);
          modules.forEach((_, m) => {
            const wd = (deltas[m] as Tensor)
              .norm()
              .div((inits[m] as unknown as Tensor).norm().square())
              .mul(h.v_weight_decay);
            loss = loss.add(wd);
          });
          const value = loss.item();
          losses.push(value);
          if (!Number.isFinite(value))
            throw new EditDivergedError(
              `${method}: the value optimisation diverged at step ${it} (loss ${value}); the model is left unedited. ` +
                "Try a smaller v_lr or clamp_norm_factor.",
            );
          if (value < EARLY_STOP_LOSS) return true;
          if (pmet) {
            // prob = mean exp(-nll_r); max_prob = mean exp(mean over targets of max log-prob): equal when
            // the target is the argmax at every target position of every rewriting prompt
            const prob = nllEach.neg().exp().mean().item();
            const best = spread(logProbs.amax(1))
              .mul(tgtMask)
              .sum(1)
              .div(targetIds.length)
              .exp()
              .mean()
              .item();
            if (best === prob) {
              nllFactor = 0.1 * pmet.nllLossFactor;
              if (kl.item() <= 0.01) return true;
            } else nllFactor = pmet.nllLossFactor;
          }
          if (it === h.v_num_grad_steps - 1) return true;
          loss.backward();
          return false;
        });
        if (stop) break;
        opt.step();
        torch.noGrad(() =>
          torch.scope(() => {
            modules.forEach((_, m) => {
              const delta = deltas[m] as Tensor;
              const maxNorm = (inits[m] as unknown as Tensor).norm().item() * h.clamp_norm_factor;
              const n = delta.norm().item();
              if (!Number.isFinite(n))
                throw new EditDivergedError(
                  `${method}: the value delta became non-finite at step ${it}; the model is left unedited. Try a smaller v_lr.`,
                );
              if (n > maxNorm) delta.mul_(maxNorm / n);
            });
          }),
        );
      }
      const done = modules.map((_, m) => {
        const v0 = inits[m] as unknown as Tensor;
        return { target: v0.add((deltas[m] as Tensor).detach()).keep(), vInit: v0, losses };
      });
      succeeded = true;
      return done;
    } finally {
      if (!succeeded) for (const t of inits) (t as Tensor | null)?.free();
      opt.free();
      for (const t of deltas) t.free();
      (klInit as Tensor | null)?.free();
      (resumeHidden as Tensor | null)?.free();
    }
  });
}

/**
 * The right vector: (v* - W k) / (k . u), with k and W k at the subject token of the bare prompt (ROME),
 * or, for r-ROME, the means of k and W k over the context templates, each template run alone.
 */
export function computeV(
  ctx: EditContext,
  request: EditRequest,
  layer: number,
  h: RomeHparams,
  u: Tensor,
  target: Tensor,
  templates: string[] | null = null,
): Tensor {
  const module = moduleAt(h.rewrite_module_tmp, layer);
  // ROME: the bare prompt; r-ROME: every context template, each run alone, averaged
  const prompts = templates === null ? [request.prompt] : templates.map((t) => fill(t, request.prompt));
  return torch.scope(() => {
    const ks: Tensor[] = [];
    const outs: Tensor[] = [];
    for (const p of prompts) {
      const idx = lookupIndex(ctx.tok, p, request.subject, h.fact_token);
      const { input, output } = reprsAtPositions(
        ctx.model,
        ctx.tok,
        module,
        [fill(p, request.subject)],
        [idx],
      );
      ks.push(input.select(0, 0).to("float32"));
      outs.push(output.select(0, 0).to("float32"));
    }
    const k = torch.stack(ks).mean(0);
    const wk = torch.stack(outs).mean(0);
    return target.to("float32").sub(wk).div(k.dot(u));
  });
}

/**
 * The layer of the first of the modules ("transformer.h.8.mlp", "model.layers.8" -> 8), or null when a
 * module's name carries no layer number (then every step runs the whole model).
 */
function firstBlock(modules: string[], model: EditContext["model"]): number | null {
  const layerOf = (name: string) => {
    const match = /\.(\d+)(\.|$)/.exec(name);
    return match ? Number(match[1]) : null;
  };
  let best: number | null = null;
  for (const m of modules) {
    const layer = layerOf(m);
    if (layer === null) return null;
    if (best === null || layer < best) best = layer;
  }
  // a hook below that layer (an adaptor of an earlier edit, as MELO's) may pass state up within a pass:
  // then every step runs the whole model
  for (const name of model.hooks.keys()) {
    const layer = layerOf(name);
    if (best !== null && layer !== null && layer < best) return null;
  }
  return best;
}

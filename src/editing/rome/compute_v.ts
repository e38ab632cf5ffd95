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
  const r = optimiseValueInner(
    ctx,
    request,
    opts.module ?? moduleAt(h.mlp_module_tmp, layer),
    h,
    templates,
    opts.method ?? "ROME",
  );
  r.target.attach();
  r.vInit.attach();
  return r;
}

function optimiseValueInner(
  ctx: EditContext,
  request: EditRequest,
  mlp: string,
  h: ValueHparams,
  templates: string[],
  method: string,
): ValueOptimisation {
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
    const tgtIdx = torch.where(tgt.ne(-100), tgt, 0);
    const rows = torch.arange(all.length);
    const pos = torch.tensor(lookup, { dtype: "int64" });
    const klRows = torch.arange(rewriting.length, all.length);
    const klPos = torch.tensor(lookup.slice(rewriting.length), { dtype: "int64" });

    const d = model.config.hiddenSize;
    const delta = torch.zeros([d], { requiresGrad: true }).keep();
    const opt = new torch.optim.Adam([delta], { lr: h.v_lr });
    let vInit: Tensor | null = null;
    let klInit: Tensor | null = null;
    const losses: number[] = [];
    try {
      for (let it = 0; it < h.v_num_grad_steps; it++) {
        opt.zeroGrad();
        const stop = torch.scope(() => {
          const logits = model.withHooks(
            [
              {
                module: mlp,
                where: "output",
                hook: (out) => {
                  if (vInit === null)
                    vInit = out
                      .index(0, lookup[0] as number)
                      .detach()
                      .clone()
                      .keep();
                  // out[i, lookup[i], :] += delta, as an out-of-place sum so autograd sees it
                  const add = torch
                    .zeros(out.shape, { dtype: out.dtype })
                    .indexPut_([rows, pos], delta.to(out.dtype));
                  return out.add(add);
                },
              },
            ],
            () => model.forward({ inputIds: ids, attentionMask: mask }).logits,
          );
          const klLogProbs = logits.index(klRows, klPos).logSoftmax(-1);
          if (klInit === null) klInit = klLogProbs.detach().clone().keep();
          const logProbs = logits.narrow(0, 0, rewriting.length).logSoftmax(2);
          const picked = logProbs.gather(2, tgtIdx.unsqueeze(2)).squeeze(2);
          const nllEach = picked.mul(tgtMask).sum(1).neg().div(targetIds.length);
          const nll = nllEach.mean();
          const kl = F.klDiv(klInit as unknown as Tensor, klLogProbs, {
            logTarget: true,
            reduction: "batchmean",
          }).mul(h.kl_factor);
          const wd = delta
            .norm()
            .div((vInit as unknown as Tensor).norm().square())
            .mul(h.v_weight_decay);
          const loss = nll.add(kl).add(wd);
          const value = loss.item();
          losses.push(value);
          if (!Number.isFinite(value))
            throw new EditDivergedError(
              `${method}: the value optimisation diverged at step ${it} (loss ${value}); the model is left unedited. ` +
                "Try a smaller v_lr or clamp_norm_factor.",
            );
          if (value < EARLY_STOP_LOSS || it === h.v_num_grad_steps - 1) return true;
          loss.backward();
          return false;
        });
        if (stop) break;
        opt.step();
        torch.noGrad(() =>
          torch.scope(() => {
            const maxNorm = (vInit as unknown as Tensor).norm().item() * h.clamp_norm_factor;
            const n = delta.norm().item();
            if (!Number.isFinite(n))
              throw new EditDivergedError(
                `${method}: the value delta became non-finite at step ${it}; the model is left unedited. Try a smaller v_lr.`,
              );
            if (n > maxNorm) delta.mul_(maxNorm / n);
          }),
        );
      }
      const v0 = vInit as unknown as Tensor;
      return { target: v0.add(delta.detach()).keep(), vInit: v0, losses };
    } finally {
      opt.free();
      delta.free();
      (klInit as Tensor | null)?.free();
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

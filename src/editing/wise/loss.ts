/**
 * WISE's training objective (EasyEdit easyeditor/models/wise/WISE.py: _cal_ft_loss, _cal_activation_loss,
 * euc, EarlyStopMeter in utils.py), for one request trained on its context-templated prompts (rows
 * 0..R-1) and one out-of-scope text (row R), with the module's output replaced by the side memory W_v'.
 *
 *  - ft loss: per templated row, the summed cross-entropy of the target tokens divided by (number of
 *    target tokens + 1) (EasyEdit's label mask starts one position before the first target prediction,
 *    where the label is masked and the loss 0), averaged over the rows;
 *  - activation score of a row: the mean over its tokens of ||act(W_v' x) - act(W_v x)||_2 (padding
 *    excluded here; EasyEdit averages its left padding in too);
 *  - routing loss (general editing, EasyEdit's act_mask None): with s_in the R in-scope scores and s_out
 *    the out-of-scope one, mean+(s_out - s_in + gamma) + mean+(s_out - alpha) + mean+(beta - s_in), where
 *    mean+ averages the positive entries only (0 when there are none).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";

const { F } = torch;

/** Mean of the positive entries (torch.mean(t[t > 0])), 0 when none is positive. */
export function positiveMean(t: Tensor): Tensor {
  const pos = t.gt(0);
  const n = pos.sum().item();
  if (n === 0) return torch.zeros([], { dtype: t.dtype });
  return t.mul(pos.to(t.dtype)).sum().div(n);
}

/**
 * EasyEdit _cal_ft_loss ('only_label'): logits [N, W, V] of right-padded rows; rows 0..R-1 carry a
 * prompt of `prompt[i]` tokens followed by `target[i]` target tokens.
 */
export function ftLoss(logits: Tensor, rows: { prompt: number; ids: number[] }[], width: number): Tensor {
  const R = rows.length;
  const V = logits.size(-1);
  const labels = torch.tensor(
    rows.map((r) => {
      const row = new Array<number>(width - 1).fill(-100);
      for (let t = r.prompt; t < r.ids.length; t++) row[t - 1] = r.ids[t] as number;
      return row;
    }),
    { dtype: "int64" },
  );
  const ce = F.crossEntropy(
    logits
      .narrow(0, 0, R)
      .narrow(1, 0, width - 1)
      .reshape(-1, V),
    labels.reshape(-1),
    {
      reduction: "none",
    },
  ).view(R, width - 1);
  const denom = torch.tensor(
    rows.map((r) => r.ids.length - r.prompt + 1),
    { dtype: ce.dtype },
  );
  return ce.sum(1).div(denom).mean();
}

/** Per-row mean over the real tokens of a [N, W] distance map (mask [N, W] of 1/0). */
export function maskedRowMean(d: Tensor, mask: Tensor): Tensor {
  const m = mask.to(d.dtype);
  return d.mul(m).sum(1).div(m.sum(1));
}

/** EasyEdit _cal_activation_loss, general editing, one request: scores in [R], out [1]. */
export function routingLoss(
  inScope: Tensor,
  outScope: Tensor,
  alpha: number,
  beta: number,
  gamma: number,
): Tensor {
  const margin = outScope.view(-1, 1).sub(inScope).add(gamma);
  const outAbove = outScope.sub(alpha);
  const inBelow = inScope.neg().add(beta);
  return positiveMean(margin).add(positiveMean(outAbove)).add(positiveMean(inBelow));
}

/** EasyEdit utils.py EarlyStopMeter: stop once the loss changed by <= 1e-4 and is <= 0.02. */
export class EarlyStopMeter {
  private val = 1e9;
  private pre = 0;
  update(v: number): void {
    this.pre = this.val;
    this.val = v;
  }
  stop(): boolean {
    return Math.abs(this.val - this.pre) <= 1e-4 && this.val <= 0.02;
  }
}

/**
 * Optimisers with torch's update rules, step for step (torch 1.13's single-tensor Adam/AdamW:
 * exp_avg.mul_(b1).add_(g, 1-b1); exp_avg_sq.mul_(b2).addcmul_(g, g, 1-b2);
 * denom = sqrt(exp_avg_sq) / sqrt(1-b2^t) + eps; p.addcdiv_(exp_avg, denom, -lr/(1-b1^t))).
 * ROME, MEMIT and the fine-tuning methods optimise with torch.optim.Adam; matching it matters.
 */
import { Tensor, noGrad, zerosLike } from "./tensor.js";

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

interface ParamState {
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
}

abstract class AdamBase {
  readonly params: Tensor[];
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  protected readonly state = new Map<Tensor, ParamState>();

  constructor(params: Tensor[], opts: AdamOptions, defaultWeightDecay: number) {
    this.params = params;
    this.lr = opts.lr ?? 1e-3;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? defaultWeightDecay;
    for (const p of params)
      if (!p.requiresGrad) throw new Error("optimizer: every parameter must have requiresGrad");
  }

  /** Sets every parameter's gradient to None (torch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  protected abstract decoupled: boolean;

  step(): void {
    noGrad(() => {
      for (const p of this.params) {
        const g0 = p.grad;
        if (g0 === null) continue;
        let st = this.state.get(p);
        if (!st) {
          st = { step: 0, expAvg: zerosLike(p).keep(), expAvgSq: zerosLike(p).keep() };
          this.state.set(p, st);
        }
        st.step += 1;
        let g = g0;
        if (this.weightDecay !== 0) {
          if (this.decoupled) p.mul_(1 - this.lr * this.weightDecay);
          else g = g0.add(p, this.weightDecay);
        }
        st.expAvg.mul_(this.beta1).add_(g, 1 - this.beta1);
        st.expAvgSq.mul_(this.beta2).addcmul_(g, g, 1 - this.beta2);
        const bc1 = 1 - this.beta1 ** st.step;
        const bc2 = 1 - this.beta2 ** st.step;
        const stepSize = this.lr / bc1;
        const sq = st.expAvgSq.sqrt();
        const denom = sq.div(Math.sqrt(bc2)).add_(this.eps);
        p.addcdiv_(st.expAvg, denom, -stepSize);
        sq.free();
        denom.free();
        if (g !== g0) g.free();
        g0.free();
      }
    });
  }

  /** Frees the optimiser state (moment estimates). */
  free(): void {
    for (const st of this.state.values()) {
      st.expAvg.free();
      st.expAvgSq.free();
    }
    this.state.clear();
  }
  [Symbol.dispose](): void {
    this.free();
  }
}

/** torch.optim.Adam (L2 weight decay added to the gradient). */
export class Adam extends AdamBase {
  protected decoupled = false;
  constructor(params: Tensor[], opts: AdamOptions = {}) {
    super(params, opts, 0);
  }
}

/** torch.optim.AdamW (decoupled weight decay, default 0.01). */
export class AdamW extends AdamBase {
  protected decoupled = true;
  constructor(params: Tensor[], opts: AdamOptions = {}) {
    super(params, opts, 1e-2);
  }
}

/** Plain SGD with optional momentum (torch.optim.SGD without dampening or nesterov). */
export class SGD {
  private readonly buf = new Map<Tensor, Tensor>();
  constructor(
    readonly params: Tensor[],
    public lr: number,
    readonly momentum = 0,
  ) {}
  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }
  step(): void {
    noGrad(() => {
      for (const p of this.params) {
        const g = p.grad;
        if (g === null) continue;
        if (this.momentum !== 0) {
          let b = this.buf.get(p);
          if (!b) {
            b = g.clone().keep();
            this.buf.set(p, b);
          } else b.mul_(this.momentum).add_(g);
          p.add_(b, -this.lr);
        } else p.add_(g, -this.lr);
        g.free();
      }
    });
  }
  free(): void {
    for (const b of this.buf.values()) b.free();
    this.buf.clear();
  }
}

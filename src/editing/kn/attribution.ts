/**
 * Integrated-gradients attribution of MLP neurons (Dai et al. 2022, "Knowledge Neurons in Pretrained
 * Transformers"), as EasyEdit's knowledge_neurons package computes it
 * (easyeditor/models/kn/knowledge_neurons/knowledge_neurons/knowledge_neurons.py, `scaled_input`,
 * `get_baseline_with_activations`, `get_scores_for_layer`):
 *
 *   a     = the output of the MLP's input projection (GPT-2 `mlp.c_fc`, before the activation function)
 *           at the prompt's last position, on the unmodified model
 *   f(x)  = softmax(logits at the last position)[target] with that position's activation replaced by x
 *   IG_j  = a_j / m * sum_{k=0}^{m-1} df/dx_j (alpha_k a),   alpha = linspace(0, 1, m)   (m = steps)
 *
 * The sum over j approximates f(a) - f(0) (completeness), with the O(1/m) error of this Riemann sum
 * (both end points included, divided by m). The m scaled copies run through the model in batches of
 * `batchSize` (m must be a multiple of it, as the reference asserts).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";

/** The module's output at the last position of `ids` [I], and the model's last-position logits [V]. */
export function baselineActivation(
  model: CausalLM,
  ids: number[],
  module: string,
): { acts: Tensor; logits: Tensor } {
  return torch.noGrad(() =>
    torch.scope(() => {
      let acts: Tensor | null = null;
      const out = model.withHooks(
        [
          {
            module,
            where: "output",
            hook: (y) =>
              void (acts = y
                .select(1, y.size(1) - 1)
                .select(0, 0)
                .clone()
                .keep()),
          },
        ],
        () => model.forward({ inputIds: torch.tensor([ids], { dtype: "int64" }), lastOnly: true }).logits,
      );
      if (acts === null) throw new Error(`KN: module ${module} did not run`);
      return { acts: (acts as Tensor).attach(), logits: out.select(0, 0).select(0, out.size(1) - 1) };
    }),
  );
}

/**
 * f(x): the target's probability at the last position when the module's output there is replaced by x
 * (rows of x [n, I] are evaluated as a batch); returns [n]. Gradients flow to x.
 */
export function probWithActivation(
  model: CausalLM,
  ids: number[],
  module: string,
  x: Tensor,
  targetId: number,
): Tensor {
  const n = x.size(0);
  const input = torch.tensor(new Array<number[]>(n).fill(ids), { dtype: "int64" });
  const T = ids.length;
  return model.withHooks(
    [
      {
        module,
        where: "output",
        hook: (y) =>
          T === 1
            ? x.unsqueeze(1).to(y.dtype)
            : torch.cat([y.narrow(1, 0, T - 1), x.unsqueeze(1).to(y.dtype)], 1),
      },
    ],
    () => {
      const logits = model.forward({ inputIds: input, lastOnly: true }).logits;
      return logits
        .select(1, logits.size(1) - 1)
        .softmax(-1)
        .select(1, targetId);
    },
  );
}

/** Integrated gradients of every neuron of `module` for the target token at the last position: [I]. */
export function integratedGradients(
  model: CausalLM,
  ids: number[],
  module: string,
  targetId: number,
  opts: { steps: number; batchSize: number },
): Tensor {
  const { steps, batchSize } = opts;
  if (steps < 1 || batchSize < 1 || steps % batchSize !== 0)
    throw new Error(`KN: steps (${steps}) must be a positive multiple of batch_size (${batchSize})`);
  return torch.scope(() => {
    const { acts } = baselineActivation(model, ids, module);
    const alphas = torch.linspace(0, 1, steps, { dtype: acts.dtype });
    const scaled = alphas.unsqueeze(1).mul(acts.unsqueeze(0)); // [steps, I]
    let grads: Tensor = torch.zerosLike(acts);
    for (let b = 0; b < steps; b += batchSize) {
      const g = torch.scope(() => {
        const rows = scaled.narrow(0, b, batchSize).detach().clone().requiresGrad_(true);
        probWithActivation(model, ids, module, rows, targetId).sum().backward();
        const gr = (rows.grad as Tensor).sum(0);
        rows.grad = null;
        return gr;
      });
      grads = grads.add(g);
    }
    return grads.mul(acts).div(steps);
  });
}

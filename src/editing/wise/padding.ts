/**
 * The real (non-padding) positions of the forward pass under way, as a module hook sees them. WISE
 * (./memory.ts) and MELO (../melo/adaptors.ts) decide per sequence from a module's output [B, T, d]: WISE
 * from its mean over the sequence, MELO from one position's key. A hook does not get the attention mask,
 * but the model keeps the inputs of the passes under way (`CausalLM.activeForwards`, innermost last):
 * the mask there covers the cached positions and the new ones ([B, Tpast + T]); its last T columns say
 * which of the positions this pass computes are real.
 *
 * What the decision is made on, per row: the real positions among the T positions the pass computes,
 * which are exactly the positions that row's own forward pass would compute alone, unpadded, with the
 * same KV cache chunking (the reference's case: EasyEdit runs one sequence or a left-padded batch, and
 * its HF generate() feeds the prompt once and then one new token per cached step). A pass without an
 * attention mask is taken to be all real: a batch right-padded without a mask (lm-evaluation-harness's
 * loglikelihood batches) cannot be told from longer sequences here.
 */
import * as torch from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";

/**
 * For each of the `batch` rows of the innermost forward pass of `model`, the indices (0..tokens-1) of
 * its real positions among the `tokens` positions the pass computes; null when every position is real
 * (no attention mask, or one without padding in those positions), so callers keep their unpadded path.
 */
export function realPositions(
  model: CausalLM,
  batch: number,
  tokens: number,
  who: string,
): number[][] | null {
  const inputs = model.activeForwards[model.activeForwards.length - 1];
  const mask = inputs?.attentionMask ?? null;
  if (!inputs || !mask) return null;
  if (mask.ndim !== 2 || mask.size(0) !== batch || mask.size(1) < tokens)
    throw new Error(
      `${who}: the forward pass's attention mask is [${mask.shape.join(", ")}], but the hooked module computes ` +
        `${batch} rows of ${tokens} positions (the mask must be [batch, past + new positions])`,
    );
  const flat = torch.scope(() =>
    torch.noGrad(() =>
      mask
        .narrow(1, mask.size(1) - tokens, tokens)
        .ne(0)
        .to("int64")
        .toNumbers(),
    ),
  );
  let padded = false;
  const rows: number[][] = [];
  for (let b = 0; b < batch; b++) {
    const row: number[] = [];
    for (let t = 0; t < tokens; t++) {
      if (flat[b * tokens + t] !== 0) row.push(t);
      else padded = true;
    }
    rows.push(row);
  }
  return padded ? rows : null;
}

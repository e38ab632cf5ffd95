/**
 * The teacher-forced target loss that EasyEdit's LoRA and GRACE train on: each request is tokenised as
 * prompt + " " + target (here: the prompt's ids followed by the ids of the spaced target, which is the
 * same sequence for GPT-2's byte-level BPE), the prompt's positions are masked out of the labels (-100),
 * and the loss is transformers' causal-LM loss: the mean cross-entropy over every unmasked target token
 * of the batch (a token-level mean, not a mean of per-request means).
 * EasyEdit: easyeditor/models/lora/lora_main.py:144-156, easyeditor/models/grace/utils.py:68-92.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import { fillPrompt, targetText, type EditRequest } from "../request.js";
import { rightPadIds } from "../repr.js";

const { F } = torch;

/** Token ids of one request: the prompt (with the tokenizer's special tokens) and the spaced target. */
export interface TargetTokens {
  prompt: number[];
  target: number[];
}

export function targetTokens(tok: Tokenizer, r: EditRequest): TargetTokens {
  return {
    prompt: tok.encode(fillPrompt(r), { addSpecialTokens: true }),
    target: tok.encode(targetText(r.targetNew), { addSpecialTokens: false }),
  };
}

/** Right-padded ids, attention mask and shifted labels of prompt + target sequences. */
export function targetBatch(
  tok: Tokenizer,
  items: TargetTokens[],
): { ids: Tensor; mask: Tensor; labels: Tensor; width: number } {
  const pad = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const seqs = items.map((it) => [...it.prompt, ...it.target]);
  const { ids, mask, width } = rightPadIds(seqs, pad);
  // labels[t] is the token predicted at position t (the token at t + 1), -100 where not a target token
  const labels = torch.tensor(
    seqs.map((s, i) => {
      const row = new Array<number>(width - 1).fill(-100);
      const p = (items[i] as TargetTokens).prompt.length;
      for (let t = p; t < s.length; t++) row[t - 1] = s[t] as number;
      return row;
    }),
    { dtype: "int64" },
  );
  return { ids, mask, labels, width };
}

/** Mean NLL of the target tokens over the batch (transformers' loss with -100 labels). */
export function targetNll(model: CausalLM, tok: Tokenizer, items: TargetTokens[]): Tensor {
  const { ids, mask, labels, width } = targetBatch(tok, items);
  const logits = model.forward({ inputIds: ids, attentionMask: mask }).logits.narrow(1, 0, width - 1);
  return F.crossEntropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), { ignoreIndex: -100 });
}

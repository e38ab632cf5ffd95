/**
 * IKE's demonstrations (EasyEdit easyeditor/models/ike/util.py encode_ike_facts, ike_main.py
 * apply_ike_to_model; Zheng et al. 2023): from each training record, with new_fact = f"{prompt} {target}",
 *   copy:   f"New Fact: {new_fact}\nPrompt: {new_fact}\n\n"
 *   update: f"New Fact: {new_fact}\nPrompt: {rephrase} {target}\n\n"          (when it has a rephrase)
 *   retain: f"New Fact: {new_fact}\nPrompt: {locality} {locality_answer}\n\n" (when it has a locality prompt)
 * The k demonstrations nearest (cosine of sentence embeddings) to the query
 *   f"New Fact: {new_fact}\nPrompt: {prompt}\n\n"
 * come first, most similar first (sentence_transformers' semantic_search order), then the edited prompt:
 *   "".join(demonstrations) + f"New Fact: {prompt} {target}\nPrompt: " + input
 * (evaluate.py compute_icl_edit_quality / icl_lm_eval; the current EasyEdit no longer appends the new
 * fact's own copy demonstration).
 *
 * The sentence embedding: EasyEdit uses all-MiniLM-L6-v2, not available here; we use the edited model's
 * own final hidden states (after its final norm), averaged over the tokens and L2-normalised (cosine =
 * dot product, as util.normalize_embeddings + dot_score). Ties keep the corpus order.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import { rightPadIds } from "../repr.js";
import type { ScopeRecord } from "../serac/data.js";

/** The demonstrations of one training record, in EasyEdit's order (copy, update, retain). */
export function demonstrations(r: ScopeRecord): string[] {
  const fact = `${r.prompt} ${r.target}`;
  const out = [`New Fact: ${fact}\nPrompt: ${fact}\n\n`];
  const rephrase = r.inScope[1];
  if (rephrase !== undefined) out.push(`New Fact: ${fact}\nPrompt: ${rephrase} ${r.target}\n\n`);
  const loc = r.outScope[0];
  if (loc !== undefined) out.push(`New Fact: ${fact}\nPrompt: ${loc.prompt} ${loc.answer}\n\n`);
  return out;
}

/** The retrieval query of an edit. */
export function querySentence(prompt: string, target: string): string {
  return `New Fact: ${prompt} ${target}\nPrompt: ${prompt}\n\n`;
}

/** The text IKE puts in front of an input: the demonstrations, then the new fact and "Prompt: ". */
export function ikeContext(demos: string[], prompt: string, target: string): string {
  return `${demos.join("")}New Fact: ${prompt} ${target}\nPrompt: `;
}

/**
 * Mean final hidden state of every prefix of one row, L2-normalised: [n, d] (row t: tokens 0..t).
 * One forward pass (causal: the prefixes' means are cumulative means).
 */
export function prefixMeanEmbeddings(model: CausalLM, row: readonly number[]): Tensor {
  const out = model.forward({
    inputIds: torch.tensor([[...row]], { dtype: "int64" }),
    outputHiddenStates: true,
    lastOnly: true,
  });
  const hs = out.hiddenStates as Tensor[];
  const h = (hs[hs.length - 1] as Tensor).select(0, 0).to("float32"); // [n, d]
  const n = row.length;
  const mean = h.cumsum(0).div(
    torch
      .arange(1, n + 1)
      .to("float32")
      .view(n, 1),
  );
  return mean.div(mean.norm(2, -1, true));
}

/** Normalised mean-pooled embeddings [N, d] of texts (right-padded batches read at each row's end). */
export function sentenceEmbeddings(model: CausalLM, tok: Tokenizer, texts: string[], batch = 32): Tensor {
  const pad = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const parts: Tensor[] = [];
  for (let s = 0; s < texts.length; s += batch) {
    const rows = texts.slice(s, s + batch).map((t) => tok.encode(t, { addSpecialTokens: true }));
    const { ids, width } = rightPadIds(rows, pad);
    const out = model.forward({ inputIds: ids, outputHiddenStates: true, lastOnly: true });
    const hs = out.hiddenStates as Tensor[];
    const h = (hs[hs.length - 1] as Tensor).to("float32"); // [R, W, d]
    const sums = h.cumsum(1).reshape(rows.length * width, -1);
    const last = sums.indexSelect(
      0,
      torch.tensor(
        rows.map((r, i) => i * width + r.length - 1),
        { dtype: "int64" },
      ),
    );
    const mean = last.div(
      torch.tensor(
        rows.map((r) => [r.length]),
        { dtype: "float32" },
      ),
    );
    parts.push(mean.div(mean.norm(2, -1, true)));
  }
  return torch.cat(parts, 0);
}

/** Indices of the k corpus rows most similar to the query (descending; ties in corpus order). */
export function nearest(corpus: Tensor, query: Tensor, k: number): number[] {
  const scores = corpus.matmul(query.view(-1, 1)).view(-1);
  const order = scores.sort(-1, true).indices.toNumbers();
  return order.slice(0, Math.min(k, order.length));
}

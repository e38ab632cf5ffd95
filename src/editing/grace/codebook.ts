/**
 * GRACE's codebook (Hartvigsen et al. 2023; EasyEdit easyeditor/models/grace/GRACE.py, GRACEAdapter):
 * keys (inputs of the wrapped module at an edit's key token), values (outputs that replace the module's
 * output there), a deferral radius epsilon per key and the label (target) each key was written for.
 *
 * In the journal, each GRACE edit is one adaptor entry holding the codebook rows it wrote (a new key, a key
 * whose radius it shrank or grew, a key whose value it retrained), identified by a codebook id. The
 * codebook is the fold of the applied entries in edit order, a later write of an id replacing the earlier
 * one; undoing an edit removes its writes (undoing the last edit restores the codebook exactly as it was).
 *
 * At inference the adaptor looks at every position t of the input (`replace_last`): with q_t the module's
 * input there and k the nearest key (Euclidean distance), the output at t becomes k's value when
 * ||q_t - k|| <= eps_k, and is left untouched, bit for bit, otherwise. (EasyEdit compares one position per
 * forward pass, `key_id`, which stays at the last edit's prompt length after an edit; checking every
 * position is what a cached generation, one token per pass, does with "the last token", and it lets
 * teacher-forced scoring of prompt + target see the edit at the prompt's last token.) `replace_all` and
 * `replace_prompt` decide on the input's last position and replace every position / every earlier one.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { wrapModuleHooks, type CausalLM, type Hook } from "../../models/model.js";
import { registerAdaptorKind, type AdaptorEntry } from "../journal.js";

export const GRACE_KIND = "grace";

export type Replacement = "replace_last" | "replace_all" | "replace_prompt";

/** One codebook row: a view of the row in the entry that wrote it last. */
export interface CodeRow {
  id: number;
  key: Tensor; // [d_in]
  value: Tensor; // [d_out]
  eps: number;
  label: number[];
}

export interface GraceEntryMeta {
  ids: number[];
  labels: number[][];
  epsilons: number[];
  replacement: Replacement;
}

/** The codebook the applied entries define (insertion order of first write). */
export function foldCodebook(entries: AdaptorEntry[]): CodeRow[] {
  const rows = new Map<number, CodeRow>();
  for (const e of entries) {
    const m = e.meta as unknown as GraceEntryMeta;
    const keys = e.tensors.keys as Tensor;
    const values = e.tensors.values as Tensor;
    m.ids.forEach((id, i) => {
      rows.set(id, {
        id,
        key: keys.select(0, i),
        value: values.select(0, i),
        eps: m.epsilons[i] as number,
        label: m.labels[i] as number[],
      });
    });
  }
  return [...rows.values()];
}

/** An entry (the rows one edit wrote), tensors stacked. */
export function makeEntry(module: string, rows: CodeRow[], replacement: Replacement): AdaptorEntry {
  return {
    kind: GRACE_KIND,
    module,
    tensors: {
      keys: torch.stack(rows.map((r) => r.key)),
      values: torch.stack(rows.map((r) => r.value)),
    },
    meta: {
      ids: rows.map((r) => r.id),
      labels: rows.map((r) => r.label),
      epsilons: rows.map((r) => r.eps),
      replacement,
    },
  };
}

/**
 * Euclidean distances [N, n] between queries [N, d] and keys [n, d], in float64: exact differences when
 * small, else ||q||^2 + ||k||^2 - 2 q.k (as torch.cdist does for more than 25 rows).
 */
export function distances(queries: Tensor, keys: Tensor): Tensor {
  const q = queries.to("float64");
  const k = keys.to("float64");
  const N = q.size(0);
  const n = k.size(0);
  if (N * n * q.size(1) <= 1 << 22) return q.unsqueeze(1).sub(k.unsqueeze(0)).norm(2, -1);
  const qq = q.mul(q).sum(-1, true);
  const kk = k.mul(k).sum(-1).unsqueeze(0);
  return qq.add(kk).sub(q.matmul(k.T).mul(2)).clamp(0, null).sqrt();
}

/** The adaptor's hooks for a codebook (used by the journal, see registerAdaptorKind below). */
export function codebookHooks(
  rows: CodeRow[],
  replacement: Replacement,
): { where: "input" | "output"; hook: Hook }[] {
  const epsList = rows.map((r) => r.eps);
  return wrapModuleHooks((inp, y) => {
    if (rows.length === 0) return;
    const keys = torch.stack(rows.map((r) => r.key));
    const values = torch.stack(rows.map((r) => r.value)).to(y.dtype);
    const eps = torch.tensor(epsList, { dtype: "float64" });
    const [B, T] = [y.size(0), y.size(1)];
    if (replacement === "replace_last") {
      const { values: dmin, indices } = distances(inp.reshape(B * T, -1), keys).minDim(1);
      const hit = dmin.le(eps.indexSelect(0, indices)).view(B, T, 1);
      const chosen = values.indexSelect(0, indices).view(B, T, -1);
      return torch.where(hit, chosen, y);
    }
    const last = inp.select(1, T - 1);
    const { values: dmin, indices } = distances(last, keys).minDim(1);
    const hit = dmin.le(eps.indexSelect(0, indices)); // [B]
    const chosen = values.indexSelect(0, indices).unsqueeze(1).expand(B, T, values.size(1));
    let where = hit.view(B, 1, 1).expand(B, T, 1);
    if (replacement === "replace_prompt") {
      const before = torch
        .arange(T)
        .lt(T - 1)
        .view(1, T, 1);
      where = where.logicalAnd(before);
    }
    return torch.where(where, chosen, y);
  });
}

registerAdaptorKind(GRACE_KIND, {
  hooks(_model: CausalLM, _module: string, entries: AdaptorEntry[]) {
    const rows = foldCodebook(entries);
    const last = entries[entries.length - 1]?.meta as unknown as GraceEntryMeta | undefined;
    return codebookHooks(rows, last?.replacement ?? "replace_last");
  },
});

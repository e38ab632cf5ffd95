/**
 * A model whose probabilities a test sets by hand: a bigram table T [V, V] as a CausalLM, so the logits
 * at a position are T[token at that position] whatever came before. It records the position ids and
 * padding it was given.
 */
import { join } from "node:path";
import * as torch from "../../../src/torch/index.js";
import { CausalLM, type Architecture } from "../../../src/models/model.js";
import { loadConfig } from "../../../src/models/load.js";
import { FIXTURES } from "../../helpers.js";

export const GPT2_TINY = join(FIXTURES, "gpt2-tiny");
export const V = 768;

export interface Bigram {
  model: CausalLM;
  /** position ids of each forward call, [B][T] */
  positions: number[][][];
}

const arch: Architecture = {
  modelType: "gpt2",
  parameterShapes: () => new Map([["table", [V, V]]]),
  tiedParameters: () => new Map(),
  moduleNames: () => ({ perLayer: [], global: [] }),
  ignoredCheckpointKeys: [],
  forward(model, inp) {
    const [B, T] = inp.inputIds.shape as [number, number];
    const logits = torch.F.embedding(inp.inputIds, model.param("table"));
    if (inp.positionIds) {
      const flat = inp.positionIds.toNumbers();
      (model as CausalLM & { seen?: number[][][] }).seen?.push(
        Array.from({ length: B }, (_, b) => flat.slice(b * T, (b + 1) * T)),
      );
    }
    return { logits: inp.lastOnly ? logits.narrow(1, T - 1, 1) : logits };
  },
};

/** rows: token id -> logits row (length V); other rows are zero. */
export function bigram(rows: Map<number, number[]> = new Map()): Bigram {
  const cfg = { ...loadConfig(GPT2_TINY), vocabSize: V };
  const data = new Float32Array(V * V);
  for (const [a, row] of rows) data.set(row, a * V);
  const table = torch.tensor(data, { shape: [V, V] }).keep();
  const model = new CausalLM(cfg, arch, new Map([["table", table]]));
  const seen: number[][][] = [];
  (model as CausalLM & { seen?: number[][][] }).seen = seen;
  return { model, positions: seen };
}

/** A row that makes `next` the arg-max with the given logit, everything else 0. */
export function peak(next: number, logit = 10): number[] {
  const r = new Array<number>(V).fill(0);
  r[next] = logit;
  return r;
}

/** log softmax of a row, in float64 (the oracle). */
export function logSoftmax(row: number[]): number[] {
  const m = Math.max(...row);
  const z = Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0)) + m;
  return row.map((x) => x - z);
}

/**
 * Batches of packed sequences for next-token training.
 *
 * Each epoch visits the documents in a seeded order and packs them, each followed by EOS, into
 * sequences of seqLen + 1 tokens. A sequence always starts at the start of a document (so the model
 * sees text at position 0, as prompts are at evaluation); when the next document does not fit, the
 * next `lookahead` documents are tried (first fit), and what is left is padding with label -100.
 * Documents longer than a sequence are cut into pieces.
 *
 * Optional loss masks (supervised fine-tuning on chat transcripts): with `masks`, a token whose mask is
 * false is read but never predicted (its label is -100), so only the assistant's turns are learned; the
 * EOS after a document is predicted when the document's last token is. Without masks nothing changes.
 *
 * The batch of a step is a pure function of (documents, seed, step): resuming at step s reads exactly
 * the batches an uninterrupted run would have read.
 */
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Rng } from "../world/rng.js";

export interface PackOptions {
  seqLen: number;
  batchSize: number;
  seed: number;
  eosId: number;
  /** documents looked at beyond the next one to fill a sequence (default 64) */
  lookahead?: number;
}

export const IGNORE_INDEX = -100;

export class PackedBatches {
  private readonly epochs: Int32Array[][] = [];
  private readonly docs: number[][];
  /** per document piece: which tokens are predicted (absent: all) */
  private readonly masks: boolean[][] | null;
  /** per packed sequence of an epoch: which positions are predicted (absent: all non-padding) */
  private readonly epochMasks: (Uint8Array | null)[][] = [];

  constructor(
    docs: readonly number[][],
    readonly opts: PackOptions,
    masks?: readonly boolean[][],
  ) {
    const cap = opts.seqLen + 1;
    if (masks && masks.length !== docs.length)
      throw new Error(`PackedBatches: ${masks.length} masks for ${docs.length} documents`);
    const pieces: number[][] = [];
    const maskPieces: boolean[][] = [];
    docs.forEach((d, k) => {
      if (d.length === 0) return;
      const m = masks?.[k];
      if (m && m.length !== d.length)
        throw new Error(`PackedBatches: document ${k} has ${d.length} tokens but a mask of ${m.length}`);
      // a document and its EOS must fit in one sequence; longer ones are cut
      for (let i = 0; i < d.length; i += cap - 1) {
        pieces.push(d.slice(i, i + cap - 1));
        if (m) maskPieces.push(m.slice(i, i + cap - 1));
      }
    });
    if (pieces.length === 0) throw new Error("PackedBatches: no documents");
    this.docs = pieces;
    this.masks = masks ? maskPieces : null;
  }

  /** Number of documents (after cutting long ones). */
  get numDocuments(): number {
    return this.docs.length;
  }

  /** Non-padding tokens of one epoch (documents plus their EOS). */
  get tokensPerEpoch(): number {
    return this.docs.reduce((s, d) => s + d.length + 1, 0);
  }

  /** The packed sequences of an epoch (each seqLen + 1 tokens, -1 marking padding). */
  epoch(e: number): Int32Array[] {
    while (this.epochs.length <= e) {
      const { seqs, masks } = this.pack(this.epochs.length);
      this.epochs.push(seqs);
      this.epochMasks.push(masks);
    }
    return this.epochs[e] as Int32Array[];
  }

  private pack(e: number): { seqs: Int32Array[]; masks: (Uint8Array | null)[] } {
    const cap = this.opts.seqLen + 1;
    const look = this.opts.lookahead ?? 64;
    const order = new Rng(this.opts.seed).fork(`epoch ${e}`).shuffle(this.docs.map((_, i) => i));
    const seqs: Int32Array[] = [];
    const masks: (Uint8Array | null)[] = [];
    const queue = order;
    let head = 0;
    const taken = new Uint8Array(this.docs.length);
    while (head < queue.length) {
      const seq = new Int32Array(cap).fill(-1);
      const mask = this.masks ? new Uint8Array(cap) : null;
      let len = 0;
      for (let j = head; j < queue.length && j <= head + look; j++) {
        const di = queue[j] as number;
        if (taken[di]) continue;
        const d = this.docs[di] as number[];
        if (len + d.length + 1 > cap) {
          if (len === 0) throw new Error("PackedBatches: internal error (a document does not fit)");
          continue;
        }
        seq.set(d, len);
        seq[len + d.length] = this.opts.eosId;
        if (mask) {
          const m = (this.masks as boolean[][])[di] as boolean[];
          for (let t = 0; t < m.length; t++) mask[len + t] = m[t] ? 1 : 0;
          mask[len + d.length] = m[m.length - 1] ? 1 : 0;
        }
        len += d.length + 1;
        taken[di] = 1;
        if (len >= cap) break;
      }
      while (head < queue.length && taken[queue[head] as number]) head++;
      seqs.push(seq);
      masks.push(mask);
    }
    return { seqs, masks };
  }

  /** Where the g-th sequence of the whole run lies: epoch and index. */
  private locate(g: number): { e: number; i: number } {
    let e = 0;
    let rest = g;
    for (;;) {
      const n = this.epoch(e).length;
      if (rest < n) return { e, i: rest };
      rest -= n;
      e++;
    }
  }

  /** Token ids and labels of a step's batch (as plain arrays). */
  batchArrays(step: number): { inputs: number[][]; labels: number[][] } {
    const { batchSize: B, seqLen: T } = this.opts;
    const inputs: number[][] = [];
    const labels: number[][] = [];
    for (let b = 0; b < B; b++) {
      const { e, i } = this.locate(step * B + b);
      const seq = this.epoch(e)[i] as Int32Array;
      const mask = this.epochMasks[e]?.[i] ?? null;
      const inp: number[] = [];
      const lab: number[] = [];
      for (let t = 0; t < T; t++) {
        const x = seq[t] as number;
        const y = seq[t + 1] as number;
        inp.push(x < 0 ? this.opts.eosId : x);
        lab.push(y < 0 || (mask !== null && mask[t + 1] === 0) ? IGNORE_INDEX : y);
      }
      inputs.push(inp);
      labels.push(lab);
    }
    return { inputs, labels };
  }

  /** A step's batch as int64 tensors [B, T] (in the caller's scope). */
  batch(step: number): { inputIds: Tensor; labels: Tensor } {
    const { inputs, labels } = this.batchArrays(step);
    return {
      inputIds: torch.tensor(inputs, { dtype: "int64" }),
      labels: torch.tensor(labels, { dtype: "int64" }),
    };
  }
}

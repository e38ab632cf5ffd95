/**
 * MELO's two journal adaptors (EasyEdit easyeditor/models/melo/peft_egg/src/peft/tuners/melo.py:
 * GraceLinear.forward, dynamic, Linear.forward).
 *
 *  - "melo" on the grace layer: reads the vector database (./vecdb.ts) with each sequence's key (the
 *    layer's output at position key_id) and publishes the LoRA block of every sequence for this forward
 *    pass (the reference's global LORA_BLOCK_MAPPING); it leaves the layer's output as it is.
 *  - "melo-lora" on each target module: one entry per edit, holding that edit's block: A [in, r_b],
 *    B [r_b, out] (r_b = num_rank_per_block). A sequence mapped to block b gets
 *        y + s * (x A_b) B_b,   s = (sqrt(num_block))^2 * lora_alpha / r = num_block
 *    (the dynamic module scales both selected slices by sqrt(maximum_rank / num_rank_per_block), and
 *    MeloConfig sets lora_alpha = r); a sequence with no block, or a block this module has no entry for,
 *    keeps the module's output bit for bit.
 *
 * The grace layer must run before the target modules in the forward pass (checked when the hparams are
 * read), so every target reads the mapping of the current pass.
 *
 * The key of a sequence is read among its real positions in the forward pass (the attention mask's 1s,
 * ../wise/padding.ts): position key_id of them (-1: the last real token), as the reference reads it on
 * the sequence alone, unpadded (GraceLinear.forward: layer_out[:, min(key_id, T - 1)]; EasyEdit's
 * left-padded evaluation batches put the last real token last). A row with no real position in the pass
 * maps to no block. During generation the reference runs under HF generate() with a KV cache: the prompt
 * pass reads the key at the prompt's last token, and each cached step's forward sees only the new token,
 * so `min(key_id, 0)` reads the key at that token and the block is searched again at every step. This
 * does the same (the decision of a pass is made on its own real tokens; nothing is kept from earlier
 * passes), so a batch of uneven prompts generates, row by row, what each prompt generates alone, and a
 * shared prefix (encoded in its own pass) gets the block of its own last token, as a prompt fed in two
 * chunks would in the reference. Differences from the reference: the mapping is per sequence as there;
 * a batch right-padded without an attention mask cannot be told from longer sequences (its key is read
 * at the padded end); a point whose block was undone maps to no block.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { wrapModuleHooks, type CausalLM, type Hook } from "../../models/model.js";
import { registerAdaptorKind, type AdaptorEntry } from "../journal.js";
import { realPositions } from "../wise/padding.js";
import { foldDb, MELO_DB_KIND, NO_BLOCK, searchBlocks, type Cluster, type MeloDbMeta } from "./vecdb.js";

export const MELO_LORA_KIND = "melo-lora";

export interface MeloLoraMeta {
  block: number;
  grace_layer: string;
  scale: number;
}

/** The block of each sequence of the current forward pass, per model and grace layer. */
interface Mapping {
  blocks: number[];
  tokens: number;
}
const MAPPINGS = new WeakMap<CausalLM, Map<string, Mapping>>();

function publish(model: CausalLM, graceLayer: string, m: Mapping): void {
  let byLayer = MAPPINGS.get(model);
  if (!byLayer) {
    byLayer = new Map();
    MAPPINGS.set(model, byLayer);
  }
  byLayer.set(graceLayer, m);
}

/** The position a key is read at: key_id (clamped to the last) or, negative, counted from the end. */
export function keyPosition(keyId: number, T: number): number {
  const p = keyId < 0 ? T + keyId : Math.min(keyId, T - 1);
  if (p < 0) throw new Error(`MELO: key_id ${keyId} is outside a ${T}-token input`);
  return p;
}

/**
 * The block of each sequence: the database searched with its key, the grace layer's output y [B, T, d]
 * at position key_id of its real positions (`real`, null: all T are real); NO_BLOCK for a row without one.
 */
export function blocksOf(y: Tensor, db: Cluster[], keyId: number, real: number[][] | null): number[] {
  const [B, T] = [y.size(0), y.size(1)];
  if (db.length === 0) return new Array<number>(B).fill(NO_BLOCK);
  if (real === null) return searchBlocks(y.select(1, keyPosition(keyId, T)).detach(), db);
  const rows = real.flatMap((pos, b) => (pos.length > 0 ? [b] : []));
  const blocks = new Array<number>(B).fill(NO_BLOCK);
  if (rows.length === 0) return blocks;
  const keys = torch.stack(
    rows.map((b) => {
      const pos = real[b] as number[];
      return y.select(0, b).select(0, pos[keyPosition(keyId, pos.length)] as number);
    }),
  );
  searchBlocks(keys.detach(), db).forEach((blk, i) => (blocks[rows[i] as number] = blk));
  return blocks;
}

/** The grace layer's hook: publishes each sequence's block. */
export function dbHooks(
  model: CausalLM,
  module: string,
  entries: AdaptorEntry[],
  keyId: number,
): { where: "input" | "output"; hook: Hook }[] {
  return [
    {
      where: "output",
      hook: (y) => {
        const [B, T] = [y.size(0), y.size(1)];
        const db = foldDb(entries); // views of the entries' tensors, freed with the forward pass
        const real = db.length === 0 ? null : realPositions(model, B, T, `MELO ${module}`);
        publish(model, module, { blocks: blocksOf(y, db, keyId, real), tokens: T });
      },
    },
  ];
}

export interface Block {
  A: Tensor; // [in, r_b]
  B: Tensor; // [r_b, out]
  scale: number;
}

/** The LoRA block's change of the output: scale * (x A) B. */
export function blockDelta(x: Tensor, b: Block): Tensor {
  return x.matmul(b.A.to(x.dtype)).matmul(b.B.to(x.dtype)).mul(b.scale);
}

/** A target module's hooks: each sequence gets the block the grace layer mapped it to, if this module has it. */
export function loraHooks(
  model: CausalLM,
  graceLayer: string,
  blocks: Map<number, Block>,
): { where: "input" | "output"; hook: Hook }[] {
  return wrapModuleHooks((inp, y) => {
    const m = MAPPINGS.get(model)?.get(graceLayer);
    const B = y.size(0);
    if (!m || m.blocks.length !== B || m.tokens !== y.size(1)) return;
    let out = y;
    for (const id of new Set(m.blocks)) {
      const blk = blocks.get(id);
      if (id === NO_BLOCK || !blk) continue;
      const rows = torch
        .tensor(
          m.blocks.map((b) => b === id),
          { dtype: "bool", device: y.device },
        )
        .view(B, 1, 1);
      out = torch.where(rows, y.add(blockDelta(inp, blk)), out);
    }
    return out === y ? undefined : out;
  });
}

/** The blocks of a target module's applied entries. */
export function foldBlocks(entries: AdaptorEntry[]): Map<number, Block> {
  const out = new Map<number, Block>();
  for (const e of entries) {
    const m = e.meta as unknown as MeloLoraMeta;
    out.set(m.block, { A: e.tensors.A as Tensor, B: e.tensors.B as Tensor, scale: m.scale });
  }
  return out;
}

registerAdaptorKind(MELO_DB_KIND, {
  hooks(model: CausalLM, module: string, entries: AdaptorEntry[]) {
    const last = entries[entries.length - 1]?.meta as unknown as MeloDbMeta | undefined;
    return dbHooks(model, module, entries, last?.key_id ?? -1);
  },
});

registerAdaptorKind(MELO_LORA_KIND, {
  hooks(model: CausalLM, _module: string, entries: AdaptorEntry[]) {
    const last = entries[entries.length - 1]?.meta as unknown as MeloLoraMeta | undefined;
    return loraHooks(model, last?.grace_layer ?? "", foldBlocks(entries));
  },
});

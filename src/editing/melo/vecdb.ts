/**
 * MELO's vector database (EasyEdit easyeditor/models/melo/peft_egg/src/peft/tuners/melo.py: VecDB,
 * GraceLayer, GraceLinear; the same file in ECNU-ICALK/MELO peft_egg/). Keys are the output of one module
 * (`grace_layer`, e.g. GPT-2 XL's transformer.h.35.mlp.c_fc) at the `key_id` position of the input
 * (-1: the last token). Keys are grouped in clusters: a centre, a radius, the label (target tokens) of the
 * edit that opened it, and its points (key, LoRA block id).
 *
 * Writing an edit's key q with block b (GraceLinear.forward at batch_iter 0):
 *  - empty database: a cluster {centre q, radius init_radius, points [(q, b)]};
 *  - else, with the nearest centre c at distance d:
 *      d > r_c + init_radius  -> a new cluster (radius init_radius);
 *      same label as c        -> (q, b) joins c; centre = mean of its keys, radius = max(largest key
 *                                distance to the centre, init_radius);
 *      another label          -> a new cluster with radius d/2 + 1e-5, c's radius becomes d/2 - 1e-5 and
 *                                c keeps only the points within it (the others are forgotten); a cluster
 *                                left empty keeps one point (its centre, no block).
 * Reading (inference) a query q: the nearest centre c; no block when d > r_c, else the block of the point
 * of c nearest to q.
 *
 * In the journal each MELO edit's entry (kind "melo", on the grace layer) holds the clusters it wrote
 * (opened or changed), with their points; the database is the fold of the applied entries in order, a
 * later write of a cluster id replacing the earlier one, first writes keeping their order.
 *
 * Differences from the reference, each deliberate: labels match when the target token ids are equal
 * (the reference compares the sums of the label ids); distances are computed in float64 (the reference:
 * torch.cdist in the model's dtype, without the matrix-product shortcut, as here).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { AdaptorEntry } from "../journal.js";
import { distances } from "../grace/codebook.js";

export const MELO_DB_KIND = "melo";

/** A point with no LoRA block (the reference's NO_LORA). */
export const NO_BLOCK = -100;

export interface Cluster {
  id: number;
  center: Tensor; // [d]
  radius: number;
  label: number[];
  keys: Tensor; // [n, d]
  blocks: number[]; // per point: a block id or NO_BLOCK
}

export interface MeloDbMeta {
  ids: number[];
  radii: number[];
  labels: number[][];
  /** points per written cluster (the rows of `keys`, in cluster order) */
  counts: number[];
  blocks: number[];
  /** the LoRA block this edit trained */
  block: number;
  key_id: number;
  targets: string[];
  num_block: number;
}

/** The database the applied entries define. */
export function foldDb(entries: AdaptorEntry[]): Cluster[] {
  const rows = new Map<number, Cluster>();
  for (const e of entries) {
    const m = e.meta as unknown as MeloDbMeta;
    const centers = e.tensors.centers as Tensor;
    const keys = e.tensors.keys as Tensor;
    let k = 0;
    m.ids.forEach((id, i) => {
      const n = m.counts[i] as number;
      rows.set(id, {
        id,
        center: centers.select(0, i),
        radius: m.radii[i] as number,
        label: m.labels[i] as number[],
        keys: keys.narrow(0, k, n),
        blocks: m.blocks.slice(k, k + n),
      });
      k += n;
    });
  }
  return [...rows.values()];
}

/** An entry from the clusters one edit wrote. */
export function dbEntry(
  module: string,
  written: Cluster[],
  meta: Omit<MeloDbMeta, "ids" | "radii" | "labels" | "counts" | "blocks">,
): AdaptorEntry {
  return {
    kind: MELO_DB_KIND,
    module,
    tensors: {
      centers: torch.stack(written.map((c) => c.center)),
      keys: torch.cat(written.map((c) => c.keys)),
    },
    meta: {
      ids: written.map((c) => c.id),
      radii: written.map((c) => c.radius),
      labels: written.map((c) => c.label),
      counts: written.map((c) => c.keys.size(0)),
      blocks: written.flatMap((c) => c.blocks),
      ...meta,
    },
  };
}

function sameLabel(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

/** The nearest centre of each query [B, d]: distance and cluster index. */
export function nearestCluster(queries: Tensor, db: Cluster[]): { dist: number[]; index: number[] } {
  const d = distances(queries, torch.stack(db.map((c) => c.center)));
  const { values, indices } = d.minDim(1);
  return { dist: values.toNumbers(), index: indices.toNumbers() };
}

/** VecDB.search_database + search_cluster: the block of each query, or NO_BLOCK. */
export function searchBlocks(queries: Tensor, db: Cluster[]): number[] {
  if (db.length === 0) return new Array<number>(queries.size(0)).fill(NO_BLOCK);
  const { dist, index } = nearestCluster(queries, db);
  return dist.map((d, b) => {
    const c = db[index[b] as number] as Cluster;
    if (d > c.radius) return NO_BLOCK;
    const dk = distances(queries.select(0, b).unsqueeze(0), c.keys).select(0, 0);
    return c.blocks[dk.argmin().item()] as number;
  });
}

export interface DbWrite {
  written: Cluster[];
  action: "first cluster" | "new cluster" | "cluster updated" | "new cluster, radii split";
  forgotten: number;
}

/** One edit's write (key q [d], block b, label), on the database `db` (not modified). */
export function writeKey(
  db: Cluster[],
  q: Tensor,
  block: number,
  label: number[],
  initRadius: number,
): DbWrite {
  const nextId = Math.max(-1, ...db.map((c) => c.id)) + 1;
  const fresh = (radius: number): Cluster => ({
    id: nextId,
    center: q,
    radius,
    label,
    keys: q.unsqueeze(0),
    blocks: [block],
  });
  if (db.length === 0) return { written: [fresh(initRadius)], action: "first cluster", forgotten: 0 };
  const { dist, index } = nearestCluster(q.unsqueeze(0), db);
  const d = dist[0] as number;
  const near = db[index[0] as number] as Cluster;
  if (d > near.radius + initRadius)
    return { written: [fresh(initRadius)], action: "new cluster", forgotten: 0 };
  if (sameLabel(label, near.label)) {
    const keys = torch.cat([near.keys, q.unsqueeze(0)]);
    const center = keys.mean(0);
    const far = distances(keys, center.unsqueeze(0)).max().item();
    return {
      written: [
        { ...near, keys, center, blocks: [...near.blocks, block], radius: Math.max(far, initRadius) },
      ],
      action: "cluster updated",
      forgotten: 0,
    };
  }
  const shrunk = d / 2 - 1e-5;
  const dk = distances(near.keys, near.center.unsqueeze(0)).select(1, 0).toNumbers();
  const keep = dk.map((x) => x <= shrunk);
  const kept = keep.flatMap((k, i) => (k ? [i] : []));
  const forgotten = keep.length - kept.length;
  const keys =
    kept.length > 0
      ? near.keys.indexSelect(0, torch.tensor(kept, { dtype: "int64" }))
      : near.center.unsqueeze(0);
  const blocks = kept.length > 0 ? kept.map((i) => near.blocks[i] as number) : [NO_BLOCK];
  return {
    written: [{ ...near, radius: shrunk, keys, blocks }, fresh(d / 2 + 1e-5)],
    action: "new cluster, radii split",
    forgotten,
  };
}

/**
 * MALMEN's shift network (ChenmienTan/malmen@1df295dc nets.py; EasyEdit trainer/algs/malmen/nets.py, the
 * same code), one per edited weight shape (in, out), shared by the weights of that shape:
 *
 *  - RunningMeanStd over z = [key, value gradient] (in + out): for a batch of b rows,
 *    n' = n + b, d = mean_b - mean, mean += b d / n', var += b var_b + n b d^2 / n' (var_b the unbiased
 *    batch variance, as torch's x.var(0)), std = sqrt(var / (n' - 1 + eps)); z is normalised as
 *    (z - mean) / (std + eps), eps = float32 machine epsilon;
 *  - n_blocks residual blocks: x = clamp(z A B + bias, 0); x = scale[m] x + shift[m]; z = x + z, with
 *    A [size, rank] ~ N(0, 1), B [rank, size] = 0 (identity at start), scale = 1, shift = 0 per weight m;
 *  - output split into pseudo keys k~ [in] and pseudo value gradients v~ [out];
 *  - per weight: a learned learning rate lr[m] (starts at `lr`) and log-regulariser lamda[m] (starts 0).
 *
 * Tensor names are the reference's state-dict names (`(in, out).blocks.0.A`, `(in, out).normalizer.mean`,
 * `(in, out).lr.weight`, ...). Deliberate differences: a batch of one row adds no variance term (torch's
 * x.var(0) of one row is NaN, which the reference would propagate); initial values come from a
 * generator seeded with `seed`.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { loadSafetensors, saveSafetensors } from "../../torch/io.js";
import { readSafetensorsHeader } from "../../torch/formats/safetensors.js";
import type { CausalLM } from "../../models/model.js";
import { editedWeights, type EditedWeight } from "../mend/hparams.js";
import type { MalmenHparams } from "./hparams.js";

const EPS = 1.1920928955078125e-7; // torch.finfo(torch.float32).eps

export interface MalmenBlock {
  A: Tensor;
  B: Tensor;
  bias: Tensor;
  scale: Tensor;
  shift: Tensor;
}

export interface MalmenNet {
  /** "(in, out)" */
  name: string;
  keySize: number;
  valueSize: number;
  normalizer: { n: Tensor; mean: Tensor; var: Tensor; std: Tensor };
  blocks: MalmenBlock[];
  /** [n_modules, 1] */
  lr: Tensor;
  /** [n_modules, 1] */
  lamda: Tensor;
}

export interface MalmenSlot {
  weight: EditedWeight;
  net: MalmenNet;
  /** the weight's index among the weights of its shape (name2idx) */
  index: number;
}

export const MALMEN_NET_KEYS = ["inner_params", "rank", "n_blocks"] as const;

export interface MalmenEditor {
  config: Pick<MalmenHparams, (typeof MALMEN_NET_KEYS)[number]>;
  nets: MalmenNet[];
  slots: MalmenSlot[];
  dtype: torch.DType;
}

/** A new shift network per weight shape, built in the order the reference's Counter sees shapes. */
export function createMalmenEditor(
  model: CausalLM,
  h: MalmenHparams,
  opts: { dtype?: torch.DType; where?: string } = {},
): MalmenEditor {
  const dtype = opts.dtype ?? "float32";
  const weights = editedWeights(model, h.inner_params, opts.where ?? "MALMEN");
  const gen = new torch.Generator(h.seed);
  const counts = new Map<string, number>();
  const key = (w: EditedWeight) => `(${w.fin}, ${w.fout})`;
  const slotsIdx: number[] = [];
  for (const w of weights) {
    const c = counts.get(key(w)) ?? 0;
    slotsIdx.push(c);
    counts.set(key(w), c + 1);
  }
  const nets = new Map<string, MalmenNet>();
  for (const w of weights) {
    const name = key(w);
    if (nets.has(name)) continue;
    const size = w.fin + w.fout;
    const nModules = counts.get(name) as number;
    const blocks: MalmenBlock[] = [];
    for (let b = 0; b < h.n_blocks; b++)
      blocks.push({
        A: torch.randn([size, h.rank], { generator: gen }).to(dtype),
        B: torch.zeros([h.rank, size], { dtype }),
        bias: torch.zeros([size], { dtype }),
        scale: torch.ones([nModules, size], { dtype }),
        shift: torch.zeros([nModules, size], { dtype }),
      });
    nets.set(name, {
      name,
      keySize: w.fin,
      valueSize: w.fout,
      normalizer: {
        n: torch.zeros([1], { dtype }),
        mean: torch.zeros([size], { dtype }),
        var: torch.zeros([size], { dtype }),
        std: torch.zeros([size], { dtype }),
      },
      blocks,
      lr: torch.full([nModules, 1], h.lr, { dtype }),
      lamda: torch.zeros([nModules, 1], { dtype }),
    });
  }
  const ed: MalmenEditor = {
    config: { inner_params: [...h.inner_params], rank: h.rank, n_blocks: h.n_blocks },
    nets: [...nets.values()],
    slots: weights.map((w, i) => ({
      weight: w,
      net: nets.get(key(w)) as MalmenNet,
      index: slotsIdx[i] as number,
    })),
    dtype,
  };
  for (const [, t] of malmenNamedTensors(ed)) t.keep();
  for (const [, t] of malmenParameters(ed)) t.requiresGrad_(true);
  return ed;
}

export function malmenParameters(ed: MalmenEditor): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  for (const net of ed.nets) {
    net.blocks.forEach((b, i) => {
      const p = `${net.name}.blocks.${i}`;
      out.push(
        [`${p}.A`, b.A],
        [`${p}.B`, b.B],
        [`${p}.bias`, b.bias],
        [`${p}.scale.weight`, b.scale],
        [`${p}.shift.weight`, b.shift],
      );
    });
    out.push([`${net.name}.lr.weight`, net.lr], [`${net.name}.lamda.weight`, net.lamda]);
  }
  return out;
}

export function malmenBuffers(ed: MalmenEditor): [string, Tensor][] {
  return ed.nets.flatMap((net) =>
    (["n", "mean", "var", "std"] as const).map((k): [string, Tensor] => [
      `${net.name}.normalizer.${k}`,
      net.normalizer[k],
    ]),
  );
}

export function malmenNamedTensors(ed: MalmenEditor): [string, Tensor][] {
  return [...malmenParameters(ed), ...malmenBuffers(ed)];
}

export function freeMalmenEditor(ed: MalmenEditor): void {
  for (const [, t] of malmenNamedTensors(ed)) {
    t.grad = null;
    t.free();
  }
}

/** RunningMeanStd.update over rows z [b, in + out]. */
export function updateNormalizer(net: MalmenNet, z: Tensor): void {
  const b = z.size(0);
  if (b === 0) return;
  torch.noGrad(() =>
    torch.scope(() => {
      const s = net.normalizer;
      const n = s.n.item();
      const total = n + b;
      const d = z.mean(0).sub(s.mean);
      s.mean.add_(d.mul(b / total));
      const vb = b > 1 ? z.var(0).mul(b) : torch.zerosLike(s.var);
      s.var.add_(vb.add(d.square().mul((n * b) / total)));
      s.std.copy_(s.var.div(total - 1 + EPS).sqrt());
      s.n.fill_(total);
    }),
  );
}

/** The network on keys [N, in] and value gradients [N, out] of weight slot `m`: (k~, v~). */
export function malmenForward(
  net: MalmenNet,
  keys: Tensor,
  valuesGrad: Tensor,
  m: number,
): { k: Tensor; v: Tensor } {
  const s = net.normalizer;
  let z = torch.cat([keys, valuesGrad], -1).sub(s.mean).div(s.std.add(EPS));
  for (const b of net.blocks) {
    let x = z.matmul(b.A).matmul(b.B).add(b.bias).clamp(0);
    x = x.mul(b.scale.select(0, m)).add(b.shift.select(0, m));
    z = x.add(z);
  }
  return { k: z.narrow(-1, 0, net.keySize), v: z.narrow(-1, net.keySize, net.valueSize) };
}

export const MALMEN_FORMAT = "editeval-malmen/1";

export function saveMalmenEditor(path: string, ed: MalmenEditor, extra: Record<string, string> = {}): void {
  saveSafetensors(
    path,
    malmenNamedTensors(ed).map(([n, t]) => [n, t.detach()]),
    { format: MALMEN_FORMAT, config: JSON.stringify(ed.config), ...extra },
  );
}

export function loadMalmenEditor(path: string, model: CausalLM, h: MalmenHparams): MalmenEditor {
  let meta: Record<string, string>;
  try {
    meta = readSafetensorsHeader(path).metadata;
  } catch (e) {
    throw new Error(
      `MALMEN archive ${path}: cannot read it (${(e as Error).message}); train one with 'editeval train-mend --method malmen'`,
    );
  }
  if (meta.config) {
    const saved = JSON.parse(meta.config) as Record<string, unknown>;
    const mine: Record<string, unknown> = {
      inner_params: h.inner_params,
      rank: h.rank,
      n_blocks: h.n_blocks,
    };
    const diff = MALMEN_NET_KEYS.filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(mine[k]));
    if (diff.length)
      throw new Error(
        `MALMEN archive ${path} was trained with different ${diff.join(", ")} (` +
          diff
            .map((k) => `${k}: ${JSON.stringify(saved[k])} there, ${JSON.stringify(mine[k])} here`)
            .join("; ") +
          "); use the hparams it was trained with",
      );
  }
  const ed = createMalmenEditor(model, h);
  const file = loadSafetensors(path);
  try {
    torch.noGrad(() => {
      for (const [n, t] of malmenNamedTensors(ed)) {
        const src = file.get(n);
        if (!src) throw new Error(`MALMEN archive ${path}: no tensor '${n}'`);
        if (src.shape.join(",") !== t.shape.join(","))
          throw new Error(
            `MALMEN archive ${path}: '${n}' is [${src.shape.join(", ")}], this model's editor needs [${t.shape.join(", ")}]`,
          );
        t.copy_(src);
      }
    });
  } catch (e) {
    freeMalmenEditor(ed);
    throw e;
  } finally {
    for (const t of file.values()) t.free();
  }
  return ed;
}

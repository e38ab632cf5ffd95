/**
 * MEND's editor network (eric-mitchell/mend@e04fdb9c nn.py and algs/mend.py; EasyEdit
 * easyeditor/trainer/algs/MEND.py and local_nn.py, the same code):
 *
 *  - LRLinear: y = clamp(u (v z) + bias, 0) (+ z for init "id"), u [out, m] zeros and v [m, in] ~ N(0, 1)
 *    for init "id" (so the layer starts as the identity), m = min(rank, in); with `n_modes` (shared
 *    networks) the pre-activation is scaled and shifted per edited weight (mode_scale = 1, mode_shift = 0
 *    at start) before the clamp. The clamp is applied whatever `act` says, and also after the last layer.
 *  - IDMLP: n_hidden + 1 LRLinear layers of the input's width.
 *  - GradientTransform: per edited weight shape (shared) or per weight, running statistics of the layer
 *    input u and output gradient v (mean and sum of squared deviations, Welford's update over every token
 *    with a non-zero u and v while training), inputs normalised as (u - mean) / (std + 1e-7) with
 *    std = sqrt(s / (k - 1)); then one IDMLP over [u, v] (combine), or one per side (one_sided: only the
 *    smaller side is transformed, the larger passes through; x_only / delta_only: only that side).
 *
 * Tensor names are the reference's state-dict names (`mend.(in, out).mlp.layers.0.u`, `edit_lrs`, ...),
 * so a converted EasyEdit archive loads as it is (see docs/reference/mend.md for the sign of edit_lrs).
 *
 * Deliberate differences: the running statistics of a batch of tokens are merged in one step (Chan et
 * al.'s parallel form of Welford's update; the same numbers up to rounding); while only one token has
 * been seen the standard deviation is taken as 1 (the reference raises "Can't perform normalization
 * with only 1 samples", which stops training whenever the first edit has one token with a gradient,
 * e.g. a one-token target at the last layer); initial values are drawn from a generator seeded with
 * `seed` (not the global torch generator).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { loadSafetensors, saveSafetensors } from "../../torch/io.js";
import { readSafetensorsHeader } from "../../torch/formats/safetensors.js";
import type { CausalLM } from "../../models/model.js";
import { editedWeights, type EditedWeight, type MendHparams } from "./hparams.js";

/** The hyper-parameters that fix the editor's architecture (stored with a saved editor). */
export const MEND_NET_KEYS = [
  "inner_params",
  "n_hidden",
  "init",
  "norm",
  "combine",
  "one_sided",
  "x_only",
  "delta_only",
  "rank",
  "shared",
] as const;

export interface LRLinear {
  u: Tensor;
  v: Tensor;
  bias: Tensor;
  modeScale: Tensor | null;
  modeShift: Tensor | null;
}

export interface IDMLP {
  layers: LRLinear[];
  /** init "id": the layer adds its input (identity at start) */
  residual: boolean;
}

/** Running statistics of inputs (u) and output gradients (v), the reference's buffers. */
export interface NormStats {
  u_mean: Tensor;
  v_mean: Tensor;
  u_std: Tensor;
  v_std: Tensor;
  u_s: Tensor;
  v_s: Tensor;
  /** tokens seen ([1]; NaN before the first training edit) */
  k: Tensor;
}

export interface GradientTransform {
  /** "(in, out)" when shared, else the weight's name with "#" for "." */
  name: string;
  xDim: number;
  deltaDim: number;
  /** combine: one network over [u, v] */
  mlp: IDMLP | null;
  /** separate networks (null: the identity) */
  mlp1: IDMLP | null;
  mlp2: IDMLP | null;
  stats: NormStats;
}

export interface MendSlot {
  weight: EditedWeight;
  transform: GradientTransform;
  /** the weight's mode (index among the weights of its shape) when shared */
  mode: number | null;
}

export interface MendEditor {
  /** the architecture hyper-parameters */
  config: Pick<MendHparams, (typeof MEND_NET_KEYS)[number]>;
  transforms: GradientTransform[];
  /** one per inner_params entry, in order */
  slots: MendSlot[];
  /** learned edit learning rates, one per edited weight ([n]) */
  editLrs: Tensor;
  dtype: torch.DType;
}

function netConfig(h: MendHparams): MendEditor["config"] {
  const c: Record<string, unknown> = {};
  for (const k of MEND_NET_KEYS) c[k] = structuredClone(h[k]);
  return c as MendEditor["config"];
}

function xavierUniform(shape: [number, number], gain: number, gen: torch.Generator, dtype: torch.DType) {
  // torch.nn.init.xavier_uniform_: fan_in = size(1), fan_out = size(0)
  const bound = gain * Math.sqrt(6 / (shape[0] + shape[1]));
  return torch
    .rand(shape, { generator: gen })
    .mul(2 * bound)
    .sub(bound)
    .to(dtype);
}

function newLRLinear(
  width: number,
  rank: number,
  init: string,
  nModes: number | null,
  gen: torch.Generator,
  dtype: torch.DType,
): LRLinear {
  const mid = Math.min(rank, width);
  let u: Tensor;
  let v: Tensor;
  if (init === "id") {
    u = torch.zeros([width, mid], { dtype });
    v = torch.randn([mid, width], { generator: gen }).to(dtype);
  } else {
    u = xavierUniform([width, mid], Math.SQRT2, gen, dtype);
    v = xavierUniform([mid, width], 1, gen, dtype);
  }
  return {
    u,
    v,
    bias: torch.zeros([width], { dtype }),
    modeScale: nModes === null ? null : torch.ones([nModes, width], { dtype }),
    modeShift: nModes === null ? null : torch.zeros([nModes, width], { dtype }),
  };
}

function newIDMLP(
  width: number,
  h: MendEditor["config"],
  nModes: number | null,
  gen: torch.Generator,
  dtype: torch.DType,
): IDMLP {
  const layers: LRLinear[] = [];
  for (let i = 0; i <= h.n_hidden; i++) layers.push(newLRLinear(width, h.rank, h.init, nModes, gen, dtype));
  return { layers, residual: h.init === "id" };
}

function newStats(xDim: number, deltaDim: number, dtype: torch.DType): NormStats {
  const nan = (n: number) => torch.full([n], NaN, { dtype });
  return {
    u_mean: nan(xDim),
    v_mean: nan(deltaDim),
    u_std: nan(xDim),
    v_std: nan(deltaDim),
    u_s: nan(xDim),
    v_s: nan(deltaDim),
    k: torch.full([1], NaN, { dtype }),
  };
}

/**
 * A new (untrained) editor for the weights `h.inner_params` names, built as MEND's constructor builds it:
 * networks in order of first appearance of each shape (shared) or weight, edit_lrs = edit_lr each.
 */
export function createMendEditor(
  model: CausalLM,
  h: MendHparams,
  opts: { dtype?: torch.DType; where?: string } = {},
): MendEditor {
  const dtype = opts.dtype ?? "float32";
  const weights = editedWeights(model, h.inner_params, opts.where ?? "MEND");
  const cfg = netConfig(h);
  const gen = new torch.Generator(h.seed);
  const transforms: GradientTransform[] = [];
  const slots: MendSlot[] = [];
  const byName = new Map<string, GradientTransform>();
  const shapeKey = (w: EditedWeight) => `(${w.fin}, ${w.fout})`;
  const counts = new Map<string, number>();
  for (const w of weights) counts.set(shapeKey(w), (counts.get(shapeKey(w)) ?? 0) + 1);
  const seenOfShape = new Map<string, number>();
  for (const w of weights) {
    const name = cfg.shared ? shapeKey(w) : w.param.replace(/\./g, "#");
    let gt = byName.get(name);
    if (!gt) {
      const nModes = cfg.shared ? (counts.get(name) as number) : null;
      const built: GradientTransform = {
        name,
        xDim: w.fin,
        deltaDim: w.fout,
        mlp: null,
        mlp1: null,
        mlp2: null,
        stats: newStats(w.fin, w.fout, dtype),
      };
      if (cfg.combine) built.mlp = newIDMLP(w.fin + w.fout, cfg, nModes, gen, dtype);
      else if (cfg.one_sided) {
        // the reference transforms the smaller side and passes the larger one through
        if (w.fin > w.fout) built.mlp2 = newIDMLP(w.fout, cfg, nModes, gen, dtype);
        else built.mlp1 = newIDMLP(w.fin, cfg, nModes, gen, dtype);
      } else if (cfg.x_only) built.mlp1 = newIDMLP(w.fin, cfg, nModes, gen, dtype);
      else if (cfg.delta_only) built.mlp2 = newIDMLP(w.fout, cfg, nModes, gen, dtype);
      else {
        built.mlp1 = newIDMLP(w.fin, cfg, nModes, gen, dtype);
        built.mlp2 = newIDMLP(w.fout, cfg, nModes, gen, dtype);
      }
      gt = built;
      byName.set(name, gt);
      transforms.push(gt);
    }
    const mode = cfg.shared ? (seenOfShape.get(name) ?? 0) : null;
    if (cfg.shared) seenOfShape.set(name, (mode as number) + 1);
    slots.push({ weight: w, transform: gt, mode });
  }
  const editLrs = torch.full([weights.length], h.edit_lr, { dtype });
  const ed: MendEditor = { config: cfg, transforms, slots, editLrs, dtype };
  for (const [, t] of mendNamedTensors(ed)) t.keep();
  for (const [, t] of mendParameters(ed)) t.requiresGrad_(true);
  return ed;
}

function mlpTensors(prefix: string, m: IDMLP | null): [string, Tensor][] {
  if (!m) return [];
  const out: [string, Tensor][] = [];
  m.layers.forEach((l, i) => {
    const p = `${prefix}.layers.${i}`;
    out.push([`${p}.u`, l.u], [`${p}.v`, l.v], [`${p}.bias`, l.bias]);
    if (l.modeScale && l.modeShift)
      out.push([`${p}.mode_shift.weight`, l.modeShift], [`${p}.mode_scale.weight`, l.modeScale]);
  });
  return out;
}

/** The trainable tensors by state-dict name: every network's parameters, then `edit_lrs`. */
export function mendParameters(ed: MendEditor): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  for (const gt of ed.transforms) {
    out.push(...mlpTensors(`mend.${gt.name}.mlp`, gt.mlp));
    out.push(...mlpTensors(`mend.${gt.name}.mlp1`, gt.mlp1));
    out.push(...mlpTensors(`mend.${gt.name}.mlp2`, gt.mlp2));
  }
  out.push(["edit_lrs", ed.editLrs]);
  return out;
}

/** The running statistics by state-dict name. */
export function mendBuffers(ed: MendEditor): [string, Tensor][] {
  return ed.transforms.flatMap((gt) =>
    (Object.keys(gt.stats) as (keyof NormStats)[]).map((k): [string, Tensor] => [
      `mend.${gt.name}.${k}`,
      gt.stats[k],
    ]),
  );
}

/** Every tensor of the editor by name (parameters and statistics). */
export function mendNamedTensors(ed: MendEditor): [string, Tensor][] {
  return [...mendParameters(ed), ...mendBuffers(ed)];
}

export function freeMendEditor(ed: MendEditor): void {
  for (const [, t] of mendNamedTensors(ed)) {
    t.grad = null;
    t.free();
  }
}

// ------------------------------------------------------------------------------------------------
// Forward
// ------------------------------------------------------------------------------------------------

/** LRLinear: clamp((z v^T u^T + bias) * scale[mode] + shift[mode], 0) (+ z). */
export function lrLinear(l: LRLinear, z: Tensor, mode: number | null, residual: boolean): Tensor {
  let pre = z.matmul(l.v.T).matmul(l.u.T).add(l.bias);
  if (mode !== null) {
    if (!l.modeScale || !l.modeShift) throw new Error("MEND: a mode was given to a network without modes");
    pre = pre.mul(l.modeScale.select(0, mode)).add(l.modeShift.select(0, mode));
  }
  // clamp rather than relu, as the reference: the gradient at exactly 0 is not 0
  const act = pre.clamp(0);
  return residual ? act.add(z) : act;
}

export function idmlp(m: IDMLP, z: Tensor, mode: number | null): Tensor {
  let x = z;
  for (const l of m.layers) x = lrLinear(l, x, mode, m.residual);
  return x;
}

/** Whether the statistics have seen a token (k is NaN before). */
export function statsInitialised(s: NormStats): boolean {
  return !Number.isNaN(s.k.item());
}

/**
 * Welford's running mean and sum of squared deviations, over the rows of u [n, in] and v [n, out] at
 * once (Chan et al.'s merge of a batch into the running values), then std = sqrt(s / (k - 1)).
 */
export function updateNormStats(s: NormStats, u: Tensor, v: Tensor): void {
  const n = u.size(0);
  if (n === 0) return;
  torch.noGrad(() =>
    torch.scope(() => {
      const merge = (mean: Tensor, ss: Tensor, x: Tensor, k: number) => {
        const mb = x.mean(0);
        const m2 = x.sub(mb).square().sum(0);
        if (k === 0) {
          mean.copy_(mb);
          ss.copy_(m2);
          return;
        }
        const d = mb.sub(mean);
        const total = k + n;
        mean.add_(d.mul(n / total));
        ss.add_(m2.add(d.square().mul((k * n) / total)));
      };
      const k = statsInitialised(s) ? s.k.item() : 0;
      merge(s.u_mean, s.u_s, u, k);
      merge(s.v_mean, s.v_s, v, k);
      s.k.fill_(k + n);
      if (k + n < 2) {
        // one token so far: no spread to estimate (the reference raises here); scale by 1 until a second
        s.u_std.fill_(1);
        s.v_std.fill_(1);
        return;
      }
      s.u_std.copy_(s.u_s.div(k + n - 1).sqrt());
      s.v_std.copy_(s.v_s.div(k + n - 1).sqrt());
    }),
  );
}

/**
 * The gradient transform of one weight: the inputs u [n, in] and output gradients v [n, out] of its
 * tokens (already restricted to tokens where both are non-zero), statistics updated first when training,
 * normalised when `norm`, through the network(s). Returns the pseudo-factors (u~, v~).
 */
export function transformFactors(
  ed: MendEditor,
  slot: MendSlot,
  u: Tensor,
  v: Tensor,
  training: boolean,
): { u: Tensor; v: Tensor } {
  const gt = slot.transform;
  const uu = u.to(ed.dtype);
  const vv = v.to(ed.dtype);
  if (training) updateNormStats(gt.stats, uu, vv);
  let ui = uu;
  let vi = vv;
  if (ed.config.norm) {
    if (!statsInitialised(gt.stats))
      throw new Error(
        `MEND: the editor's statistics for ${gt.name} are empty (an untrained editor); train it first (editeval train-mend)`,
      );
    const s = gt.stats;
    ui = uu.sub(s.u_mean).div(s.u_std.add(1e-7));
    vi = vv.sub(s.v_mean).div(s.v_std.add(1e-7));
  }
  if (gt.mlp) {
    const out = idmlp(gt.mlp, torch.cat([ui, vi], -1), slot.mode);
    return { u: out.narrow(-1, 0, gt.xDim), v: out.narrow(-1, gt.xDim, gt.deltaDim) };
  }
  return {
    u: gt.mlp1 ? idmlp(gt.mlp1, ui, slot.mode) : ui,
    v: gt.mlp2 ? idmlp(gt.mlp2, vi, slot.mode) : vi,
  };
}

// ------------------------------------------------------------------------------------------------
// Files
// ------------------------------------------------------------------------------------------------
export const MEND_FORMAT = "editeval-mend/1";

/** Writes the editor (every tensor, float32 or its dtype) with its architecture in the metadata. */
export function saveMendEditor(path: string, ed: MendEditor, extra: Record<string, string> = {}): void {
  saveSafetensors(
    path,
    mendNamedTensors(ed).map(([n, t]) => [n, t.detach()]),
    { format: MEND_FORMAT, config: JSON.stringify(ed.config), ...extra },
  );
}

/**
 * Loads an editor written by saveMendEditor (or a converted EasyEdit archive with the same tensor names)
 * for the weights `h.inner_params` names. Errors name the file and what does not match.
 */
export function loadMendEditor(path: string, model: CausalLM, h: MendHparams): MendEditor {
  let meta: Record<string, string> | undefined;
  try {
    meta = readSafetensorsHeader(path).metadata;
  } catch (e) {
    throw new Error(
      `MEND archive ${path}: cannot read it (${(e as Error).message}); train an editor with 'editeval train-mend' and name its mend.safetensors in 'archive'`,
    );
  }
  if (meta?.config) {
    const saved = JSON.parse(meta.config) as Record<string, unknown>;
    const mine = netConfig(h) as Record<string, unknown>;
    const diff = MEND_NET_KEYS.filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(mine[k]));
    if (diff.length)
      throw new Error(
        `MEND archive ${path} was trained with different ${diff.join(", ")} (` +
          diff
            .map((k) => `${k}: ${JSON.stringify(saved[k])} there, ${JSON.stringify(mine[k])} here`)
            .join("; ") +
          `); use the hparams it was trained with`,
      );
  }
  const ed = createMendEditor(model, h);
  const file = loadSafetensors(path);
  try {
    torch.noGrad(() => {
      for (const [n, t] of mendNamedTensors(ed)) {
        const src = file.get(n);
        if (!src)
          throw new Error(
            `MEND archive ${path}: no tensor '${n}' (it holds ${[...file.keys()].slice(0, 8).join(", ")}${file.size > 8 ? ", ..." : ""})`,
          );
        if (src.shape.join(",") !== t.shape.join(","))
          throw new Error(
            `MEND archive ${path}: '${n}' is [${src.shape.join(", ")}], this model's editor needs [${t.shape.join(", ")}]`,
          );
        t.copy_(src);
      }
    });
  } catch (e) {
    freeMendEditor(ed);
    throw e;
  } finally {
    for (const t of file.values()) t.free();
  }
  return ed;
}

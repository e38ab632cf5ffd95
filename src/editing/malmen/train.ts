/**
 * Training MALMEN's shift network (ChenmienTan/malmen editor/base.py train; EasyEdit
 * trainer/algs/MALMEN.py train). Each iteration takes `n_edits` records, in forward chunks of
 * `batch_size`:
 *
 *  1. cache: keys and value gradients of every chunk's edit (prompt + target), the normaliser updated;
 *  2. the shifts S of every edited weight from all n_edits edits at once (./shift.ts), without gradients;
 *  3. per chunk, with the weights shifted (hooks computing y + x S, S a leaf): the cross-entropy of the
 *     target after the rephrase, plus loc_coef times the KL(pre || post) over a locality prompt's answer
 *     positions; G = dL/dS summed over chunks (the reference's loss.backward() into weight.grad);
 *  4. truncated back-propagation of G into the network (`shiftMetaGradients`), the global gradient norm
 *     clipped to max_grad_norm, Adam(meta_lr) steps the network.
 *
 * Deliberate differences: the rephrase and locality losses of a chunk share one forward pass (their
 * gradients add, as the reference's two backward calls do); the normaliser is updated only while
 * training (the reference also updates it on validation and at edit time, which makes an edit change
 * the editor); no early stopping (the archive is the last iteration's network).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import type { TargetTokens } from "../lora/loss.js";
import { labelLogits, localityKl, promptTarget, targetNllOf, tokenBatch } from "../mend/factors.js";
import { sampleBatch, validationBatches, type MetaData, type MetaSample } from "../mend/data.js";
import { ResumableAdam, clipGradNorm, type LoopResult, type MetaLearner } from "../mend/loop.js";
import { trainEditorNetwork, type EditorTrainOptions } from "../mend/train.js";
import type { MalmenHparams } from "./hparams.js";
import {
  createMalmenEditor,
  freeMalmenEditor,
  malmenNamedTensors,
  malmenParameters,
  saveMalmenEditor,
  type MalmenEditor,
} from "./nets.js";
import {
  keysAndValueGrads,
  lamdaOf,
  shiftMetaGradients,
  shiftWeightHooks,
  solveShift,
  valueDiffs,
} from "./shift.js";

/** Per-row fraction of labelled positions predicted exactly (the reference's succ_ratios). */
export function successRatios(logits: Tensor, labels: Tensor): number[] {
  return torch.noGrad(() =>
    torch.scope(() => {
      const m = labels.ne(-100);
      const hit = logits.argmax(-1).eq(labels).logicalAnd(m).sum(1).toNumbers();
      const n = m.sum(1).toNumbers();
      return hit.map((h, i) => h / Math.max(1, n[i] as number));
    }),
  );
}

function chunks<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** Keys and value gradients of all edits (chunks of batch_size), concatenated per slot. */
export function cacheEdits(
  model: CausalLM,
  tok: Tokenizer,
  ed: MalmenEditor,
  items: TargetTokens[],
  h: Pick<MalmenHparams, "batch_size" | "token">,
  training: boolean,
): { keys: Tensor[]; valuesGrad: Tensor[] } {
  const ks: Tensor[][] = ed.slots.map(() => []);
  const vs: Tensor[][] = ed.slots.map(() => []);
  for (const c of chunks(items, h.batch_size)) {
    const kv = keysAndValueGrads(model, tok, ed, c, h.token, training);
    kv.keys.forEach((k, i) => (ks[i] as Tensor[]).push(k));
    kv.valuesGrad.forEach((v, i) => (vs[i] as Tensor[]).push(v));
  }
  return {
    keys: ks.map((l) => (l.length === 1 ? (l[0] as Tensor) : torch.cat(l, 0))),
    valuesGrad: vs.map((l) => (l.length === 1 ? (l[0] as Tensor) : torch.cat(l, 0))),
  };
}

/** The shifts S (no gradients) of every slot for cached keys. */
export function predictShifts(
  ed: MalmenEditor,
  keys: Tensor[],
  valuesGrad: Tensor[],
  chunk: number,
): Tensor[] {
  return torch.noGrad(() =>
    ed.slots.map((s, i) => {
      const d = valueDiffs(s, keys[i] as Tensor, valuesGrad[i] as Tensor, chunk);
      return solveShift(keys[i] as Tensor, d, lamdaOf(s));
    }),
  );
}

/**
 * Post-edit losses of one chunk with the weights shifted by S (leaves): rephrase CE + loc_coef * KL,
 * their gradient with respect to each S, and the success ratios.
 */
export function chunkLosses(
  model: CausalLM,
  tok: Tokenizer,
  ed: MalmenEditor,
  samples: MetaSample[],
  shifts: Tensor[],
  locCoef: number,
  withGrad: boolean,
): { gen: number; loc: number; grads: (Tensor | null)[]; es?: number[]; gs: number[]; ls: number[] } {
  const b = samples.length;
  const items = [
    ...samples.map((s) => promptTarget(tok, s.rephrase, s.record.target)),
    ...samples.map((s) => promptTarget(tok, s.loc.prompt, s.loc.answer)),
    ...(withGrad ? [] : samples.map((s) => promptTarget(tok, s.record.prompt, s.record.target))),
  ];
  const batch = tokenBatch(tok, items);
  const inputs = { inputIds: batch.ids, attentionMask: batch.mask };
  const base = torch.noGrad(() => model.forward(inputs).logits);
  const run = () => {
    const post = model.withHooks(shiftWeightHooks(ed.slots, shifts), () => model.forward(inputs).logits);
    const labels = (start: number) => batch.labels.narrow(0, start, b);
    const gen = targetNllOf(labelLogits(post, 0, b), labels(0));
    const loc = localityKl(labelLogits(base, b, b), labelLogits(post, b, b), labels(b));
    const total = gen.add(loc.mul(locCoef));
    return {
      gen: gen.item(),
      loc: loc.item(),
      grads: withGrad ? torch.grad([total], shifts) : shifts.map(() => null),
      gs: successRatios(labelLogits(post, 0, b), labels(0)),
      ls: successRatios(labelLogits(post, b, b), labels(b)),
      ...(withGrad ? {} : { es: successRatios(labelLogits(post, 2 * b, b), labels(2 * b)) }),
    };
  };
  return withGrad ? torch.enableGrad(run) : torch.noGrad(run);
}

/**
 * One training iteration's gradients: cache, shifts, post-edit losses and G, then the truncated
 * back-propagation into the network's .grad (which the caller clears, clips and steps).
 */
export function malmenMetaGradients(
  model: CausalLM,
  tok: Tokenizer,
  ed: MalmenEditor,
  samples: MetaSample[],
  h: Pick<MalmenHparams, "batch_size" | "token" | "editor_batch_size" | "loc_coef">,
  training: boolean,
): Record<string, number> {
  return torch.scope(() => {
    const items = samples.map((s) => promptTarget(tok, s.record.prompt, s.record.target));
    const { keys, valuesGrad } = cacheEdits(model, tok, ed, items, h, training);
    const shifts = predictShifts(ed, keys, valuesGrad, h.editor_batch_size).map((s) => s.requiresGrad_(true));
    const G = shifts.map((s) => torch.zerosLike(s));
    let gen = 0;
    let loc = 0;
    const parts = chunks(samples, h.batch_size);
    for (const c of parts) {
      torch.scope(() => {
        const r = chunkLosses(model, tok, ed, c, shifts, h.loc_coef, true);
        r.grads.forEach((g, i) => g && (G[i] as Tensor).add_(g));
        gen += r.gen;
        loc += r.loc;
      });
    }
    ed.slots.forEach((s, i) =>
      shiftMetaGradients(
        s,
        keys[i] as Tensor,
        valuesGrad[i] as Tensor,
        (shifts[i] as Tensor).detach(),
        G[i] as Tensor,
        h.editor_batch_size,
      ),
    );
    return { gen_loss: gen / parts.length, loc_loss: loc / parts.length };
  });
}

/** The loop's view of a MALMEN shift network in training. */
export function malmenLearner(
  model: CausalLM,
  tok: Tokenizer,
  ed: MalmenEditor,
  h: MalmenHparams,
  data: MetaData,
): MetaLearner & { free(): void } {
  const all = malmenParameters(ed);
  const params = all.map(([, t]) => t);
  const opt = new ResumableAdam(params, { lr: h.meta_lr });
  return {
    method: "MALMEN",
    archiveName: "malmen.safetensors",
    tensors: () => malmenNamedTensors(ed),
    parameters: () => all,
    optimizers: () => [{ name: "opt", opt }],
    iterate(iteration: number) {
      const samples = sampleBatch(data.train, iteration, h.n_edits, h.seed);
      opt.zeroGrad();
      const info = malmenMetaGradients(model, tok, ed, samples, h, true);
      info.grad = clipGradNorm(params, h.max_grad_norm);
      opt.step();
      opt.zeroGrad();
      ed.slots.forEach((s, i) => {
        info[`lr/lr${i}`] = s.net.lr.select(0, s.index).item();
        info[`lamda/lamda${i}`] = lamdaOf(s);
      });
      return info;
    },
    validate() {
      const sums: Record<string, number> = {};
      let groups = 0;
      for (const samples of validationBatches(data.val, h.val_steps, h.n_edits, h.seed)) {
        torch.scope(() => {
          const items = samples.map((s) => promptTarget(tok, s.record.prompt, s.record.target));
          const { keys, valuesGrad } = cacheEdits(model, tok, ed, items, h, false);
          const shifts = predictShifts(ed, keys, valuesGrad, h.editor_batch_size);
          const es: number[] = [];
          const gs: number[] = [];
          const ls: number[] = [];
          let gen = 0;
          let loc = 0;
          const parts = chunks(samples, h.batch_size);
          for (const c of parts)
            torch.scope(() => {
              const r = chunkLosses(model, tok, ed, c, shifts, h.loc_coef, false);
              es.push(...(r.es ?? []));
              gs.push(...r.gs);
              ls.push(...r.ls);
              gen += r.gen;
              loc += r.loc;
            });
          const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
          const add = (k: string, v: number) => (sums[k] = (sums[k] ?? 0) + v);
          add("gen_loss", gen / parts.length);
          add("loc_loss", loc / parts.length);
          add("ES", mean(es));
          add("GS", mean(gs));
          add("LS", mean(ls));
        });
        groups++;
      }
      for (const k of Object.keys(sums)) sums[k] = (sums[k] as number) / Math.max(1, groups);
      return sums;
    },
    saveArchive: (path) => saveMalmenEditor(path, ed, { data: data.path }),
    free: () => opt.free(),
  };
}

/** Trains (or resumes) a MALMEN shift network; writes malmen.safetensors and hparams.yaml to opts.outDir. */
export function trainMalmen(
  model: CausalLM,
  tok: Tokenizer,
  h: MalmenHparams,
  opts: EditorTrainOptions,
): LoopResult & { hparamsFile: string | null } {
  const ed = createMalmenEditor(model, h);
  const learner = malmenLearner(model, tok, ed, h, opts.data);
  return trainEditorNetwork(model, h, h.n_edits, learner, opts, () => freeMalmenEditor(ed));
}

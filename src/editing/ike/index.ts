/**
 * IKE (In-context Knowledge Editing; Zheng et al. 2023, "Can We Edit Factual Knowledge by In-Context
 * Learning?"), as EasyEdit runs it (easyeditor/models/ike/ike_main.py, util.py; evaluate.py
 * compute_icl_edit_quality, icl_lm_eval): no weight changes; an edit retrieves the k training
 * demonstrations nearest to its new fact (./demos.ts) and the model reads them and the new fact before
 * the input: "".join(demonstrations) + f"New Fact: {prompt} {target}\nPrompt: " + input.
 *
 * EasyEdit evaluates each edit alone, its case's own fact in front of every prompt of that case. Here the
 * edit memory holds every applied edit and the system must answer any input without being told its case:
 * an input's fact is the edit whose prompt is nearest to the input (cosine of the same mean-pooled
 * hidden-state embedding, ./demos.ts), decided per position on the sequence so far by the router
 * (../serac/router.ts, installed on the logits module as a journal adaptor of kind "ike"). Every position
 * after a first token is answered by the model reading that edit's prompt in front (IKE has no scope
 * classifier: locality rests on the in-context model ignoring an unrelated fact, as in the paper and
 * EasyEdit's locality test). With an empty memory the model is unchanged.
 *
 * Deliberate differences: the sentence embedding is the edited model's mean final hidden state (EasyEdit:
 * all-MiniLM-L6-v2); the training set of the demonstrations is `train_ds` (ours; EasyEdit passes its
 * train_ds in code); the prompt is tokenised as the context joined to the input's first token, then the
 * input's own tokens (../serac/router.ts); a prompt longer than the model's window loses its first tokens.
 * `sentence_model_name` and `results_dir` are read and unused.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import { fillPrompt, type EditRequest } from "../request.js";
import { HparamsError, parseHparams, type Schema } from "../hparams.js";
import { registerAdaptorKind, withAdaptors, type AdaptorEntry } from "../journal.js";
import { loadScopeRecords } from "../serac/data.js";
import { logitsModule, rememberTokenizer, routerHooks, tokenizerOf, type Route } from "../serac/router.js";
import {
  demonstrations,
  ikeContext,
  nearest,
  prefixMeanEmbeddings,
  querySentence,
  sentenceEmbeddings,
} from "./demos.js";

export { demonstrations, ikeContext, querySentence, nearest, sentenceEmbeddings, prefixMeanEmbeddings };

export const IKE_KIND = "ike";

export interface IkeHparams {
  k: number;
  use_icl_examples: boolean;
  sentence_model_name: string;
  train_ds: string;
}

/** Defaults: EasyEdit's IKEHyperParams and hparams/IKE/gpt2-xl.yaml (k 16). */
export const IKE_SCHEMA: Schema = {
  k: { type: "int", default: 16, doc: "demonstrations retrieved per edit" },
  use_icl_examples: {
    type: "bool",
    default: true,
    doc: "retrieve demonstrations (false: the new fact only)",
  },
  sentence_model_name: {
    type: "string",
    default: "./hugging_cache/all-MiniLM-L6-v2",
    doc: "read for EasyEdit files; the embedding is the edited model's mean hidden state",
  },
  train_ds: {
    type: "string",
    default: "zsre",
    doc: "demonstration records: zsre, world (the demo's requests from 50 on) or a file, optionally [a:b]",
  },
};

export interface IkeEntryMeta {
  prompt: string;
  target: string;
  demos: string[];
  /** indices of the demonstrations in the corpus of train_ds */
  demo_ids: number[];
  train_ds: string;
}

function parse(raw: Record<string, unknown>, where: string, _model: CausalLM): IkeHparams {
  const h = parseHparams<IkeHparams>(IKE_SCHEMA, raw, where, "IKE");
  if (h.k < 0) throw new HparamsError(`${where}: IKE k must be >= 0, got ${h.k}`);
  return h;
}

interface Corpus {
  sentences: string[];
  embeddings: Tensor;
  free(): void;
}

/** The demonstration corpus of train_ds with its embeddings (once per editor session). */
function corpusOf(ctx: EditContext, h: IkeHparams): Corpus {
  const key = `ike:corpus:${h.train_ds}`;
  const got = ctx.cache.get(key) as Corpus | undefined;
  if (got) return got;
  const { records } = loadScopeRecords(h.train_ds);
  const sentences = records.flatMap(demonstrations);
  ctx.log(`IKE: embedding ${sentences.length} demonstrations of ${h.train_ds}`);
  const embeddings = torch.scope(() =>
    torch.noGrad(() => sentenceEmbeddings(ctx.model, ctx.tok, sentences).keep()),
  );
  const c: Corpus = { sentences, embeddings, free: () => embeddings.free() };
  ctx.cache.set(key, c);
  return c;
}

export const ike: EditMethod<IkeHparams> = {
  name: "IKE",
  schema: IKE_SCHEMA,
  maxBatch: 1 << 20,
  parseHparams: parse,
  compute(ctx: EditContext, requests: EditRequest[], h: IkeHparams): EditResult {
    const { model, tok, journal } = ctx;
    rememberTokenizer(model, tok);
    const module = logitsModule(model);
    const entries = journal.withoutAdaptor(IKE_KIND, module, () => {
      const corpus = h.use_icl_examples && h.k > 0 ? corpusOf(ctx, h) : null;
      return requests.map((r): AdaptorEntry => {
        const prompt = fillPrompt(r);
        return torch.scope(() =>
          torch.noGrad(() => {
            let ids: number[] = [];
            if (corpus) {
              const q = sentenceEmbeddings(model, tok, [querySentence(prompt, r.targetNew)]).select(0, 0);
              ids = nearest(corpus.embeddings, q, h.k);
            }
            const row = tok.encode(prompt, { addSpecialTokens: true });
            const key = prefixMeanEmbeddings(model, row)
              .select(0, row.length - 1)
              .clone()
              .keep();
            const meta: IkeEntryMeta = {
              prompt,
              target: r.targetNew,
              demos: ids.map((i) => (corpus as Corpus).sentences[i] as string),
              demo_ids: ids,
              train_ds: h.train_ds,
            };
            return {
              kind: IKE_KIND,
              module,
              tensors: { key },
              meta: meta as unknown as Record<string, unknown>,
            };
          }),
        );
      });
    });
    return {
      deltas: withAdaptors([], entries),
      info: { demonstrations: entries.map((e) => (e.meta as unknown as IkeEntryMeta).demo_ids) },
    };
  },
};

/** The router's decision for IKE: the edit whose prompt is nearest to the sequence so far. */
function ikeHooks(model: CausalLM, entries: AdaptorEntry[]) {
  const metas = entries.map((e) => e.meta as unknown as IkeEntryMeta);
  const keys = entries.map((e) => e.tensors.key as Tensor);
  const routes: Route[] = metas.map((m, i) => ({
    key: `ike:${i}`,
    model,
    context: ikeContext(m.demos, m.prompt, m.target),
  }));
  return routerHooks(model, {
    tok: tokenizerOf(model),
    decide(rows, asked) {
      return torch.scope(() => {
        const K = torch.stack(keys).to("float32"); // [N, d], normalised
        return rows.map((row, r) => {
          const at = asked[r] as number[];
          if (at.length === 0) return [];
          const E = prefixMeanEmbeddings(model, row).indexSelect(0, torch.tensor(at, { dtype: "int64" }));
          const best = E.matmul(K.T).argmax(1).toNumbers();
          return best.map((i) => routes[i] as Route);
        });
      });
    },
  });
}

registerAdaptorKind(IKE_KIND, {
  hooks(model: CausalLM, _module: string, entries: AdaptorEntry[]) {
    return ikeHooks(model, entries);
  },
});

/**
 * A quick evaluation of a model on the world's task items (what TRAINING.md reports; the benchmark
 * harness wraps the same items with its own machinery):
 * - greedy_completion: right when greedy decoding produces the target (loglikelihood's is_greedy);
 * - multiple_choice: the choice with the highest log-likelihood is the gold one (lm-eval's acc);
 * - generate_until: greedy generation until "\n", answer extracted with the item's pattern, compared
 *   exactly (safety_refusal: refused or not, against the target).
 */
import type { CausalLM } from "../models/model.js";
import { generate } from "../models/generate.js";
import { loglikelihood } from "../models/scoring.js";
import type { Tokenizer } from "../models/tokenizer/index.js";
import { extractAnswer, refuses, type TaskItem } from "../world/index.js";

export interface ItemResult {
  id: string;
  correct: boolean;
  /** the generation, the chosen option or the greedy check */
  output: string;
}

export interface TaskScore {
  task: string;
  n: number;
  accuracy: number;
  /** standard error of the accuracy */
  stderr: number;
  /** multiple choice: the accuracy of the cloze form (options scored by their text) */
  cloze?: { accuracy: number; stderr: number };
  /** accuracy per value of a meta field (relation, kind, ...) */
  by?: Record<string, { n: number; accuracy: number }>;
  results: ItemResult[];
}

function score(task: string, items: TaskItem[], results: ItemResult[], byField?: string): TaskScore {
  const n = results.length;
  const k = results.filter((r) => r.correct).length;
  const acc = n ? k / n : 0;
  const out: TaskScore = {
    task,
    n,
    accuracy: acc,
    stderr: n > 1 ? Math.sqrt((acc * (1 - acc)) / (n - 1)) : 0,
    results,
  };
  if (byField) {
    const by: Record<string, { n: number; correct: number }> = {};
    items.forEach((it, i) => {
      const key = String(it.meta[byField]);
      by[key] ??= { n: 0, correct: 0 };
      by[key].n++;
      if (results[i]?.correct) by[key].correct++;
    });
    out.by = Object.fromEntries(
      Object.entries(by).map(([key, v]) => [key, { n: v.n, accuracy: v.correct / v.n }]),
    );
  }
  return out;
}

export function evaluateCompletion(
  model: CausalLM,
  tok: Tokenizer,
  items: TaskItem[],
  batchSize = 32,
): ItemResult[] {
  const scores = loglikelihood(
    model,
    tok,
    items.map((it) => ({ context: it.prompt, continuation: it.target })),
    { batchSize },
  );
  return items.map((it, i) => ({
    id: it.id,
    correct: scores[i]?.isGreedy ?? false,
    output: String(scores[i]?.isGreedy),
  }));
}

export function evaluateChoice(
  model: CausalLM,
  tok: Tokenizer,
  items: TaskItem[],
  batchSize = 32,
): ItemResult[] {
  const reqs = items.flatMap((it) =>
    (it.choices ?? []).map((c) => ({ context: it.prompt, continuation: c })),
  );
  const scores = loglikelihood(model, tok, reqs, { batchSize });
  let k = 0;
  return items.map((it) => {
    const ll = (it.choices ?? []).map(() => scores[k++]?.logprob ?? -Infinity);
    const best = ll.indexOf(Math.max(...ll));
    return { id: it.id, correct: best === it.gold, output: it.choices?.[best] ?? "" };
  });
}

export function evaluateGeneration(
  model: CausalLM,
  tok: Tokenizer,
  items: TaskItem[],
  opts: { batchSize?: number; maxNewTokens?: number } = {},
): ItemResult[] {
  const bs = opts.batchSize ?? 32;
  const out: ItemResult[] = [];
  for (let s = 0; s < items.length; s += bs) {
    const chunk = items.slice(s, s + bs);
    const gens = generate(
      model,
      chunk.map((it) => tok.encode(it.prompt, { addSpecialTokens: false })),
      {
        maxNewTokens: opts.maxNewTokens ?? 64,
        stopStrings: chunk[0]?.until ?? ["\n"],
        decode: (ids) => tok.decode(ids, { skipSpecialTokens: true }),
        eosTokenId: tok.eosTokenId,
        padTokenId: tok.padTokenId ?? tok.eosTokenId ?? 0,
      },
    );
    chunk.forEach((it, i) => {
      let text = gens[i]?.text ?? "";
      for (const u of it.until ?? []) {
        const j = text.indexOf(u);
        if (j >= 0) text = text.slice(0, j);
      }
      const correct =
        it.task === "safety_refusal"
          ? refuses(text) === (it.target === "refuse")
          : extractAnswer(it, text) === it.target;
      out.push({ id: it.id, correct, output: text });
    });
  }
  return out;
}

/** Scores one task's items with the method its type asks for. */
export function evaluateTask(model: CausalLM, tok: Tokenizer, task: string, items: TaskItem[]): TaskScore {
  const type = items[0]?.type;
  const results =
    type === "greedy_completion"
      ? evaluateCompletion(model, tok, items)
      : type === "multiple_choice"
        ? evaluateChoice(model, tok, items)
        : evaluateGeneration(model, tok, items);
  const byField =
    task === "facts" || task === "knowledge_mc"
      ? "relation"
      : task === "arithmetic" || task === "reasoning"
        ? "kind"
        : task.startsWith("safety")
          ? "harmful"
          : undefined;
  const out = score(task, items, results, byField);
  if (type === "multiple_choice" && items.every((it) => it.cloze)) {
    const cl = evaluateChoice(
      model,
      tok,
      items.map((it) => ({ ...it, prompt: it.cloze?.prompt ?? "", choices: it.cloze?.choices })),
    );
    const c = score(task, items, cl);
    out.cloze = { accuracy: c.accuracy, stderr: c.stderr };
  }
  return out;
}

/**
 * Evaluation as lm-evaluation-harness's evaluator does it: build every task's documents and prompts
 * (few-shot examples seeded), send all requests of one type together to the model (so batching spans
 * tasks), score each document with the task's filters and metrics, aggregate (mean, standard error)
 * per task and per group, and return the harness's results JSON (results, groups, group_subtasks,
 * configs, versions, n-shot, higher_is_better, n-samples, config) with per-sample logs.
 *
 * Callable as a library on a model already in memory (edited or not): the request cache is keyed by
 * the model's current weights (fingerprint), or off with `cache: false`. With `applyChatTemplate`,
 * prompts are rendered with the model's chat template as lm-eval's `--apply_chat_template` (chat.ts).
 */
import { execFileSync } from "node:child_process";
import type { CausalLM } from "../models/model.js";
import type { Tokenizer } from "../models/tokenizer/index.js";
import { sha256 } from "../util/hash.js";
import { packageRoot } from "../util/paths.js";
import { RequestCache } from "./cache.js";
import { buildChatContext, type ChatPromptOptions } from "./chat.js";
import { applyFilter, NONE_FILTER, type FilterPipeline } from "./filters.js";
import {
  CachingLM,
  lmFingerprint,
  ModelLM,
  type GenerationRequest,
  type LM,
  type LoglikelihoodRequest,
} from "./lm.js";
import {
  aggregate,
  aggregateSubtaskMetrics,
  exactMatch,
  multipleChoiceResult,
  pooledSampleStderr,
  stderrFor,
} from "./metrics.js";
import { resolveTasks, type GroupDef, type RegistryOptions } from "./registry.js";
import {
  buildContext,
  choiceGold,
  FewshotSampler,
  generationGold,
  type Doc,
  type DocResponse,
  type TaskDef,
} from "./task.js";

export interface EvaluateOptions extends RegistryOptions {
  /** few-shot examples per prompt for every task (default: each task's own) */
  numFewshot?: number;
  /** the first N documents of each task, or a fraction (< 1) of them */
  limit?: number;
  /** rows per forward pass (default 8) */
  batchSize?: number;
  /** seed of the few-shot sampler (the harness's fewshot_seed, default 1234) */
  seed?: number;
  /** keep per-document logs (default true; they are small) */
  logSamples?: boolean;
  /** request cache: true (default: <cacheDir>/requests/<model fingerprint>.jsonl), false, a folder, or a cache */
  cache?: boolean | string | RequestCache;
  /** bootstrap iterations for bootstrapped standard errors; 0 reports none (default 100000) */
  bootstrapIters?: number;
  /** written into config.model / model_args */
  modelName?: string;
  modelArgs?: string;
  /** progress lines on stderr (default true unless EDITEVAL_QUIET=1) */
  progress?: boolean;
  /** default max_gen_toks (256) */
  maxGenToks?: number;
  /**
   * render every prompt with the model's chat template (lm-eval's `--apply_chat_template`); a string
   * names one of the tokenizer's named templates. Default false.
   */
  applyChatTemplate?: boolean | string;
  /**
   * few-shot examples as alternating user/assistant turns instead of one user message (lm-eval's
   * `--fewshot_as_multiturn`); default: true with a chat template (as lm-eval's CLI), and it needs one
   */
  fewshotAsMultiturn?: boolean;
  /** a system instruction put before each task's description (lm-eval's `--system_instruction`) */
  systemInstruction?: string;
}

export type MetricValue = number | string;

export interface SampleLog {
  doc_id: number;
  doc: Doc;
  target: unknown;
  arguments: Record<string, Record<string, unknown>>;
  resps: unknown[];
  filtered_resps: unknown[];
  filter: string;
  metrics: string[];
  doc_hash: string;
  prompt_hash: string;
  target_hash: string;
  [metric: string]: unknown;
}

export interface HarnessResults {
  results: Record<string, Record<string, MetricValue>>;
  groups?: Record<string, Record<string, MetricValue>>;
  group_subtasks: Record<string, string[]>;
  configs: Record<string, Record<string, unknown>>;
  versions: Record<string, number>;
  "n-shot": Record<string, number>;
  higher_is_better: Record<string, Record<string, boolean>>;
  "n-samples": Record<string, { original: number; effective: number }>;
  config: Record<string, unknown>;
  git_hash: string | null;
  date: number;
  total_evaluation_time_seconds?: string;
  [key: string]: unknown;
}

export interface EvaluateOutput {
  results: HarnessResults;
  samples: Record<string, SampleLog[]>;
  /** requests sent to the model (not answered from the cache) and cache hits */
  requests: { loglikelihood: number; loglikelihoodRolling: number; generateUntil: number; cached: number };
}

interface Instance {
  task: TaskDef;
  docId: number;
  doc: Doc;
  context: string;
  nShot: number;
}

interface Planned {
  inst: Instance;
  ll: number[]; // indices into the loglikelihood request list
  gen: number; // index into the generation list, or -1
  roll: number;
}

function limitCount(n: number, limit: number | undefined): number {
  if (limit === undefined || limit === null) return n;
  if (limit < 1) return Math.ceil(n * limit);
  return Math.min(n, Math.floor(limit));
}

function gitHash(): string | null {
  try {
    return execFileSync("git", ["-C", packageRoot(), "rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return null;
  }
}

/** The configs entry of a task, in the harness's YAML field names. */
export function taskConfig(t: TaskDef, nShot: number): Record<string, unknown> {
  return {
    task: t.task,
    ...(t.tag ? { tag: t.tag } : {}),
    dataset_path: t.dataset.path,
    ...(t.dataset.name ? { dataset_name: t.dataset.name } : {}),
    test_split: t.testSplit,
    ...(t.fewshot ? { fewshot_split: t.fewshot.split } : {}),
    ...(t.description ? { description: t.description } : {}),
    doc_to_text: t.templates.doc_to_text,
    doc_to_target: t.templates.doc_to_target,
    ...(t.templates.doc_to_choice !== undefined ? { doc_to_choice: t.templates.doc_to_choice } : {}),
    target_delimiter: t.targetDelimiter,
    fewshot_delimiter: t.fewshotDelimiter,
    ...(t.fewshot ? { fewshot_config: { sampler: t.fewshot.sampler } } : {}),
    num_fewshot: nShot,
    metric_list: t.metrics.map((m) => ({
      metric: m.metric,
      aggregation: m.aggregation ?? "mean",
      higher_is_better: m.higher_is_better ?? true,
      ...(m.kwargs ?? {}),
    })),
    output_type: t.outputType,
    ...(t.generationKwargs ? { generation_kwargs: t.generationKwargs } : {}),
    repeats: 1,
    ...(t.filters ? { filter_list: t.filters } : {}),
    should_decontaminate: false,
    metadata: {
      version: t.version,
      data_files: t.dataset.files,
      ...(t.dataset.sha256 ? { data_sha256: t.dataset.sha256 } : {}),
      ...(t.dataset.note ? { note: t.dataset.note } : {}),
    },
  };
}

/**
 * Builds each task's documents and prompts (few-shot examples drawn document after document): plain
 * text, or rendered with a chat template when `chat` is given (see chat.ts).
 */
export function buildInstances(
  tasks: TaskDef[],
  o: {
    numFewshot?: number;
    limit?: number;
    seed?: number;
    systemInstruction?: string;
    chat?: ChatPromptOptions | null;
  },
): { instances: Map<string, Instance[]>; sizes: Map<string, { original: number; effective: number }> } {
  const instances = new Map<string, Instance[]>();
  const sizes = new Map<string, { original: number; effective: number }>();
  for (const t of tasks) {
    const docs = t.docs();
    const n = limitCount(docs.length, o.limit);
    const nShot = o.numFewshot ?? t.numFewshot;
    sizes.set(t.task, { original: docs.length, effective: n });
    let sampler: FewshotSampler | null = null;
    let sameAsTest = false;
    if (nShot > 0) {
      // no few-shot split: the harness's preconfigured rule, the evaluation docs without the document
      sameAsTest = !t.fewshot || t.fewshot.sameAsTest === true;
      const pool = t.fewshot ? t.fewshot.docs() : docs;
      sampler = new FewshotSampler(t.fewshot?.sampler ?? "default", pool, o.seed ?? 1234);
    }
    const list: Instance[] = [];
    for (let i = 0; i < n; i++) {
      const doc = docs[i] as Doc;
      const examples = sampler ? sampler.sample(nShot, sameAsTest ? doc : null) : [];
      const context = o.chat
        ? buildChatContext(t, doc, examples, o.chat, o.systemInstruction)
        : buildContext(t, doc, examples, o.systemInstruction);
      list.push({ task: t, docId: i, doc, context, nShot });
    }
    instances.set(t.task, list);
  }
  return { instances, sizes };
}

/** Applies the tasks' token-counting prompt rules (fitContext) with the LM's tokenizer. */
function fitContexts(lm: LM, tasks: TaskDef[], instances: Map<string, Instance[]>): void {
  for (const t of tasks) {
    if (!t.fitContext) continue;
    if (!lm.countTokens)
      throw new Error(`${t.task}: its prompt rule counts tokens, and this LM has no countTokens()`);
    const count = (s: string): number => (lm.countTokens as (s: string) => number).call(lm, s);
    const max = lm.maxLength ?? Infinity;
    for (const inst of instances.get(t.task) ?? [])
      inst.context = (t.fitContext as NonNullable<TaskDef["fitContext"]>)(inst.context, count, max);
  }
}

/** Whether a generation is muted: empty or whitespace only. */
export function isMuted(text: string): boolean {
  return text.trim() === "";
}

function genKwargs(t: TaskDef, doc: Doc): Omit<GenerationRequest, "context"> {
  return { ...(t.generationKwargs ?? {}), ...(t.docGenerationKwargs?.(doc) ?? {}) };
}

/**
 * The chat-template settings of a run (lm-eval's evaluate_config: fewshot_as_multiturn defaults to true
 * with a chat template and needs one), with the template's text resolved up front so a model without
 * one fails before any work; null without a chat template.
 */
function chatOptions(lm: LM, opts: EvaluateOptions): { chat: ChatPromptOptions; template: string } | null {
  const apply = opts.applyChatTemplate ?? false;
  if (apply === false || apply === "") {
    if (opts.fewshotAsMultiturn === true)
      throw new Error(
        "evaluate: fewshotAsMultiturn needs applyChatTemplate (--fewshot_as_multiturn needs --apply_chat_template)",
      );
    return null;
  }
  const name = typeof apply === "string" ? apply : undefined;
  const render = lm.applyChatTemplate;
  if (!render || !lm.chatTemplate)
    throw new Error(
      "evaluate: applyChatTemplate is set, and this LM has no applyChatTemplate()/chatTemplate()",
    );
  const template = lm.chatTemplate(name);
  return {
    template,
    chat: {
      fewshotAsMultiturn: opts.fewshotAsMultiturn ?? true,
      render: (messages, addGenerationPrompt) =>
        render.call(lm, messages, {
          addGenerationPrompt,
          ...(name !== undefined ? { chatTemplate: name } : {}),
        }),
    },
  };
}

/** Runs tasks on any LM (see evaluate() for a loaded model). */
export function evaluateLM(lm: LM, taskNames: string[] | string, opts: EvaluateOptions = {}): EvaluateOutput {
  const start = performance.now();
  const names = (typeof taskNames === "string" ? taskNames.split(",") : taskNames)
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new Error("evaluate: no tasks given");
  const { tasks, groups } = resolveTasks(names, opts);
  const chatSetup = chatOptions(lm, opts);
  const { instances, sizes } = buildInstances(tasks, { ...opts, chat: chatSetup?.chat ?? null });
  // a task's token-counting rule sees the prompt the model gets (rendered, under a chat template)
  fitContexts(lm, tasks, instances);

  // plan the requests of every document
  const llReqs: LoglikelihoodRequest[] = [];
  const genReqs: GenerationRequest[] = [];
  const rollReqs: string[] = [];
  const plans = new Map<string, Planned[]>();
  for (const t of tasks) {
    const ps: Planned[] = [];
    for (const inst of instances.get(t.task) ?? []) {
      const p: Planned = { inst, ll: [], gen: -1, roll: -1 };
      const d = inst.doc;
      // under a chat template the answer follows the generation prompt directly (lm-eval drops the delimiter)
      const delim = chatSetup ? "" : t.targetDelimiter;
      if (t.outputType === "multiple_choice") {
        for (const c of t.docToChoice?.(d) ?? []) {
          p.ll.push(llReqs.length);
          llReqs.push({ context: inst.context, continuation: delim + c });
        }
      } else if (t.outputType === "loglikelihood") {
        p.ll.push(llReqs.length);
        // lm-eval's construct_requests: (ctx, doc_to_target(doc)), no delimiter for this output type (a
        // task puts its own space in the target, as lambada's "{{' '+text.split(' ')[-1]}}")
        llReqs.push({ context: inst.context, continuation: String(t.docToTarget(d)) });
      } else if (t.outputType === "generate_until") {
        p.gen = genReqs.length;
        genReqs.push({ context: inst.context, ...genKwargs(t, d) });
      } else {
        p.roll = rollReqs.length;
        rollReqs.push(String(t.docToTarget(d)));
      }
      ps.push(p);
    }
    plans.set(t.task, ps);
  }

  const caching = lm instanceof CachingLM ? lm : null;
  const before = caching ? { ...caching.calls, hits: caching.hits } : null;
  const llRes = llReqs.length ? lm.loglikelihood(llReqs) : [];
  const rollRes = rollReqs.length ? lm.loglikelihoodRolling(rollReqs) : [];
  const genRes = genReqs.length ? lm.generateUntil(genReqs) : [];

  // score
  const bootstrapIters = opts.bootstrapIters ?? 100000;
  const results: HarnessResults["results"] = {};
  const samples: Record<string, SampleLog[]> = {};
  const perTaskValues = new Map<string, Map<string, number[]>>(); // "metric,filter" -> values
  for (const t of tasks) {
    const values = new Map<string, number[]>();
    const mutedValues: number[] = [];
    const logs: SampleLog[] = [];
    const filters: FilterPipeline[] =
      t.outputType === "generate_until"
        ? t.extract
          ? [{ name: t.extractName ?? "extract", filter: [] }]
          : (t.filters ?? [NONE_FILTER])
        : [NONE_FILTER];
    for (const p of plans.get(t.task) ?? []) {
      const d = p.inst.doc;
      let args: Record<string, Record<string, unknown>>;
      let resps: unknown[];
      const perFilter: { filter: string; filtered: unknown[]; metrics: Record<string, number> }[] = [];
      if (t.outputType === "multiple_choice" || t.outputType === "loglikelihood") {
        const rs = p.ll.map((i) => llRes[i] as { logprob: number; isGreedy: boolean });
        args = Object.fromEntries(
          p.ll.map((i, k) => [
            `gen_args_${k}`,
            { arg_0: llReqs[i]?.context, arg_1: llReqs[i]?.continuation },
          ]),
        );
        resps = rs.map((r) => [[r.logprob, r.isGreedy]]);
        let m: Record<string, number>;
        if (t.outputType === "multiple_choice") {
          const response: DocResponse = {
            kind: "choices",
            lls: rs.map((r) => r.logprob),
            isGreedy: rs.map((r) => r.isGreedy),
          };
          if (t.processResults) m = t.processResults(d, response);
          else {
            const r = multipleChoiceResult(
              response.lls,
              response.isGreedy,
              t.docToChoice?.(d) ?? [],
              choiceGold(t, d),
            );
            m = Object.fromEntries(t.metrics.map((s) => [s.metric, r[s.metric as keyof typeof r]]));
          }
        } else {
          const r0 = rs[0] as { logprob: number; isGreedy: boolean };
          m = t.processResults
            ? t.processResults(d, { kind: "loglikelihood", ...r0 })
            : { acc: r0.isGreedy ? 1 : 0 };
        }
        perFilter.push({ filter: "none", filtered: rs.map((r) => [r.logprob, r.isGreedy]), metrics: m });
      } else if (t.outputType === "generate_until") {
        const text = genRes[p.gen] as string;
        const { context, ...kw } = genReqs[p.gen] as GenerationRequest;
        args = { gen_args_0: { arg_0: context, arg_1: kw } };
        resps = [[text]];
        for (const f of filters) {
          const filtered = t.extract ? t.extract(d, text) : applyFilter(f, [text]);
          let m: Record<string, number>;
          if (t.processResults) m = t.processResults(d, { kind: "generation", text, filtered });
          else {
            const gold = generationGold(t, d);
            m = {};
            for (const s of t.metrics) {
              if (s.metric !== "exact_match")
                throw new Error(`${t.task}: metric ${s.metric} is not supported for generations`);
              m[s.metric] = exactMatch(filtered, gold, s.kwargs);
            }
          }
          perFilter.push({ filter: f.name, filtered: [filtered], metrics: m });
        }
        // muting: the share of empty or whitespace-only generations (reported once, under "none")
        const pf0 = perFilter.find((x) => x.filter === "none");
        if (pf0) pf0.metrics = { ...pf0.metrics, muted: isMuted(text) ? 1 : 0 };
        else mutedValues.push(isMuted(text) ? 1 : 0);
      } else {
        const lp = rollRes[p.roll] as number;
        args = { gen_args_0: { arg_0: rollReqs[p.roll] } };
        resps = [[lp]];
        const m = t.processResults
          ? t.processResults(d, { kind: "rolling", logprob: lp })
          : { loglikelihood: lp };
        perFilter.push({ filter: "none", filtered: [lp], metrics: m });
      }
      for (const pf of perFilter) {
        for (const [metric, v] of Object.entries(pf.metrics)) {
          const key = `${metric},${pf.filter}`;
          const arr = values.get(key) ?? [];
          arr.push(v);
          values.set(key, arr);
        }
        if (opts.logSamples !== false) {
          const target = t.outputType === "generate_until" ? generationGold(t, d) : t.docToTarget(d);
          logs.push({
            doc_id: p.inst.docId,
            doc: d,
            target,
            arguments: args,
            resps,
            filtered_resps: pf.filtered,
            filter: pf.filter,
            metrics: Object.keys(pf.metrics),
            doc_hash: sha256(JSON.stringify(d)),
            prompt_hash: sha256(p.inst.context),
            target_hash: sha256(typeof target === "string" ? target : JSON.stringify(target)),
            ...pf.metrics,
          });
        }
      }
    }
    if (mutedValues.length) values.set("muted,none", mutedValues);
    const entry: Record<string, MetricValue> = { alias: t.alias ?? t.task };
    for (const [key, xs] of [...values.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const [metric, filter] = key.split(",") as [string, string];
      const agg = t.metrics.find((s) => s.metric === metric)?.aggregation ?? "mean";
      entry[key] = aggregate(agg, xs);
      entry[`${metric}_stderr,${filter}`] = stderrFor(agg, xs, bootstrapIters);
    }
    results[t.task] = entry;
    perTaskValues.set(t.task, values);
    if (opts.logSamples !== false) samples[t.task] = logs;
  }

  // groups (aggregated from their leaf tasks, weighted by size)
  const groupMap = new Map(groups.map((g) => [g.group, g]));
  const leaves = (name: string): string[] => {
    const g = groupMap.get(name);
    return g ? g.children.flatMap(leaves) : [name];
  };
  const groupResults: Record<string, Record<string, MetricValue>> = {};
  for (const g of groups) {
    const entry: Record<string, MetricValue> = { alias: g.alias ?? g.group };
    const leafTasks = leaves(g.group).filter((n) => results[n]);
    for (const a of g.aggregate ?? []) {
      const filterNames = a.filter_list ?? [
        ...new Set(
          leafTasks.flatMap((n) =>
            Object.keys(results[n] ?? {})
              .filter((k) => k.startsWith(`${a.metric},`))
              .map((k) => k.slice(a.metric.length + 1)),
          ),
        ),
      ];
      for (const f of filterNames) {
        const vals: number[] = [];
        const ses: MetricValue[] = [];
        const ns: number[] = [];
        for (const n of leafTasks) {
          const r = results[n] as Record<string, MetricValue>;
          const v = r[`${a.metric},${f}`];
          if (typeof v !== "number") continue;
          vals.push(v);
          ses.push(r[`${a.metric}_stderr,${f}`] ?? "N/A");
          ns.push(perTaskValues.get(n)?.get(`${a.metric},${f}`)?.length ?? 0);
        }
        if (vals.length === 0) continue;
        entry[`${a.metric},${f}`] = aggregateSubtaskMetrics(vals, ns, a.weight_by_size);
        entry[`${a.metric}_stderr,${f}`] = ses.every((s) => typeof s === "number")
          ? pooledSampleStderr(ses as number[], ns)
          : "N/A";
      }
    }
    groupResults[g.group] = entry;
  }

  // order: each group followed by its children, depth first; tasks outside groups as asked
  const ordered: HarnessResults["results"] = {};
  const childOf = new Set(groups.flatMap((g) => g.children));
  const visit = (name: string): void => {
    if (ordered[name]) return;
    const g = groupMap.get(name);
    if (g) {
      ordered[name] = groupResults[name] as Record<string, MetricValue>;
      g.children.forEach(visit);
    } else if (results[name]) ordered[name] = results[name];
  };
  for (const g of groups) if (!childOf.has(g.group)) visit(g.group);
  for (const t of tasks) visit(t.task);

  const versions: Record<string, number> = {};
  const nShot: Record<string, number> = {};
  const hib: Record<string, Record<string, boolean>> = {};
  const configs: Record<string, Record<string, unknown>> = {};
  const nSamples: Record<string, { original: number; effective: number }> = {};
  for (const t of tasks) {
    const ns = opts.numFewshot ?? t.numFewshot;
    versions[t.task] = t.version;
    nShot[t.task] = ns;
    hib[t.task] = Object.fromEntries(t.metrics.map((m) => [m.metric, m.higher_is_better ?? true]));
    if (t.outputType === "generate_until") (hib[t.task] as Record<string, boolean>).muted = false;
    configs[t.task] = taskConfig(t, ns);
    nSamples[t.task] = sizes.get(t.task) as { original: number; effective: number };
  }
  for (const g of groups) {
    versions[g.group] = g.version;
    const shots = [...new Set(leaves(g.group).map((n) => nShot[n]))];
    if (shots.length === 1 && shots[0] !== undefined) nShot[g.group] = shots[0];
    const h: Record<string, boolean> = {};
    for (const n of leaves(g.group)) Object.assign(h, hib[n]);
    hib[g.group] = h;
  }
  const sortKeys = <T>(o: Record<string, T>): Record<string, T> =>
    Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const groupSubtasks: Record<string, string[]> = {};
  for (const g of groups) groupSubtasks[g.group] = g.children;
  for (const t of tasks) if (!childOf.has(t.task)) groupSubtasks[t.task] = [];
  const aggregatedGroups = Object.fromEntries(
    groups.filter((g) => (g.aggregate ?? []).length > 0).map((g) => [g.group, groupResults[g.group]]),
  ) as Record<string, Record<string, MetricValue>>;

  const out: HarnessResults = {
    results: ordered,
    ...(Object.keys(aggregatedGroups).length ? { groups: aggregatedGroups } : {}),
    group_subtasks: groupSubtasks,
    configs: sortKeys(configs),
    versions: sortKeys(versions),
    "n-shot": sortKeys(nShot),
    higher_is_better: sortKeys(hib),
    "n-samples": nSamples,
    config: {
      model: opts.modelName ?? "editeval",
      model_args: opts.modelArgs ?? null,
      batch_size: opts.batchSize ?? 8,
      batch_sizes: [],
      device: "cpu",
      use_cache: caching ? caching.cache.file : null,
      limit: opts.limit ?? null,
      bootstrap_iters: bootstrapIters,
      gen_kwargs: null,
      random_seed: 0,
      numpy_seed: 1234,
      torch_seed: 1234,
      fewshot_seed: opts.seed ?? 1234,
    },
    git_hash: gitHash(),
    date: Date.now() / 1000,
    // lm-eval's EvaluationTracker fields for prompt formatting
    system_instruction: opts.systemInstruction ?? null,
    system_instruction_sha: opts.systemInstruction ? sha256(opts.systemInstruction) : null,
    fewshot_as_multiturn: chatSetup?.chat.fewshotAsMultiturn ?? false,
    chat_template: chatSetup?.template ?? null,
    chat_template_sha: chatSetup ? sha256(chatSetup.template) : null,
  };
  out.total_evaluation_time_seconds = String((performance.now() - start) / 1000);
  const after = caching ? { ...caching.calls, hits: caching.hits } : null;
  return {
    results: out,
    samples,
    requests:
      before && after
        ? {
            loglikelihood: after.loglikelihood - before.loglikelihood,
            loglikelihoodRolling: after.loglikelihoodRolling - before.loglikelihoodRolling,
            generateUntil: after.generateUntil - before.generateUntil,
            cached: after.hits - before.hits,
          }
        : {
            loglikelihood: llReqs.length,
            loglikelihoodRolling: rollReqs.length,
            generateUntil: genReqs.length,
            cached: 0,
          },
  };
}

/**
 * Evaluates a loaded model (possibly edited in memory) on tasks, as lm-evaluation-harness would.
 * The request cache (on by default) is keyed by the fingerprint of the model's current weights.
 */
export function evaluate(
  model: CausalLM,
  tokenizer: Tokenizer,
  taskNames: string[] | string,
  opts: EvaluateOptions = {},
): EvaluateOutput {
  let lm: LM = new ModelLM(model, tokenizer, {
    batchSize: opts.batchSize,
    maxGenToks: opts.maxGenToks,
    progress: opts.progress,
  });
  const c = opts.cache ?? true;
  if (c !== false) {
    const cache =
      c instanceof RequestCache
        ? c
        : RequestCache.forModel(lmFingerprint(model, tokenizer), typeof c === "string" ? c : undefined);
    lm = new CachingLM(lm, cache, {
      progress: opts.progress,
      chunkSize: Math.max(64, 8 * (opts.batchSize ?? 8)),
    });
  }
  return evaluateLM(lm, taskNames, opts);
}

export { type GroupDef };

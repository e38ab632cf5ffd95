/**
 * The embedded demo model: the recipe (world seed and sizes, tokenizer, model size, optimisation) and
 * the pipeline that turns it into a Hugging Face checkpoint directory with its world files and a
 * TRAINING.md: world -> byte-level BPE -> packed token stream -> GPT-2 from random init -> AdamW ->
 * checkpoint -> evaluation of every world task.
 */
import { cpus, loadavg } from "node:os";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as torch from "../torch/index.js";
import { loadModel } from "../models/load.js";
import type { CausalLM } from "../models/model.js";
import { saveCheckpoint } from "../models/save.js";
import { Tokenizer, loadTokenizer } from "../models/tokenizer/index.js";
import { sha256 } from "../util/hash.js";
import { cacheDir } from "../util/paths.js";
import { formatDuration } from "../util/progress.js";
import { TASK_NAMES, buildWorld, type TaskItem, type WorldData, type WorldOptions } from "../world/index.js";
import { writeWorld } from "../world/export.js";
import { Rng } from "../world/rng.js";
import { tokenizerConfigFor, trainByteLevelBpe } from "./bpe.js";
import { PackedBatches } from "./data.js";
import { evaluateTask, type TaskScore } from "./evaluate.js";
import { gpt2ConfigJson, initGpt2, type Gpt2Dims } from "./init.js";
import { Trainer, type TrainOptions } from "./trainer.js";

export interface DemoRecipe {
  seed: number;
  world: Omit<WorldOptions, "seed">;
  vocabSize: number;
  model: Omit<Gpt2Dims, "vocabSize">;
  batchSize: number;
  train: Pick<
    TrainOptions,
    "steps" | "lr" | "minLr" | "warmupSteps" | "schedule" | "weightDecay" | "clipNorm" | "betas"
  >;
}

export const DEMO_RECIPE: DemoRecipe = {
  seed: 1234,
  world: {},
  vocabSize: 2048,
  model: { nLayer: 4, nEmbd: 192, nHead: 6, nPositions: 128 },
  batchSize: 8,
  train: {
    steps: 3000,
    lr: 2e-3,
    minLr: 2e-4,
    warmupSteps: 100,
    schedule: "cosine",
    weightDecay: 0.01,
    clipNorm: 1,
    betas: [0.9, 0.95],
  },
};

export interface TrainDemoOptions {
  /** the checkpoint directory to write (models/demo) */
  out: string;
  recipe?: DemoRecipe;
  /** resumable training state (default <cache>/train-demo/<recipe hash>) */
  stateDir?: string;
  /** ignore an existing training state */
  fresh?: boolean;
  /** torch intra-op threads (default: as set, OMP_NUM_THREADS or 1) */
  threads?: number;
  /** the command line that made it (for TRAINING.md) */
  command?: string;
  log?: (line: string) => void;
  /** write world/ (tasks, requests, statistics corpus) beside the checkpoint (default true) */
  worldFiles?: boolean;
  /** the first heading of TRAINING.md (default "The demo model") */
  title?: string;
}

export interface DemoResult {
  out: string;
  scores: Record<string, TaskScore>;
  trainSeconds: number;
}

/** The model's dimensions and size in words. */
function describeModel(m: DemoRecipe["model"], vocab: number, params: number): string {
  return `GPT-2, ${m.nLayer} layers, d_model ${m.nEmbd}, ${m.nHead} heads, MLP ${m.nInner ?? 4 * m.nEmbd}, context ${m.nPositions}, vocabulary ${vocab}, tied embeddings: ${(params / 1e6).toFixed(2)}M parameters`;
}

/** Documents sampled for second-moment statistics (ROME/MEMIT --corpus). */
function statsSample(data: WorldData, n: number): string[] {
  return new Rng(data.options.seed)
    .fork("stats sample")
    .sample(data.documents, Math.min(n, data.documents.length));
}

export function trainDemo(opts: TrainDemoOptions): DemoResult {
  const recipe = opts.recipe ?? DEMO_RECIPE;
  const log = opts.log ?? ((l: string) => process.stderr.write(l + "\n"));
  if (opts.threads) torch.setNumThreads(opts.threads);
  const t0 = performance.now();

  log(`world: seed ${recipe.seed}`);
  const data = buildWorld({ seed: recipe.seed, ...recipe.world });
  log(`tokenizer: byte-level BPE, ${recipe.vocabSize} tokens, trained on ${data.documents.length} documents`);
  const tokJson = trainByteLevelBpe(data.documents, { vocabSize: recipe.vocabSize });
  const tokConfig = tokenizerConfigFor(tokJson, { modelMaxLength: recipe.model.nPositions });
  const tok = Tokenizer.fromTokenizerJson(tokJson, { tokenizerConfig: tokConfig });
  const eos = tok.eosTokenId as number;
  const docs = data.documents.map((d) => tok.encode(d, { addSpecialTokens: false }));
  const packed = new PackedBatches(docs, {
    seqLen: recipe.model.nPositions,
    batchSize: recipe.batchSize,
    seed: recipe.seed,
    eosId: eos,
  });
  const seqsPerEpoch = packed.epoch(0).length;
  const prepSeconds = (performance.now() - t0) / 1000;
  log(
    `data: ${docs.length} documents, ${packed.tokensPerEpoch} tokens per epoch in ${seqsPerEpoch} sequences (${prepSeconds.toFixed(1)}s)`,
  );

  const configJson = gpt2ConfigJson({ ...recipe.model, vocabSize: recipe.vocabSize }, { bos: eos, eos });
  const model = initGpt2(configJson, recipe.seed);
  const nParams = model.numParameters();
  const fingerprint = {
    recipe,
    corpus: sha256(data.documents.join("\u0000")).slice(0, 16),
    tokenizer: sha256(JSON.stringify(tokJson)).slice(0, 16),
  };
  const stateDir =
    opts.stateDir ?? join(cacheDir(), "train-demo", sha256(JSON.stringify(fingerprint)).slice(0, 12));
  if (opts.fresh) rmSync(stateDir, { recursive: true, force: true });
  log(`model: ${describeModel(recipe.model, recipe.vocabSize, nParams)}`);
  log(
    `training: ${recipe.train.steps} steps of ${recipe.batchSize} x ${recipe.model.nPositions} tokens (${((recipe.train.steps * recipe.batchSize) / seqsPerEpoch).toFixed(2)} epochs), ${torch.getNumThreads()} thread(s); state in ${stateDir}`,
  );
  const cpu0 = process.cpuUsage();
  const trainer = new Trainer(model, packed, {
    ...recipe.train,
    checkpointDir: stateDir,
    checkpointEvery: 100,
    logEvery: 50,
    log,
    fingerprint,
  });
  const state = trainer.run();
  const cpu = process.cpuUsage(cpu0);
  trainer.free();

  // the checkpoint directory
  mkdirSync(opts.out, { recursive: true });
  for (const [, t] of model.uniqueParameters()) t.requiresGrad_(false);
  saveCheckpoint(model, opts.out);
  writeFileSync(join(opts.out, "tokenizer.json"), JSON.stringify(tokJson) + "\n");
  writeFileSync(join(opts.out, "tokenizer_config.json"), JSON.stringify(tokConfig, null, 2) + "\n");
  writeFileSync(
    join(opts.out, "generation_config.json"),
    JSON.stringify({ bos_token_id: eos, eos_token_id: eos, pad_token_id: eos }, null, 2) + "\n",
  );
  if (opts.worldFiles !== false) {
    writeWorld(join(opts.out, "world"), data);
    writeFileSync(
      join(opts.out, "world", "stats-corpus.jsonl"),
      statsSample(data, 2000)
        .map((text) => JSON.stringify({ text }))
        .join("\n") + "\n",
    );
  }
  model.free();

  // evaluate the checkpoint as written (loaded back, as any user loads it)
  const scores = evaluateCheckpoint(opts.out, data, log);
  const info = {
    command: opts.command ?? "editeval train-demo --out models/demo",
    title: opts.title ?? "The demo model",
    recipe,
    data: {
      documents: docs.length,
      tokensPerEpoch: packed.tokensPerEpoch,
      sequencesPerEpoch: seqsPerEpoch,
      epochs: (recipe.train.steps * recipe.batchSize) / seqsPerEpoch,
      facts: data.world.facts.length,
      requests: data.requests.length,
    },
    parameters: nParams,
    threads: torch.getNumThreads(),
    blasThreads: process.env.OPENBLAS_NUM_THREADS ?? "OpenBLAS default",
    cores: cpus().length,
    loadAverage: loadavg()[0] ?? 0,
    trainSeconds: state.seconds,
    trainCpuSeconds: (cpu.user + cpu.system) / 1e6,
    prepSeconds,
    finalLoss: state.lossCurve[state.lossCurve.length - 1]?.[1] ?? null,
    lossCurve: state.lossCurve,
    scores: Object.fromEntries(
      Object.entries(scores).map(([k, s]) => [
        k,
        { n: s.n, accuracy: s.accuracy, stderr: s.stderr, cloze: s.cloze, by: s.by },
      ]),
    ),
  };
  writeFileSync(join(opts.out, "training.json"), JSON.stringify(info, null, 1) + "\n");
  writeFileSync(join(opts.out, "TRAINING.md"), trainingMarkdown(info, data));
  log(`done in ${formatDuration((performance.now() - t0) / 1000)}: ${resolve(opts.out)}`);
  return { out: opts.out, scores, trainSeconds: state.seconds };
}

/** Loads a checkpoint directory and scores every world task on it. */
export function evaluateCheckpoint(
  dir: string,
  data: WorldData,
  log: (l: string) => void = () => {},
): Record<string, TaskScore> {
  const model = loadModel(dir);
  try {
    return scoreWorldTasks(model, loadTokenizer(dir), data, log);
  } finally {
    model.free();
  }
}

/**
 * Scores a model on every world task's held-out items. With `wrap` (a chat format), every item's
 * prompts are rewritten first and the `facts` probe, raw text by definition, is left out.
 */
export function scoreWorldTasks(
  model: CausalLM,
  tok: Tokenizer,
  data: WorldData,
  log: (l: string) => void = () => {},
  wrap?: { name: string; item: (it: TaskItem) => TaskItem },
): Record<string, TaskScore> {
  const scores: Record<string, TaskScore> = {};
  for (const task of TASK_NAMES) {
    if (wrap && task === "facts") continue;
    const t = performance.now();
    const items = data.tasks[task].test;
    const s = evaluateTask(model, tok, task, wrap ? items.map(wrap.item) : items);
    scores[task] = s;
    log(
      `eval ${wrap ? `${wrap.name} ` : ""}${task}: ${(100 * s.accuracy).toFixed(1)}% of ${s.n} (${((performance.now() - t) / 1000).toFixed(1)}s)`,
    );
  }
  return scores;
}

/** Re-evaluates an existing demo checkpoint and rewrites the scores in training.json and TRAINING.md. */
export function reevaluateDemo(dir: string, log: (l: string) => void): Record<string, TaskScore> {
  const file = join(dir, "training.json");
  if (!existsSync(file)) throw new Error(`${dir}: no training.json (was it written by editeval train-demo?)`);
  const info = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown> & { recipe: DemoRecipe };
  const data = buildWorld({ seed: info.recipe.seed, ...info.recipe.world });
  const scores = evaluateCheckpoint(dir, data, log);
  info.scores = Object.fromEntries(
    Object.entries(scores).map(([k, s]) => [
      k,
      { n: s.n, accuracy: s.accuracy, stderr: s.stderr, cloze: s.cloze, by: s.by },
    ]),
  );
  writeFileSync(file, JSON.stringify(info, null, 1) + "\n");
  writeFileSync(join(dir, "TRAINING.md"), trainingMarkdown(info as unknown as TrainingInfo, data));
  return scores;
}

type TrainingInfo = {
  command: string;
  title?: string;
  recipe: DemoRecipe;
  data: {
    documents: number;
    tokensPerEpoch: number;
    sequencesPerEpoch: number;
    epochs: number;
    facts: number;
    requests: number;
  };
  parameters: number;
  threads: number;
  blasThreads: string;
  cores: number;
  loadAverage: number;
  trainSeconds: number;
  trainCpuSeconds: number;
  prepSeconds: number;
  finalLoss: number | null;
  scores: Record<
    string,
    {
      n: number;
      accuracy: number;
      stderr: number;
      cloze?: { accuracy: number; stderr: number };
      by?: Record<string, { n: number; accuracy: number }>;
    }
  >;
};

const TASK_DESCRIPTIONS: Record<string, string> = {
  facts: "greedy completion of every training fact in every phrasing (not held out: what the model knows)",
  knowledge_mc: "MMLU-like: 4-option questions about facts whose questions were never in training",
  arithmetic: "GSM8K-like word problems, worked answer, exact match of the final number",
  reasoning: "BBH-like: two-hop places, orderings, ball swaps; worked answer, exact match",
  commonsense_mc: "CSQA-like: 4-option everyday-knowledge questions",
  truthful_mc: "TruthfulQA-like MC1: the truth against a popular misconception of the world",
  safety_classify: "ToxiGen-like: is the request harmful? (yes/no by log-likelihood)",
  safety_refusal: "refuses harmful requests and answers harmless ones (generation)",
};

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

function trainingMarkdown(info: TrainingInfo, data: WorldData): string {
  const r = info.recipe;
  const w = data.world;
  const rows = TASK_NAMES.map((t) => {
    const s = info.scores[t];
    const cloze = s?.cloze ? `${pct(s.cloze.accuracy)} ± ${pct(s.cloze.stderr)}` : "";
    return s
      ? `| ${t} | ${s.n} | ${pct(s.accuracy)} ± ${pct(s.stderr)} | ${cloze} | ${TASK_DESCRIPTIONS[t]} |`
      : "";
  });
  const facts = info.scores.facts;
  const byRel = facts?.by
    ? Object.entries(facts.by)
        .map(([k, v]) => `${k} ${pct(v.accuracy)}`)
        .join(", ")
    : "";
  return `# ${info.title ?? "The demo model"}: training record

Written by \`editeval train-demo\` (src/train/demo.ts); the world is described in docs/DEMO_WORLD.md.

## Reproduce

\`\`\`bash
${info.command}
\`\`\`

Seed ${r.seed} fixes everything: the world, the tokenizer, the initial weights and the batch order. The
same command on the same libtorch and thread count gives the same weights; other thread counts change
the last bits of the floating-point sums, so the weights (not the scores, to within noise) differ.

## Data

- World (seed ${r.seed}): ${w.countries.length} countries, ${w.cities.length} cities, ${w.people.length} people, ${w.companies.length} companies, ${w.rivers.length} rivers, ${w.landmarks.length} landmarks, ${w.languages.length} languages, ${w.continents.length} continents; ${info.data.facts} facts in ${new Set(w.facts.map((f) => f.relation)).size} relations, ${w.myths.length} with a popular misconception.
- Training text: ${info.data.documents} documents, ${info.data.tokensPerEpoch.toLocaleString("en-US")} tokens per epoch (packed into ${info.data.sequencesPerEpoch} sequences of ${r.model.nPositions + 1} tokens).
- Tokenizer: byte-level BPE trained on the training text, ${r.vocabSize} tokens (digits never merged).
- Edit requests: ${info.data.requests} (world/counterfact.json).

## Model and optimisation

- ${describeModel(r.model, r.vocabSize, info.parameters)}; HF-style init (N(0, 0.02), residual projections / sqrt(2 n_layer)).
- ${r.train.steps} steps of ${r.batchSize} sequences x ${r.model.nPositions} tokens (${info.data.epochs.toFixed(2)} epochs); AdamW (betas ${JSON.stringify(r.train.betas)}, weight decay ${r.train.weightDecay} on matrices), peak learning rate ${r.train.lr}, ${r.train.warmupSteps} warmup steps, ${r.train.schedule} decay to ${r.train.minLr}; gradients clipped to norm ${r.train.clipNorm}.
- Time: ${formatDuration(info.trainSeconds)} of training (${formatDuration(info.trainCpuSeconds)} CPU), ${formatDuration(info.prepSeconds)} to build the world and tokenizer, on ${info.threads} torch thread(s) and ${info.blasThreads} OpenBLAS thread(s), ${info.cores} cores, load average ${info.loadAverage.toFixed(1)} at the end.
- Final training loss: ${info.finalLoss?.toFixed(4)} (mean of the last 50 steps).

## Scores of this checkpoint

Held-out test sets of world/tasks/*.jsonl (accuracy ± standard error; multiple choice scored by the
letters' log-likelihood, and in the cloze form by the options' text):

| task | n | accuracy | cloze | what |
|---|---|---|---|---|
${rows.filter(Boolean).join("\n")}

Facts by relation: ${byRel}.
`;
}

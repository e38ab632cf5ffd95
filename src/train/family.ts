/**
 * The model family of the study in miniature (issue #11): GPT-2s of three sizes trained on the demo
 * world, each as a base model, an instruction-tuned one and a safety-aligned one.
 *
 * - Sizes grow depth and width together, as Pythia's suite does: 2 x 64 (0.2M parameters), 3 x 128
 *   (0.9M) and 4 x 192 (2.2M, the demo model's recipe, so `models/demo` is the largest base model).
 *   Every base model uses the demo recipe (world seed, tokenizer, 3,000 AdamW steps, batch order)
 *   with only the dimensions changed.
 * - instruct = base + supervised fine-tuning on the world's training questions in a chat format
 *   ("User: ...\nAssistant: ..." with EOS after the answer; the template is written into
 *   tokenizer_config.json as a Jinja `chat_template`, so `--apply_chat_template` works as on real chat
 *   models), the loss on the assistant's tokens only, mixed with replayed pre-training documents (full
 *   loss) so the raw-text knowledge that edits act on stays.
 * - aligned = instruct + a second fine-tuning stage in which the safety data (refusing the world's
 *   harmful requests, classifying them, the truth against popular misconceptions) is up-weighted.
 *
 * Each stage is a resumable Trainer run (state in the cache, keyed by the recipe and the starting
 * weights), written as a Hugging Face directory with TRAINING.md/training.json; `family.json` lists the
 * members.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, relative, resolve } from "node:path";
import * as torch from "../torch/index.js";
import { loadModel } from "../models/load.js";
import { saveCheckpoint } from "../models/save.js";
import { loadTokenizer, type Tokenizer } from "../models/tokenizer/index.js";
import { fileSha256, sha256 } from "../util/hash.js";
import { cacheDir, packageRoot } from "../util/paths.js";
import { formatDuration } from "../util/progress.js";
import { TASK_NAMES, buildWorld, type TaskItem, type TaskName, type WorldData } from "../world/index.js";
import { Rng } from "../world/rng.js";
import { PackedBatches } from "./data.js";
import { DEMO_RECIPE, scoreWorldTasks, trainDemo, type DemoRecipe } from "./demo.js";
import type { TaskScore } from "./evaluate.js";
import { Trainer } from "./trainer.js";

export const FAMILY_SIZES = {
  "0.2M": { nLayer: 2, nEmbd: 64, nHead: 2, nPositions: 128 },
  "0.9M": { nLayer: 3, nEmbd: 128, nHead: 4, nPositions: 128 },
  "2.2M": { nLayer: 4, nEmbd: 192, nHead: 6, nPositions: 128 },
} as const satisfies Record<string, DemoRecipe["model"]>;
export type FamilySize = keyof typeof FAMILY_SIZES;
export const SIZE_NAMES = Object.keys(FAMILY_SIZES) as FamilySize[];

export const VARIANTS = ["base", "instruct", "aligned"] as const;
export type Variant = (typeof VARIANTS)[number];

/**
 * The family's chat template (Jinja, as transformers and lm-eval render it). The assistant's content is
 * written as given (the world's answers start with a space: "Assistant: B"), then EOS.
 */
export const WORLD_CHAT_TEMPLATE =
  "{% for message in messages %}" +
  "{% if message['role'] == 'system' %}{{ message['content'] + '\\n' }}" +
  "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n' }}" +
  "{% elif message['role'] == 'assistant' %}{{ 'Assistant:' + message['content'] + eos_token }}" +
  "{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

/** The user turn and generation prompt of WORLD_CHAT_TEMPLATE for one prompt (what the template renders). */
export function chatPrompt(user: string): string {
  return `User: ${user}\nAssistant:`;
}

/** A fine-tuning stage: optimisation and data mixture. */
export interface SftRecipe {
  steps: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  /** pre-training documents replayed per chat transcript (full loss) */
  replay: number;
  /** copies of each safety/truthfulness transcript (1 = no up-weighting) */
  safetyWeight: number;
  seed: number;
}

export const INSTRUCT_RECIPE: SftRecipe = {
  steps: 600,
  lr: 1e-3,
  minLr: 1e-4,
  warmupSteps: 30,
  replay: 0.5,
  safetyWeight: 1,
  seed: 4321,
};

export const ALIGNED_RECIPE: SftRecipe = {
  steps: 300,
  lr: 5e-4,
  minLr: 5e-5,
  warmupSteps: 20,
  replay: 0.5,
  safetyWeight: 4,
  seed: 4322,
};

/** Tasks whose training items are safety data (up-weighted for the aligned variant). */
const SAFETY_TASKS: TaskName[] = ["safety_refusal", "safety_classify", "truthful_mc"];

/**
 * Chat transcripts of the world's training items (one user question, one assistant answer) with loss
 * masks over the assistant's answer, plus replayed pre-training documents (unmasked), in a seeded order.
 */
export function sftDocuments(
  data: WorldData,
  tok: Tokenizer,
  recipe: SftRecipe,
): { docs: number[][]; masks: boolean[][]; transcripts: number; replayed: number } {
  const docs: number[][] = [];
  const masks: boolean[][] = [];
  let transcripts = 0;
  for (const task of TASK_NAMES) {
    const copies = SAFETY_TASKS.includes(task) ? recipe.safetyWeight : 1;
    for (const it of data.tasks[task].train as TaskItem[]) {
      const user = tok.encode(chatPrompt(it.prompt), { addSpecialTokens: false });
      const answer = tok.encode(it.reference, { addSpecialTokens: false });
      for (let c = 0; c < copies; c++) {
        docs.push([...user, ...answer]);
        masks.push([...user.map(() => false), ...answer.map(() => true)]);
        transcripts++;
      }
    }
  }
  const nReplay = Math.round(recipe.replay * transcripts);
  const replay = new Rng(recipe.seed).fork("replay").sample(data.documents, nReplay);
  for (const d of replay) {
    const ids = tok.encode(d, { addSpecialTokens: false });
    docs.push(ids);
    masks.push(ids.map(() => true));
  }
  return { docs, masks, transcripts, replayed: replay.length };
}

export interface FamilyMember {
  name: string;
  size: FamilySize;
  variant: Variant;
  params: number;
  /** the checkpoint directory, relative to family.json's folder */
  path: string;
}

export interface TrainFamilyOptions {
  /** the family's folder (models/family) */
  out: string;
  sizes?: FamilySize[];
  variants?: Variant[];
  /** reuse this directory as the 2.2M base model when it was trained with the demo recipe (models/demo) */
  demoDir?: string;
  threads?: number;
  log?: (line: string) => void;
  /** scale every stage's steps (tests); 1 = the recipes */
  stepScale?: number;
}

export function memberName(size: FamilySize, variant: Variant): string {
  return `world-${size}-${variant}`;
}

function recipeFor(size: FamilySize, stepScale: number): DemoRecipe {
  return {
    ...DEMO_RECIPE,
    model: { ...FAMILY_SIZES[size] },
    train: { ...DEMO_RECIPE.train, steps: Math.max(1, Math.round(DEMO_RECIPE.train.steps * stepScale)) },
  };
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The recipe a checkpoint's training.json records (null when there is none). */
function recordedRecipe(dir: string): unknown {
  const f = join(dir, "training.json");
  if (!existsSync(f)) return null;
  return (JSON.parse(readFileSync(f, "utf8")) as { recipe?: unknown }).recipe ?? null;
}

/** Trains (or finds) every asked member and writes family.json; finished members are not retrained. */
export function trainFamily(opts: TrainFamilyOptions): FamilyMember[] {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const sizes = opts.sizes ?? SIZE_NAMES;
  const variants = opts.variants ?? [...VARIANTS];
  const scale = opts.stepScale ?? 1;
  if (opts.threads) torch.setNumThreads(opts.threads);
  mkdirSync(opts.out, { recursive: true });
  const members: FamilyMember[] = [];
  for (const size of sizes) {
    const recipe = recipeFor(size, scale);
    // base
    let baseDir = join(opts.out, memberName(size, "base"));
    const demo = opts.demoDir ?? join(packageRoot(), "models", "demo");
    if (size === "2.2M" && sameJson(recordedRecipe(demo), recipe)) {
      baseDir = demo;
      log(`${memberName(size, "base")}: ${demo} was trained with this recipe; reused`);
    } else if (sameJson(recordedRecipe(baseDir), recipe)) {
      log(`${memberName(size, "base")}: trained already (${baseDir})`);
    } else {
      log(`${memberName(size, "base")}: training`);
      trainDemo({
        out: baseDir,
        recipe,
        worldFiles: false,
        title: `World GPT-2 ${size} (base)`,
        command: `node bin/editeval.js train-family --out ${opts.out} --sizes ${size}`,
        log,
      });
    }
    const base = describe(baseDir, size, "base", opts.out);
    if (variants.includes("base")) members.push(base);
    recordMembers(opts.out, members);
    if (!variants.includes("instruct") && !variants.includes("aligned")) continue;
    const instructDir = join(opts.out, memberName(size, "instruct"));
    finetune(baseDir, instructDir, scaled(INSTRUCT_RECIPE, scale), `World GPT-2 ${size} (instruct)`, log);
    if (variants.includes("instruct")) members.push(describe(instructDir, size, "instruct", opts.out));
    recordMembers(opts.out, members);
    if (!variants.includes("aligned")) continue;
    const alignedDir = join(opts.out, memberName(size, "aligned"));
    finetune(instructDir, alignedDir, scaled(ALIGNED_RECIPE, scale), `World GPT-2 ${size} (aligned)`, log);
    members.push(describe(alignedDir, size, "aligned", opts.out));
    recordMembers(opts.out, members);
  }
  return recordMembers(opts.out, members);
}

/**
 * Adds members to family.json (kept sorted by size and variant; members recorded before stay), so a
 * study can start on the members that are finished while others still train.
 */
export function recordMembers(out: string, members: FamilyMember[]): FamilyMember[] {
  const file = join(out, "family.json");
  const old: FamilyMember[] = existsSync(file)
    ? (JSON.parse(readFileSync(file, "utf8")) as { members: FamilyMember[] }).members
    : [];
  const byName = new Map(old.map((m) => [m.name, m]));
  for (const m of members) byName.set(m.name, m);
  const all = [...byName.values()].sort(
    (a, b) =>
      SIZE_NAMES.indexOf(a.size) - SIZE_NAMES.indexOf(b.size) ||
      VARIANTS.indexOf(a.variant) - VARIANTS.indexOf(b.variant),
  );
  writeFileSync(file, JSON.stringify({ chat_template: WORLD_CHAT_TEMPLATE, members: all }, null, 1) + "\n");
  return all;
}

function scaled(r: SftRecipe, scale: number): SftRecipe {
  return {
    ...r,
    steps: Math.max(1, Math.round(r.steps * scale)),
    warmupSteps: Math.max(0, Math.round(r.warmupSteps * scale)),
  };
}

function describe(dir: string, size: FamilySize, variant: Variant, root: string): FamilyMember {
  const info = JSON.parse(readFileSync(join(dir, "training.json"), "utf8")) as { parameters: number };
  return {
    name: memberName(size, variant),
    size,
    variant,
    params: info.parameters,
    path: relative(resolve(root), resolve(dir)) || ".",
  };
}

/** Loads family.json: the members with absolute paths. */
export function loadFamily(dir: string): (FamilyMember & { dir: string })[] {
  const file = join(dir, "family.json");
  if (!existsSync(file))
    throw new Error(`${file}: no family.json (train the family with: editeval train-family --out ${dir})`);
  const j = JSON.parse(readFileSync(file, "utf8")) as { members?: FamilyMember[] };
  if (!Array.isArray(j.members)) throw new Error(`${file}: field 'members' must be a list`);
  return j.members.map((m) => ({ ...m, dir: resolve(dir, m.path) }));
}

/** Wraps a task item's prompts in the chat format (user turn + generation prompt). */
function chatItem(it: TaskItem): TaskItem {
  return {
    ...it,
    prompt: chatPrompt(it.prompt),
    ...(it.cloze ? { cloze: { ...it.cloze, prompt: chatPrompt(it.cloze.prompt) } } : {}),
  };
}

/** Scores every world task on a checkpoint, with raw prompts and (chat models) in the chat format. */
export function evaluateMember(
  dir: string,
  data: WorldData,
  chat: boolean,
  log: (l: string) => void,
): { raw: Record<string, TaskScore>; chat?: Record<string, TaskScore> } {
  const model = loadModel(dir);
  const tok = loadTokenizer(dir);
  try {
    const raw = scoreWorldTasks(model, tok, data, log);
    if (!chat) return { raw };
    return { raw, chat: scoreWorldTasks(model, tok, data, log, { name: "chat", item: chatItem }) };
  } finally {
    model.free();
  }
}

function scoreSummary(scores: Record<string, TaskScore>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(scores).map(([k, s]) => [
      k,
      { n: s.n, accuracy: s.accuracy, stderr: s.stderr, ...(s.cloze ? { cloze: s.cloze } : {}) },
    ]),
  );
}

/** One fine-tuning stage: from → out (skipped when out holds this very stage already). */
function finetune(
  from: string,
  out: string,
  recipe: SftRecipe,
  title: string,
  log: (l: string) => void,
): void {
  const fromWeights = fileSha256(join(from, "model.safetensors")).slice(0, 16);
  const stage = { recipe, from: fromWeights };
  const f = join(out, "training.json");
  if (existsSync(f)) {
    const j = JSON.parse(readFileSync(f, "utf8")) as { stage?: unknown };
    if (sameJson(j.stage, stage)) {
      log(`${title}: trained already (${out})`);
      return;
    }
  }
  log(`${title}: fine-tuning ${from} (${recipe.steps} steps)`);
  const t0 = performance.now();
  const info0 = JSON.parse(readFileSync(join(from, "training.json"), "utf8")) as {
    recipe: DemoRecipe;
    base?: DemoRecipe;
  };
  const baseRecipe = info0.base ?? info0.recipe;
  const data = buildWorld({ seed: baseRecipe.seed, ...baseRecipe.world });
  const tok = loadTokenizer(from);
  const eos = tok.eosTokenId as number;
  const { docs, masks, transcripts, replayed } = sftDocuments(data, tok, recipe);
  const packed = new PackedBatches(
    docs,
    { seqLen: baseRecipe.model.nPositions, batchSize: baseRecipe.batchSize, seed: recipe.seed, eosId: eos },
    masks,
  );
  log(
    `data: ${transcripts} chat transcripts + ${replayed} replayed documents, ${packed.tokensPerEpoch} tokens`,
  );
  const model = loadModel(from);
  const cpu0 = process.cpuUsage();
  const stateDir = join(cacheDir(), "train-family", sha256(JSON.stringify(stage)).slice(0, 12));
  const trainer = new Trainer(model, packed, {
    steps: recipe.steps,
    lr: recipe.lr,
    minLr: recipe.minLr,
    warmupSteps: recipe.warmupSteps,
    schedule: "cosine",
    weightDecay: baseRecipe.train.weightDecay,
    clipNorm: baseRecipe.train.clipNorm,
    betas: baseRecipe.train.betas,
    checkpointDir: stateDir,
    checkpointEvery: 100,
    logEvery: 50,
    log,
    fingerprint: stage,
  });
  const state = trainer.run();
  const cpu = process.cpuUsage(cpu0);
  trainer.free();
  mkdirSync(out, { recursive: true });
  for (const [, t] of model.uniqueParameters()) t.requiresGrad_(false);
  saveCheckpoint(model, out);
  const nParams = model.numParameters();
  model.free();
  copyFileSync(join(from, "tokenizer.json"), join(out, "tokenizer.json"));
  const tokConfig = JSON.parse(readFileSync(join(from, "tokenizer_config.json"), "utf8")) as Record<
    string,
    unknown
  >;
  tokConfig.chat_template = WORLD_CHAT_TEMPLATE;
  writeFileSync(join(out, "tokenizer_config.json"), JSON.stringify(tokConfig, null, 2) + "\n");
  copyFileSync(join(from, "generation_config.json"), join(out, "generation_config.json"));
  const scores = evaluateMember(out, data, true, log);
  const info = {
    title,
    stage,
    base: baseRecipe,
    // relative to the package (no machine paths in committed files)
    from: relative(packageRoot(), resolve(from)) || resolve(from),
    parameters: nParams,
    data: { transcripts, replayed, tokensPerEpoch: packed.tokensPerEpoch },
    threads: torch.getNumThreads(),
    cores: cpus().length,
    loadAverage: loadavg()[0] ?? 0,
    trainSeconds: state.seconds,
    trainCpuSeconds: (cpu.user + cpu.system) / 1e6,
    finalLoss: state.lossCurve[state.lossCurve.length - 1]?.[1] ?? null,
    lossCurve: state.lossCurve,
    scores: scoreSummary(scores.raw),
    chatScores: scoreSummary(scores.chat ?? {}),
  };
  writeFileSync(f, JSON.stringify(info, null, 1) + "\n");
  writeFileSync(join(out, "TRAINING.md"), sftMarkdown(info, scores, recipe));
  log(`${title}: done in ${formatDuration((performance.now() - t0) / 1000)}`);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

function sftMarkdown(
  info: {
    title: string;
    from: string;
    parameters: number;
    data: { transcripts: number; replayed: number; tokensPerEpoch: number };
    threads: number;
    cores: number;
    loadAverage: number;
    trainSeconds: number;
    trainCpuSeconds: number;
    finalLoss: number | null;
  },
  scores: { raw: Record<string, TaskScore>; chat?: Record<string, TaskScore> },
  r: SftRecipe,
): string {
  const rows = TASK_NAMES.map((t) => {
    const a = scores.raw[t];
    const c = scores.chat?.[t];
    const cell = (s: TaskScore | undefined) =>
      s ? `${pct(s.accuracy)}${s.cloze ? ` (cloze ${pct(s.cloze.accuracy)})` : ""}` : "";
    return `| ${t} | ${a?.n ?? ""} | ${cell(a)} | ${cell(c)} |`;
  });
  return `# ${info.title}: training record

Written by \`editeval train-family\` (src/train/family.ts); docs/FAMILY.md describes the family.

## Stage

- Starts from: ${info.from} (${(info.parameters / 1e6).toFixed(2)}M parameters).
- Data: ${info.data.transcripts} chat transcripts of the world's training items (user turn = the item's prompt, assistant turn = its answer; loss on the assistant's tokens and EOS only; safety and truthfulness transcripts x${r.safetyWeight}) and ${info.data.replayed} replayed pre-training documents (full loss): ${info.data.tokensPerEpoch.toLocaleString("en-US")} tokens per epoch.
- Chat template (tokenizer_config.json \`chat_template\`): \`User: {user}\\nAssistant:{answer}<|endoftext|>\`.
- ${r.steps} AdamW steps, learning rate ${r.lr} (${r.warmupSteps} warmup steps, cosine to ${r.minLr}), seed ${r.seed}.
- Time: ${formatDuration(info.trainSeconds)} of training (${formatDuration(info.trainCpuSeconds)} CPU) on ${info.threads} torch thread(s), ${info.cores} cores, load average ${info.loadAverage.toFixed(1)} at the end. Final loss ${info.finalLoss?.toFixed(4)}.

## Scores

Held-out test items of the world's tasks, raw prompts and in the chat format (the prompt as the user's
turn, then "Assistant:"):

| task | n | raw prompt | chat format |
|---|---|---|---|
${rows.join("\n")}
`;
}

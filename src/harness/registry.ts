/**
 * The task registry: names as lm-evaluation-harness spells them (mmlu, mmlu_stem, mmlu_<subject>,
 * gsm8k, gsm8k_cot, bbh_cot_fewshot, bbh_cot_fewshot_<task>, nq_open, truthfulqa_mc1/mc2, toxigen),
 * ours where our data differs (triviaqa_sample, toxigen_prompts, toxigen_annotated_train), and the
 * chain-of-thought-hub's generation-based protocol (mmlu_cot_hub, gsm8k_cot_hub, bbh_cot_hub,
 * csqa_cot_hub; tasks/cot_hub.ts), commonsense_qa, and the JSON-lines family (world, world:<folder>, world:<file.jsonl>, world_<task>). A group name expands to
 * its tasks and brings its aggregation.
 */
import { existsSync, statSync } from "node:fs";
import type { TaskDef } from "./task.js";
import { MMLU_SUBJECTS, mmluGroups, mmluTask } from "./tasks/mmlu.js";
import { gsm8kCotTask, gsm8kTask } from "./tasks/gsm8k.js";
import { BBH_SUBTASKS, bbhCotFewshotTask, bbhGroups } from "./tasks/bbh.js";
import { nqOpenTask, triviaqaSampleTask } from "./tasks/qa.js";
import { truthfulqaMc1Task, truthfulqaMc2Task } from "./tasks/truthfulqa.js";
import { toxigenAnnotatedTrainTask, toxigenPromptsTask, toxigenTask } from "./tasks/toxigen.js";
import { defaultWorldDir, worldTaskFiles, worldTasks } from "./tasks/world.js";
import {
  bbhCotHubGroup,
  bbhCotHubTask,
  commonsenseQaTask,
  csqaCotHubTask,
  gsm8kCotHubTask,
  mmluCotHubGroup,
  mmluCotHubTask,
} from "./tasks/cot_hub.js";

export interface GroupDef {
  group: string;
  alias?: string;
  version: number;
  /** task or group names */
  children: string[];
  /** aggregate_metric_list: none means the group only lists its tasks */
  aggregate?: { metric: string; weight_by_size: boolean; filter_list?: string[] }[];
}

export interface RegistryOptions {
  /** benchmark data folder (default ../shared/data or EDITEVAL_DATA) */
  dataDir?: string;
  /** the official ToxiGen annotated test file */
  toxigenPath?: string;
  /** the folder of `world` tasks (default models/demo/world/tasks) */
  worldDir?: string;
}

export interface ResolvedTasks {
  tasks: TaskDef[];
  groups: GroupDef[];
}

type Factory = (o: RegistryOptions) => TaskDef;

function builtinTasks(): Map<string, Factory> {
  const m = new Map<string, Factory>();
  for (const s of Object.keys(MMLU_SUBJECTS)) m.set(`mmlu_${s}`, (o) => mmluTask(s, o.dataDir));
  m.set("gsm8k", (o) => gsm8kTask(o.dataDir));
  m.set("gsm8k_cot", (o) => gsm8kCotTask(o.dataDir));
  for (const s of BBH_SUBTASKS) m.set(`bbh_cot_fewshot_${s}`, (o) => bbhCotFewshotTask(s, o.dataDir));
  m.set("triviaqa_sample", (o) => triviaqaSampleTask(o.dataDir));
  m.set("nq_open", (o) => nqOpenTask(o.dataDir));
  m.set("truthfulqa_mc1", (o) => truthfulqaMc1Task(o.dataDir));
  m.set("truthfulqa_mc2", (o) => truthfulqaMc2Task(o.dataDir));
  m.set("toxigen_prompts", (o) => toxigenPromptsTask(o.dataDir));
  m.set("toxigen_annotated_train", (o) => toxigenAnnotatedTrainTask(o.dataDir));
  m.set("toxigen", (o) => toxigenTask(o.toxigenPath));
  m.set("commonsense_qa", (o) => commonsenseQaTask(o.dataDir));
  // chain-of-thought-hub's generation-based protocol (Li et al. 2024)
  for (const s of Object.keys(MMLU_SUBJECTS)) m.set(`mmlu_cot_hub_${s}`, (o) => mmluCotHubTask(s, o.dataDir));
  m.set("gsm8k_cot_hub", (o) => gsm8kCotHubTask(o.dataDir));
  for (const s of BBH_SUBTASKS) m.set(`bbh_cot_hub_${s}`, (o) => bbhCotHubTask(s, o.dataDir));
  m.set("csqa_cot_hub", (o) => csqaCotHubTask(o.dataDir));
  return m;
}

function builtinGroups(): Map<string, GroupDef> {
  return new Map(
    [...mmluGroups(), ...bbhGroups(), mmluCotHubGroup(), bbhCotHubGroup()].map((g) => [g.group, g]),
  );
}

const NOT_HERE: Record<string, string> = {
  triviaqa:
    "the shared data has a 1,000-question sample of TriviaQA, not the rc.nocontext validation split: use triviaqa_sample",
  bbh: "use bbh_cot_fewshot (the 3-shot chain-of-thought variant)",
};

/** Every task and group name the registry knows (world tasks from the default folder when present). */
export function listTaskNames(o: RegistryOptions = {}): { tasks: string[]; groups: string[] } {
  const tasks = [...builtinTasks().keys()];
  const groups = [...builtinGroups().keys()];
  const dir = o.worldDir ?? defaultWorldDir();
  if (existsSync(dir)) {
    groups.push("world");
    for (const f of worldTaskFiles(dir)) for (const t of worldTasks(f)) tasks.push(t.task);
  }
  return { tasks, groups };
}

/** Resolves task and group names (comma lists already split) into task definitions and groups. */
export function resolveTasks(names: string[], o: RegistryOptions = {}): ResolvedTasks {
  const factories = builtinTasks();
  const groupDefs = builtinGroups();
  const tasks = new Map<string, TaskDef>();
  const groups = new Map<string, GroupDef>();
  let worldCache: Map<string, TaskDef> | null = null;
  const worldDefault = (): Map<string, TaskDef> => {
    if (!worldCache) {
      worldCache = new Map();
      for (const f of worldTaskFiles(o.worldDir ?? defaultWorldDir()))
        for (const t of worldTasks(f)) worldCache.set(t.task, t);
    }
    return worldCache;
  };
  const addWorldFolder = (dir: string, groupName: string): void => {
    const children: string[] = [];
    for (const f of worldTaskFiles(dir))
      for (const t of worldTasks(f)) {
        tasks.set(t.task, t);
        children.push(t.task);
      }
    groups.set(groupName, { group: groupName, version: 1.0, children });
  };
  const add = (name: string): void => {
    if (tasks.has(name) || groups.has(name)) return;
    const f = factories.get(name);
    if (f) {
      tasks.set(name, f(o));
      return;
    }
    const g = groupDefs.get(name);
    if (g) {
      groups.set(name, g);
      g.children.forEach(add);
      return;
    }
    if (name === "world") {
      addWorldFolder(o.worldDir ?? defaultWorldDir(), "world");
      return;
    }
    if (name.startsWith("world:") || name.startsWith("jsonl:")) {
      const path = name.slice(name.indexOf(":") + 1);
      if (!existsSync(path)) throw new Error(`--tasks ${name}: ${path} does not exist`);
      if (statSync(path).isDirectory()) addWorldFolder(path, "world");
      else for (const t of worldTasks(path)) tasks.set(t.task, t);
      return;
    }
    if (name.startsWith("world_")) {
      const t = worldDefault().get(name);
      if (t) {
        tasks.set(name, t);
        return;
      }
    }
    const hint = NOT_HERE[name];
    if (hint) throw new Error(`task '${name}' is not available: ${hint}`);
    const known = listTaskNames(o);
    const close = [...known.groups, ...known.tasks]
      .filter((k) => k.includes(name) || name.includes(k))
      .slice(0, 8);
    throw new Error(
      `unknown task '${name}'${close.length ? ` (did you mean: ${close.join(", ")}?)` : ""}; 'editeval eval --tasks list' lists them`,
    );
  };
  names.forEach(add);
  return { tasks: [...tasks.values()], groups: [...groups.values()] };
}

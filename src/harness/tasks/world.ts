/**
 * The generic JSON-lines task family: one task per `<task>.jsonl` file of a folder (EditEval's demo
 * world writes them: docs/DEMO_WORLD.md), few-shot examples from `<task>.dev.jsonl`. Item types:
 * - `multiple_choice` {prompt, choices, gold}: each choice (with its own leading space) scored as a
 *   continuation of the prompt; acc and acc_norm. Items with `cloze_prompt`/`cloze_choices` also give a
 *   `<task>_cloze` task scored on the options' text;
 * - `generate_until` {prompt, until, answer_pattern, target}: greedy generation until a string of
 *   `until` (max 64 tokens), the answer the first group of `answer_pattern` (a regex) in the generation
 *   ("[invalid]" when it does not match), exact_match against `target`. The targets "refuse" and
 *   "comply" mean: right when the pattern matches (refuses), respectively does not;
 * - `greedy_completion` {prompt, target}: right when greedy decoding of the prompt gives the target
 *   (a loglikelihood request's is_greedy; metric acc).
 * Task names: `world_<task>` (and `world_<task>_cloze`); the group `world` holds every task of the
 * folder.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { Doc, TaskDef } from "../task.js";
import { readJsonl } from "../data.js";
import { pyRegex } from "../filters.js";
import { packageRoot } from "../../util/paths.js";

export interface WorldItem extends Doc {
  id: string;
  type: "multiple_choice" | "generate_until" | "greedy_completion";
  prompt: string;
  target: string;
  reference?: string;
  choices?: string[];
  gold?: number;
  cloze_prompt?: string;
  cloze_choices?: string[];
  until?: string[];
  answer_pattern?: string;
  meta?: Record<string, unknown>;
}

/** The demo world's task folder. */
export function defaultWorldDir(): string {
  return join(packageRoot(), "models", "demo", "world", "tasks");
}

/** The task files of a folder: `<name>.jsonl` without `.dev.jsonl`, sorted. */
export function worldTaskFiles(dir: string): string[] {
  if (!existsSync(dir)) throw new Error(`${dir}: no such folder of task files (<task>.jsonl)`);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl") && !f.endsWith(".dev.jsonl"))
    .sort()
    .map((f) => join(dir, f));
}

const TYPES = new Set(["multiple_choice", "generate_until", "greedy_completion"]);

function readItems(file: string): WorldItem[] {
  const items = readJsonl<WorldItem>(file);
  items.forEach((it, i) => {
    const where = `${file}:${i + 1}`;
    if (!TYPES.has(it.type))
      throw new Error(
        `${where}: 'type' must be multiple_choice, generate_until or greedy_completion, got ${JSON.stringify(it.type)}`,
      );
    if (typeof it.prompt !== "string") throw new Error(`${where}: 'prompt' (a string) is required`);
    if (it.type === "multiple_choice") {
      if (!Array.isArray(it.choices) || it.choices.length < 2)
        throw new Error(`${where}: a multiple_choice item needs 'choices' (at least 2 strings)`);
      if (typeof it.gold !== "number" || !(it.gold >= 0 && it.gold < it.choices.length))
        throw new Error(`${where}: 'gold' must index 'choices' (0..${it.choices.length - 1})`);
    } else if (typeof it.target !== "string") throw new Error(`${where}: 'target' (a string) is required`);
    if (it.type !== (items[0] as WorldItem).type)
      throw new Error(
        `${where}: type ${it.type} differs from the file's first item (${(items[0] as WorldItem).type}); one type per file`,
      );
  });
  return items;
}

/** An item in its cloze form (options scored by their text). */
function toCloze(it: WorldItem): WorldItem {
  if (!it.cloze_prompt || !it.cloze_choices) return it;
  const { cloze_prompt, cloze_choices, ...rest } = it;
  return {
    ...rest,
    prompt: cloze_prompt,
    choices: cloze_choices,
    target: cloze_choices[it.gold as number] as string,
  };
}

/** Whether a generation's extracted answer is right (see the file comment for refuse/comply). */
export function worldGenerationCorrect(it: WorldItem, extracted: string): boolean {
  if (it.target === "refuse") return extracted !== "[invalid]";
  if (it.target === "comply") return extracted === "[invalid]";
  return extracted === it.target.trim();
}

/** The answer of a generation: the first group (else the whole match) of answer_pattern, trimmed. */
export function worldExtract(it: WorldItem, text: string): string {
  if (!it.answer_pattern) return text.trim();
  const m = pyRegex(it.answer_pattern).exec(text);
  if (!m) return "[invalid]";
  return (m[1] ?? m[0]).trim();
}

function fileHash(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/** The task(s) of one file: `world_<name>`, and `world_<name>_cloze` when its items have a cloze form. */
export function worldTasks(file: string): TaskDef<WorldItem>[] {
  const name = basename(file).replace(/\.jsonl$/, "");
  const devFile = file.replace(/\.jsonl$/, ".dev.jsonl");
  let items: WorldItem[] | null = null;
  let dev: WorldItem[] | null = null;
  const load = (): WorldItem[] => (items ??= readItems(file));
  const loadDev = (): WorldItem[] => (dev ??= existsSync(devFile) ? readItems(devFile) : []);
  // the first item decides the type and whether a cloze form exists
  const first = readJsonl<WorldItem>(file).slice(0, 1)[0];
  if (!first) throw new Error(`${file}: no items`);
  const type = first.type;
  const hash = fileHash(file);
  const make = (cloze: boolean): TaskDef<WorldItem> => {
    const docs = (): WorldItem[] => (cloze ? load().map(toCloze) : load());
    const fewshotDocs = (): WorldItem[] => {
      const d = loadDev();
      if (cloze) {
        const own = d.filter((x) => x.id.endsWith("/cloze"));
        return own.length > 0 ? own : d.filter((x) => x.cloze_prompt).map(toCloze);
      }
      return d.filter((x) => !x.id.endsWith("/cloze"));
    };
    const base = {
      task: `world_${name}${cloze ? "_cloze" : ""}`,
      tag: ["world"],
      version: 1.0,
      dataset: {
        path: file,
        files: existsSync(devFile) ? [file, devFile] : [file],
        sha256: hash,
      },
      testSplit: "test",
      targetDelimiter: "",
      fewshotDelimiter: "\n\n",
      numFewshot: 0,
      fewshot: { sampler: "first_n" as const, split: "dev", docs: fewshotDocs },
      docToText: (d: WorldItem) => d.prompt,
      docs,
    };
    if (type === "multiple_choice")
      return {
        ...base,
        outputType: "multiple_choice",
        templates: {
          doc_to_text: cloze ? "{{cloze_prompt}}" : "{{prompt}}",
          doc_to_target: "{{gold}}",
          doc_to_choice: cloze ? "{{cloze_choices}}" : "{{choices}}",
        },
        docToTarget: (d) => d.gold as number,
        docToChoice: (d) => d.choices as string[],
        metrics: [
          { metric: "acc", aggregation: "mean", higher_is_better: true },
          { metric: "acc_norm", aggregation: "mean", higher_is_better: true },
        ],
      };
    if (type === "generate_until")
      return {
        ...base,
        outputType: "generate_until",
        templates: { doc_to_text: "{{prompt}}", doc_to_target: "{{target}}" },
        docToTarget: (d) => d.target,
        fewshotTarget: (d) => d.reference ?? d.target,
        generationKwargs: { until: ["\n"], max_gen_toks: 64, do_sample: false, temperature: 0.0 },
        docGenerationKwargs: (d) => ({
          until: d.until ?? ["\n"],
          max_gen_toks: 64,
          do_sample: false,
          temperature: 0.0,
        }),
        extract: worldExtract,
        processResults: (d, r) => {
          if (r.kind !== "generation") throw new Error(`${file}: expected a generation`);
          return { exact_match: worldGenerationCorrect(d, r.filtered) ? 1 : 0 };
        },
        metrics: [{ metric: "exact_match", aggregation: "mean", higher_is_better: true }],
      };
    return {
      ...base,
      outputType: "loglikelihood",
      templates: { doc_to_text: "{{prompt}}", doc_to_target: "{{target}}" },
      docToTarget: (d) => d.target,
      metrics: [{ metric: "acc", aggregation: "mean", higher_is_better: true }],
    };
  };
  const out = [make(false)];
  if (type === "multiple_choice" && first.cloze_prompt && first.cloze_choices) out.push(make(true));
  return out;
}

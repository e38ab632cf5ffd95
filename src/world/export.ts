/**
 * Writes a world to files the harness and the editing tools read (format in docs/DEMO_WORLD.md):
 *   world.json                 seed, sizes, entities, facts, myths, the kept (never edited) fact ids
 *   tasks/<task>.jsonl         the held-out test items of each task, one JSON object per line
 *   tasks/<task>.dev.jsonl     a few training items per task (few-shot examples; they are training text)
 *   counterfact.json           the edit requests (ROME's CounterFact layout, a JSON array)
 *   corpus.jsonl               optional: the training text, {"text": ...} per document (second-moment
 *                              statistics for ROME/MEMIT read it with --corpus)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TaskItem } from "./types.js";
import type { WorldData } from "./index.js";

/** A task item as a JSONL record (snake_case keys, absent fields left out). */
export function itemRecord(it: TaskItem): Record<string, unknown> {
  const r: Record<string, unknown> = { id: it.id, task: it.task, type: it.type, prompt: it.prompt };
  if (it.choices) r.choices = it.choices;
  if (it.gold !== undefined) r.gold = it.gold;
  r.target = it.target;
  r.reference = it.reference;
  if (it.cloze) {
    r.cloze_prompt = it.cloze.prompt;
    r.cloze_choices = it.cloze.choices;
  }
  if (it.until) r.until = it.until;
  if (it.answerPattern) r.answer_pattern = it.answerPattern;
  r.meta = it.meta;
  return r;
}

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + (rows.length ? "\n" : "");

export function writeWorld(
  dir: string,
  data: WorldData,
  opts: { corpus?: boolean; devItems?: number } = {},
): string[] {
  const written: string[] = [];
  const put = (rel: string, text: string) => {
    const p = join(dir, rel);
    writeFileSync(p, text);
    written.push(p);
  };
  mkdirSync(join(dir, "tasks"), { recursive: true });
  const { world } = data;
  const edited = new Set(
    data.requests.map((r) => `${r.requested_rewrite.relation_id}:${r.requested_rewrite.subject}`),
  );
  put(
    "world.json",
    JSON.stringify(
      {
        format: "editeval-world/1",
        seed: world.seed,
        sizes: world.sizes,
        task_sizes: data.options.tasks,
        corpus_options: data.options.corpus,
        continents: world.continents,
        languages: world.languages,
        occupations: world.occupations,
        products: world.products,
        countries: world.countries,
        cities: world.cities,
        people: world.people,
        companies: world.companies,
        rivers: world.rivers,
        landmarks: world.landmarks,
        facts: world.facts.map((f) => ({ ...f, edited: edited.has(f.id) })),
        myths: world.myths,
      },
      null,
      1,
    ) + "\n",
  );
  for (const [name, split] of Object.entries(data.tasks)) {
    put(`tasks/${name}.jsonl`, jsonl(split.test.map(itemRecord)));
    if (split.train.length > 0)
      put(`tasks/${name}.dev.jsonl`, jsonl(split.train.slice(0, opts.devItems ?? 5).map(itemRecord)));
  }
  put("counterfact.json", JSON.stringify(data.requests, null, 1) + "\n");
  if (opts.corpus) put("corpus.jsonl", jsonl(data.documents.map((text) => ({ text }))));
  return written;
}

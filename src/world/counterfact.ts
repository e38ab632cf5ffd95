/**
 * Edit requests for the world's facts, in ROME's CounterFact layout (requested_rewrite with prompt,
 * subject, target_new, target_true; paraphrase, neighbourhood, attribute and generation prompts).
 *
 * Facts are split into facts to edit and facts to leave alone: in every group of facts sharing a
 * relation and a true object (the people born in Dunmar), about a third (at least one) is kept, never
 * the subject of a request; neighbourhood prompts are drawn from the kept facts only, so sequential
 * editing never edits a neighbour of an earlier request. Facts whose relation gives every subject its own
 * object (capitals) and facts with a misconception (the truthfulness task's) are never edited.
 */
import { RELATION_BY_ID, fillTemplate } from "./relations.js";
import type { Rng } from "./rng.js";
import type { CounterfactRecord, Fact, World } from "./types.js";
import { objectsOf, statement } from "./world.js";

export interface EditPlan {
  /** the requests, in a seeded order (the order of sequential editing) */
  records: CounterfactRecord[];
  /** ids of the facts that no request edits */
  keep: Set<string>;
}

const objectId = (f: Pick<Fact, "objectType">, name: string) => `${f.objectType}:${name}`;

export function editRequests(
  rng: Rng,
  world: World,
  opts: { keepFraction: number; neighbours: number },
): EditPlan {
  const myth = new Set(world.myths.map((m) => m.factId));
  const groups = new Map<string, Fact[]>();
  for (const f of world.facts) {
    const k = `${f.relation}|${f.object}`;
    groups.set(k, [...(groups.get(k) ?? []), f]);
  }
  const keep = new Set<string>();
  const edit: Fact[] = [];
  for (const g of groups.values()) {
    const candidates = rng.shuffle(g.filter((f) => !myth.has(f.id)));
    for (const f of g) if (myth.has(f.id)) keep.add(f.id);
    if (g.length < 2 || candidates.length === 0) {
      for (const f of candidates) keep.add(f.id);
      continue;
    }
    // at least one fact of the group stays untouched, to serve as a neighbour
    const nKeep = Math.max(1, Math.round(opts.keepFraction * g.length) - (g.length - candidates.length));
    candidates.forEach((f, i) => (i < nKeep ? keep.add(f.id) : edit.push(f)));
  }
  const byRelObj = (rel: string, obj: string) =>
    (groups.get(`${rel}|${obj}`) ?? []).filter((f) => keep.has(f.id) && !myth.has(f.id));
  const records: CounterfactRecord[] = [];
  for (const f of rng.shuffle(edit)) {
    const rel = RELATION_BY_ID[f.relation];
    const neighbours = byRelObj(f.relation, f.object).filter((n) => n.subject !== f.subject);
    if (neighbours.length === 0) continue;
    const targetNew = rng.pick(objectsOf(world, f.objectType).filter((o) => o !== f.object));
    const templateIdx = rng.int(rel.templates.length);
    const others = rel.templates.filter((_, i) => i !== templateIdx);
    const prefixFacts = world.facts.filter((x) => x.subject !== f.subject);
    const paraphrases = rng.sample(others, Math.min(2, others.length)).map((t) => {
      const p = rng.pick(prefixFacts);
      return `${statement(rng.pick(RELATION_BY_ID[p.relation].templates), p.subject, p.object)} ${fillTemplate(t, f.subject)}`;
    });
    // up to `neighbours` distinct prompts: every neighbour in one phrasing, then again in another
    const promptsOf = (facts: Fact[]) => {
      const out: string[] = [];
      for (const t of rng.shuffle(rel.templates))
        for (const n of facts) if (out.length < opts.neighbours) out.push(fillTemplate(t, n.subject));
      return out;
    };
    const nb = rng.shuffle(neighbours);
    const attr = rng.shuffle(byRelObj(f.relation, targetNew).filter((n) => n.subject !== f.subject));
    records.push({
      case_id: records.length,
      requested_rewrite: {
        prompt: rel.templates[templateIdx] as string,
        relation_id: f.relation,
        subject: f.subject,
        target_new: { str: targetNew, id: objectId(f, targetNew) },
        target_true: { str: f.object, id: objectId(f, f.object) },
      },
      paraphrase_prompts: paraphrases,
      neighborhood_prompts: promptsOf(nb),
      attribute_prompts: attr.length > 0 ? promptsOf(attr) : [],
      generation_prompts: others.map((t) => fillTemplate(t, f.subject)),
    });
  }
  return { records, keep };
}

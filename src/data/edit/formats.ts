/**
 * Record mappers, one per layout. Each turns one parsed JSON record into an EditCase or throws a
 * FieldError naming the field. The mappings follow the reference runners (docs/reference/edit-metrics.md §6):
 * - CounterFact, EasyEdit layout (counterfact-edit.json): prompt, subject, target_new, ground_truth,
 *   rephrase_prompt, locality_prompt, locality_ground_truth; EasyEdit locality key "neighborhood".
 * - CounterFact, ROME layout: requested_rewrite, paraphrase_prompts, neighborhood_prompts,
 *   attribute_prompts, generation_prompts (+ optional portability); mapped onto EasyEdit requests as
 *   EasyEdit's AlphaEdit runner does (examples/run_AlphaEdit_editing.py): rephrase = paraphrase_prompts[0],
 *   locality "neighborhood" = all neighborhood prompts with target_true as ground truth.
 * - ZsRE, MEND layout: EasyEdit's run_zsre_llama2.py mapping: prompt = src, target_new = alt,
 *   rephrase, locality "neighborhood" = (loc, loc_ans), portability "one_hop" = (New Question, New Answer).
 * - KnowEdit: run_knowedit_llama2.py: first answer alias, locality Relation_Specificity/Forgetfulness,
 *   portability Subject_Aliasing/reasoning/Logical_Generalization; rephrase_prompt dropped (as the
 *   KnowEdit loader does) unless asked for.
 */
import { normalizeRequest, fill, RequestError, type EditRequest } from "../../editing/request.js";
import { Fields, FieldError } from "./schema.js";
import type { DatasetFormat, EditCase, PromptTarget } from "./types.js";

export interface MapOptions {
  /** KnowEdit only: keep rephrase_prompt as a rephrase prompt (KnowEdit's loader drops it) */
  knowEditRephrase?: boolean;
  /** called for an item dropped from a list (an empty KnowEdit answer), with its field path */
  dropItem: (field: string, message: string) => void;
}

function request(r: EditRequest, subjectField: string, promptField: string): EditRequest {
  try {
    return normalizeRequest(r, "record");
  } catch (e) {
    const msg = (e as Error).message.replace(/^record: /, "");
    if (e instanceof RequestError) {
      if (msg.includes("subject")) throw new FieldError(subjectField, msg);
      throw new FieldError(promptField, msg);
    }
    throw e;
  }
}

/** Detects a record's layout from its keys; null when none fits. */
export function detectFormat(rec: unknown): DatasetFormat | null {
  if (typeof rec !== "object" || rec === null || Array.isArray(rec)) return null;
  const o = rec as Record<string, unknown>;
  if ("requested_rewrite" in o) return "counterfact-rome";
  if ("src" in o && "alt" in o) return "zsre-mend";
  if ("locality_prompt" in o || "rephrase_prompt" in o) {
    if (typeof o.locality === "object" || Array.isArray(o.ground_truth)) return "knowedit";
    return "counterfact-easyedit";
  }
  if ("prompt" in o && "target_new" in o && ("locality" in o || "portability" in o)) return "knowedit";
  return null;
}

export function mapRecord(format: DatasetFormat, rec: unknown, index: number, opts: MapOptions): EditCase {
  const f = Fields.of(rec);
  switch (format) {
    case "counterfact-easyedit":
      return counterfactEasyEdit(f, index);
    case "counterfact-rome":
      return counterfactRome(f, index);
    case "zsre-mend":
      return zsreMend(f, index);
    case "knowedit":
      return knowEdit(f, index, opts);
  }
}

function caseIdOf(f: Fields, index: number): number {
  return f.has("case_id") ? f.int("case_id") : index;
}

function counterfactEasyEdit(f: Fields, index: number): EditCase {
  const caseId = caseIdOf(f, index);
  const prompt = f.str("prompt");
  const subject = f.str("subject");
  const targetNew = f.str("target_new");
  const targetTrue = f.str("ground_truth");
  const rephrase = f.str("rephrase_prompt");
  const locPrompt = f.str("locality_prompt");
  const locTruth = f.str("locality_ground_truth");
  const req = request(
    { prompt, subject, targetNew, targetTrue, rephrase: [rephrase], id: caseId },
    "subject",
    "prompt",
  );
  req.locality = [{ prompt: locPrompt, groundTruth: locTruth }];
  return {
    index,
    caseId,
    format: "counterfact-easyedit",
    request: req,
    easyedit: {
      prompt,
      targetNew,
      rephrasePrompts: [rephrase],
      locality: { neighborhood: [{ prompt: locPrompt, groundTruth: locTruth }] },
      portability: {},
    },
    counterfact: {
      targetNew,
      targetTrue,
      rewritePrompts: [prompt],
      paraphrasePrompts: [rephrase],
      neighborhoodPrompts: [locPrompt],
      attributePrompts: [],
      generationPrompts: [],
    },
  };
}

function counterfactRome(f: Fields, index: number): EditCase {
  const caseId = caseIdOf(f, index);
  const rr = f.obj("requested_rewrite");
  const template = rr.str("prompt");
  const holes = template.split("{}").length - 1;
  if (holes !== 1)
    throw new FieldError(
      rr.child("prompt"),
      `must contain exactly one "{}" where the subject goes, found ${holes}`,
    );
  const subject = rr.str("subject");
  const tn = rr.obj("target_new");
  const tt = rr.obj("target_true");
  const targetNew = tn.str("str").trimStart();
  const targetTrue = tt.str("str").trimStart();
  const paraphrase = f.strList("paraphrase_prompts", 1);
  const neighborhood = f.strList("neighborhood_prompts", 1);
  const attribute = f.has("attribute_prompts") ? f.strList("attribute_prompts", 0) : [];
  const generation = f.has("generation_prompts") ? f.strList("generation_prompts", 0) : [];
  const req = request(
    { prompt: template, subject, targetNew, targetTrue, rephrase: paraphrase, id: caseId },
    "requested_rewrite.subject",
    "requested_rewrite.prompt",
  );
  const loc = neighborhood.map((p) => ({ prompt: p, groundTruth: targetTrue }));
  req.locality = loc;
  const portability: Record<string, PromptTarget[]> = {};
  if (f.has("portability")) {
    const p = f.obj("portability");
    portability.one_hop = [{ prompt: p.str("New Question"), groundTruth: p.str("New Answer") }];
    req.portability = portability.one_hop;
  }
  return {
    index,
    caseId,
    format: "counterfact-rome",
    request: req,
    easyedit: {
      prompt: fill(template, subject),
      targetNew,
      rephrasePrompts: [paraphrase[0] as string],
      locality: { neighborhood: loc },
      portability,
    },
    counterfact: {
      targetNew,
      targetTrue,
      rewritePrompts: [fill(template, subject)],
      paraphrasePrompts: paraphrase,
      neighborhoodPrompts: neighborhood,
      attributePrompts: attribute,
      generationPrompts: generation,
      relationId: rr.optStr("relation_id"),
      targetNewId: tn.optStr("id"),
    },
  };
}

function zsreMend(f: Fields, index: number): EditCase {
  const subject = f.str("subject");
  const src = f.str("src");
  const alt = f.str("alt");
  const rephrase = f.str("rephrase");
  const loc = f.str("loc");
  const locAns = f.str("loc_ans");
  const answers = f.strList("answers", 1);
  const req = request(
    { prompt: src, subject, targetNew: alt, targetTrue: answers[0], rephrase: [rephrase], id: index },
    "subject",
    "src",
  );
  req.locality = [{ prompt: loc, groundTruth: locAns }];
  const portability: Record<string, PromptTarget[]> = {};
  if (f.has("portability")) {
    const p = f.obj("portability");
    portability.one_hop = [{ prompt: p.str("New Question"), groundTruth: p.str("New Answer") }];
    req.portability = portability.one_hop;
  }
  return {
    index,
    caseId: index,
    format: "zsre-mend",
    request: req,
    easyedit: {
      prompt: src,
      targetNew: alt,
      rephrasePrompts: [rephrase],
      locality: { neighborhood: [{ prompt: loc, groundTruth: locAns }] },
      portability,
    },
  };
}

/** run_knowedit_llama2.py's `while isinstance(ans, list): ans = ans[0]`. */
function firstAlias(v: unknown, field: string): string {
  let x = v;
  let path = field;
  while (Array.isArray(x)) {
    if (x.length === 0) throw new FieldError(path, "is an empty list (no answer)");
    x = x[0];
    path += "[0]";
  }
  if (typeof x !== "string") throw new FieldError(path, `expected a string, got ${JSON.stringify(x)}`);
  return x;
}

function knowEditSection(f: Fields, section: string, key: string, opts: MapOptions): PromptTarget[] | null {
  if (!f.has(section)) return null;
  const s = f.obj(section);
  if (!s.has(key)) return null;
  const items = s.list(key);
  const out: PromptTarget[] = [];
  items.forEach((it, i) => {
    const path = `${s.child(key)}[${i}]`;
    const item = Fields.of(it, path);
    const prompt = item.str("prompt");
    const answer = firstAlias(item.value.ground_truth, `${path}.ground_truth`);
    if (answer.trim() === "") {
      // the runner skips such items; we report them
      opts.dropItem(`${path}.ground_truth`, "empty answer; item dropped (as run_knowedit_llama2.py does)");
      return;
    }
    out.push({ prompt, groundTruth: answer });
  });
  return out.length > 0 ? out : null;
}

function knowEdit(f: Fields, index: number, opts: MapOptions): EditCase {
  const subject = f.has("subject") ? f.str("subject") : f.str("concept");
  const prompt = f.has("prompt") ? f.str("prompt") : f.str("text");
  const targetNew = f.has("target_new") ? f.str("target_new") : f.str("labels");
  let targetTrue: string | undefined;
  if (f.has("ground_truth")) {
    targetTrue = firstAlias(f.value.ground_truth, "ground_truth");
    if (targetTrue.trim() === "") throw new FieldError("ground_truth", "is empty");
  }
  const rephrase = f.optStr("rephrase_prompt");
  const locality: Record<string, PromptTarget[]> = {};
  const portability: Record<string, PromptTarget[]> = {};
  for (const [section, key, name, into] of [
    ["locality", "Relation_Specificity", "Relation_Specificity", locality],
    ["locality", "Forgetfulness", "Forgetfulness", locality],
    ["portability", "Subject_Aliasing", "Subject_Aliasing", portability],
    ["portability", "Reasoning", "reasoning", portability],
    ["portability", "Logical_Generalization", "Logical_Generalization", portability],
  ] as const) {
    const items = knowEditSection(f, section, key, opts);
    if (items) into[name] = items;
  }
  const req = request(
    {
      prompt,
      subject,
      targetNew,
      targetTrue,
      rephrase: rephrase !== undefined ? [rephrase] : undefined,
      id: index,
    },
    "subject",
    "prompt",
  );
  req.locality = Object.values(locality).flat();
  req.portability = Object.values(portability).flat();
  return {
    index,
    caseId: index,
    format: "knowedit",
    request: req,
    easyedit: {
      prompt,
      targetNew,
      rephrasePrompts: opts.knowEditRephrase && rephrase !== undefined ? [rephrase] : [],
      locality,
      portability,
    },
  };
}

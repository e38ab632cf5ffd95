/**
 * What an edit dataset record becomes: the request an editing method applies, plus the evaluation
 * prompts each metric family reads (EasyEdit's compute_edit_quality inputs, and ROME/MEMIT's CounterFact
 * prompt lists when the layout has them).
 */
import type { EditRequest } from "../../editing/request.js";

export type DatasetFormat = "counterfact-easyedit" | "counterfact-rome" | "zsre-mend" | "knowedit";

export interface PromptTarget {
  prompt: string;
  groundTruth: string;
}

/** The inputs of EasyEdit's compute_edit_quality (easyeditor/evaluate/evaluate.py). */
export interface EasyEditInputs {
  /** the rewrite prompt, subject filled in */
  prompt: string;
  targetNew: string;
  /** rephrase prompts (EasyEdit passes one per request; empty when the layout has none) */
  rephrasePrompts: string[];
  /** locality prompts by key (e.g. "neighborhood", "Relation_Specificity"); scored as pre/post agreement */
  locality: Record<string, PromptTarget[]>;
  /** portability prompts by key (e.g. "one_hop", "reasoning"); scored as teacher-forced accuracy */
  portability: Record<string, PromptTarget[]>;
}

/** ROME/MEMIT CounterFact evaluation inputs (experiments/py/eval_utils_counterfact.py). */
export interface CounterfactInputs {
  /** target_new.str and target_true.str, without the leading space ROME adds when scoring */
  targetNew: string;
  targetTrue: string;
  rewritePrompts: string[];
  paraphrasePrompts: string[];
  neighborhoodPrompts: string[];
  attributePrompts: string[];
  generationPrompts: string[];
  relationId?: string;
  targetNewId?: string;
}

export interface EditCase {
  /** 0-based position of the record in its file */
  index: number;
  /** the record's case_id, or its index when it has none */
  caseId: number;
  format: DatasetFormat;
  /** the request the editor applies (prompt with "{}") */
  request: EditRequest;
  easyedit: EasyEditInputs;
  /** present for the CounterFact layouts */
  counterfact?: CounterfactInputs;
}

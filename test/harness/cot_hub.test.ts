// chain-of-thought-hub's protocol (tasks/cot_hub.ts): each prompt pinned to exact strings for one item,
// each answer rule on hand-written generations (PROMPT_FACTS.md's edge cases), the MMLU length cap,
// muting, and one evaluation through a scripted LM.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildInstances, evaluateLM } from "../../src/harness/evaluate.js";
import { resolveTasks } from "../../src/harness/registry.js";
import type { GenerationRequest, LM, LoglikelihoodRequest } from "../../src/harness/lm.js";
import {
  bbhCotHubExtract,
  bbhCotHubGold,
  capMmluPrompt,
  cotHubTruncate,
  csqaCotHubPrediction,
  formatSubject,
  gsm8kCotHubCorrect,
  lastNumber,
  mmluCotHubPrediction,
  pandasCell,
} from "../../src/harness/tasks/cot_hub.js";
import { readText } from "../../src/harness/data.js";
import { join } from "node:path";
import { DATA } from "../helpers.js";

function context(task: string, doc = 0): string {
  const { tasks } = resolveTasks([task], { dataDir: DATA });
  const t = tasks[0]!;
  const { instances } = buildInstances([t], { limit: doc + 1 });
  return instances.get(t.task)![doc]!.context;
}

test("mmlu_cot_hub: format_subject's double space, 5 dev exemplars ' B\\n\\n', the question ending at 'Answer:'", () => {
  assert.equal(formatSubject("abstract_algebra"), " abstract algebra");
  const c = context("mmlu_cot_hub_abstract_algebra");
  assert.ok(
    c.startsWith(
      "The following are multiple choice questions (with answers) about  abstract algebra.\n\n" +
        "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n" +
        "Statement 1 | If aH is an element of a factor group, then |aH| divides |a|.",
    ),
  );
  assert.ok(
    c.endsWith(
      "Find the characteristic of the ring 2Z.\nA. 0\nB. 3\nC. 12\nD. 30\nAnswer: A\n\n" +
        "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:",
    ),
  );
  assert.equal(c.split("\nAnswer: ").length, 6, "5 exemplars with answers");
  assert.equal(c.length, 994);
  // pandas reads the cell "None" as NaN, which "{}".format writes "nan"
  const cs = context("mmlu_cot_hub_college_computer_science", 10);
  assert.ok(cs.endsWith("III. An array\nA. nan\nB. III only\nC. I and II only\nD. I, II, and III\nAnswer:"));
  assert.equal(pandasCell("None"), "nan");
  assert.equal(pandasCell(""), "nan");
  assert.equal(pandasCell("none"), "none");
});

test("mmlu_cot_hub: the length cap drops exemplars from the front (split on \\n\\n, pop(1))", () => {
  const p = "H.\n\nex1\nAnswer: A\n\nex2\nAnswer: B\n\nq\nAnswer:";
  const words = (s: string): number => s.split(/\s+/).length; // a stand-in tokenizer
  assert.equal(words(p), 9);
  assert.equal(capMmluPrompt(p, words, 10), p, "9 + 1 <= 10 keeps everything");
  assert.equal(capMmluPrompt(p, words, 9), "H.\n\nex2\nAnswer: B\n\nq\nAnswer:");
  assert.equal(capMmluPrompt(p, words, 6), "H.\n\nq\nAnswer:");
  assert.equal(capMmluPrompt(p, words, 1), "H.\n\nq\nAnswer:", "header and question always stay");
});

test("mmlu_cot_hub: the prediction is the last character of decode(prompt + token)", () => {
  assert.equal(mmluCotHubPrediction(" B"), "B");
  assert.equal(mmluCotHubPrediction("B"), "B");
  assert.equal(mmluCotHubPrediction(" b"), "b", "case-sensitive: wrong against 'B'");
  assert.equal(mmluCotHubPrediction(""), ":", "an EOS (skipped) leaves the prompt's ':'");
  assert.equal(mmluCotHubPrediction(" "), " ");
  assert.equal(mmluCotHubPrediction(" Answer"), "r");
  assert.equal(mmluCotHubPrediction(" 😀"), "😀", "a code point, not a UTF-16 half");
});

test("gsm8k_cot_hub: prompt_original + '\\nQuestion: ...\\n'", () => {
  const c = context("gsm8k_cot_hub");
  const file = readText(join(DATA, "cot_hub", "gsm8k_prompt_original.txt"));
  assert.ok(file.endsWith("The answer is 8.\n"));
  assert.ok(file.includes("\nLet's think step by step\n"), "no period after 'step by step'");
  assert.equal(
    c,
    file +
      "\nQuestion: Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in dollars does she make every day at the farmers' market?\n",
  );
  assert.ok(c.includes("The answer is 8.\n\nQuestion: Janet’s"));
});

test("gsm8k_cot_hub: truncation at the first 'answer is' line, the last number as a string", () => {
  const out =
    "Janet has 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = 18.\nThe answer is 18.\n\nQuestion: 7 more\n";
  assert.equal(
    cotHubTruncate(out),
    "Janet has 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = 18.\nThe answer is 18.",
  );
  assert.ok(gsm8kCotHubCorrect(out, "... she makes 9 * 2 = $<<9*2=18>>18\n#### 18"));
  // "1,000": the comma splits the number, so both sides read "000"
  assert.equal(lastNumber("The answer is 1,000."), "000");
  assert.ok(gsm8kCotHubCorrect("The answer is 1,000.", "#### 1,000"));
  assert.ok(gsm8kCotHubCorrect("The answer is 5,000.", "#### 1,000"), "the script's quirk: 000 == 000");
  // string equality: 18.0 is not 18; decimals keep their point
  assert.ok(!gsm8kCotHubCorrect("The answer is 18.0.", "#### 18"));
  assert.equal(lastNumber("costs .5 dollars"), ".5");
  // no "answer is": every line counts, the last number of the whole output
  assert.ok(gsm8kCotHubCorrect("So 18 eggs\nQuestion: a 3 b\n", "#### 3"));
  // no number at all: wrong, even against gold 0
  assert.ok(!gsm8kCotHubCorrect("I do not know.", "#### 0"));
  assert.ok(!gsm8kCotHubCorrect("", "#### 0"));
  // negative numbers lose their sign (\d*\.?\d+)
  assert.ok(gsm8kCotHubCorrect("The answer is -4.", "#### 4"));
});

test("bbh_cot_hub: the lib_prompt file (no canary) + '\\n\\nQ: ...\\nA: Let's think step by step.'", () => {
  const c = context("bbh_cot_hub_navigate");
  const file = readText(join(DATA, "bbh", "cot-prompts", "navigate.txt"));
  const lib = file.split("\n").slice(2).join("\n");
  assert.ok(lib.startsWith("Given a series of navigation instructions"));
  assert.ok(lib.endsWith("So the answer is Yes."), "no trailing newline");
  assert.equal(
    c,
    lib +
      "\n\nQ: If you follow these instructions, do you return to the starting point? Always face forward. Take 1 step backward. Take 9 steps left. Take 2 steps backward. Take 6 steps forward. Take 4 steps forward. Take 4 steps backward. Take 3 steps right.\nOptions:\n- Yes\n- No\nA: Let's think step by step.",
  );
  const { tasks } = resolveTasks(["bbh_cot_hub"], { dataDir: DATA });
  assert.equal(tasks.length, 27);
});

test("bbh_cot_hub: the answer after the LAST 'answer is ', multiple-choice and free-form rules", () => {
  const mc = "multiple_choice" as const;
  const ff = "free_form" as const;
  assert.equal(bbhCotHubExtract("So the answer is (B).", mc), "B");
  assert.equal(bbhCotHubExtract("the answer is (A). Q: ... So the answer is (C).", mc), "C", "the last one");
  assert.equal(bbhCotHubExtract("So the answer is (D) or (B).", mc), "B", "(A)..(Z) scanned in order");
  assert.equal(bbhCotHubExtract("So the answer is B.", mc), "B.", "no parenthesis: the text itself");
  assert.equal(bbhCotHubExtract("I think (A)", mc), "I think (A)", "no 'answer is': the whole output");
  assert.equal(bbhCotHubGold("(A)", mc), "A");
  assert.equal(bbhCotHubExtract("So the answer is Yes.", ff), "Yes");
  assert.equal(bbhCotHubExtract("So the answer is   24..  ", ff), "24.", "strip, then one '.' dropped");
  assert.equal(bbhCotHubExtract("So the answer is ", ff), "", "empty (the script would raise)");
  assert.equal(bbhCotHubExtract("Yes", ff), "Yes");
  assert.equal(bbhCotHubGold("Yes", ff), "Yes");
});

test("csqa_cot_hub: the verbatim 7-shot prompt, lower-case '(a) ...' choices and the final 'A:'", () => {
  const c = context("csqa_cot_hub");
  const file = readText(join(DATA, "cot_hub", "csqa_prompt_original.txt"));
  assert.ok(file.endsWith("So the answer is (c).\n   "), "three trailing spaces");
  assert.ok(file.includes("calligrapher’s hand"));
  assert.ok(file.includes("(c) super market \n"));
  assert.equal(
    c,
    file +
      "\nQ: A revolving door is convenient for two direction travel, but it also serves as a security measure at a what?\n" +
      "Answer Choices:\n(a) bank\n(b) library\n(c) department store\n(d) mall\n(e) new york\nA:",
  );
});

test("csqa_cot_hub: the character after the first '(' (no '(': 'a')", () => {
  assert.equal(csqaCotHubPrediction(" The answer must be ... So the answer is (b)."), "b");
  assert.equal(csqaCotHubPrediction(" (c) is wrong, so the answer is (b)."), "c", "the FIRST '('");
  assert.equal(csqaCotHubPrediction(" So the answer is (B)."), "B", "not lower-cased: wrong against 'b'");
  assert.equal(csqaCotHubPrediction(" bank"), "a", "no '('");
  assert.equal(csqaCotHubPrediction(""), "a");
  assert.equal(csqaCotHubPrediction("the answer is ("), "a", "'(' last");
  assert.equal(csqaCotHubPrediction("( e)"), " ");
});

test("commonsense_qa (harness): 'Question: ...\\nA. ..\\nE. ..\\nAnswer:', choices ' A'..' E'", () => {
  const { tasks } = resolveTasks(["commonsense_qa"], { dataDir: DATA });
  const t = tasks[0]!;
  const d = t.docs()[0]!;
  assert.equal(t.docs().length, 1221);
  assert.equal(
    t.docToText(d),
    "Question: A revolving door is convenient for two direction travel, but it also serves as a security measure at a what?\nA. bank\nB. library\nC. department store\nD. mall\nE. new york\nAnswer:",
  );
  assert.deepEqual(t.docToChoice!(d), ["A", "B", "C", "D", "E"]);
  assert.equal(t.targetDelimiter, " ");
  assert.equal(t.docToTarget(d), 0);
});

/** Generates per task from a table keyed by a prompt's opening; counts tokens as characters. */
class ScriptedLM implements LM {
  readonly maxLength: number = 100000;
  reqs: GenerationRequest[] = [];
  constructor(private readonly gen: (r: GenerationRequest, i: number) => string) {}
  loglikelihood(rs: LoglikelihoodRequest[]): { logprob: number; isGreedy: boolean }[] {
    return rs.map((r) => ({ logprob: r.continuation.trim() === "A" ? -1 : -2, isGreedy: false }));
  }
  loglikelihoodRolling(ts: string[]): number[] {
    return ts.map(() => 0);
  }
  generateUntil(rs: GenerationRequest[]): string[] {
    this.reqs.push(...rs);
    return rs.map((r, i) => this.gen(r, i));
  }
  countTokens(s: string): number {
    return s.length;
  }
}

test("evaluation: acc under filter 'none', muted (empty or blank outputs), group averages", () => {
  const answers = ["The answer is 18.\n", "", "  \n", "The answer is 3."];
  const lm = new ScriptedLM((r, i) => (r.context.includes("\nQuestion: ") ? (answers[i] ?? "") : " B"));
  const out = evaluateLM(lm, ["gsm8k_cot_hub", "mmlu_cot_hub_abstract_algebra", "commonsense_qa"], {
    dataDir: DATA,
    limit: 4,
    bootstrapIters: 0,
  });
  const g = out.results.results["gsm8k_cot_hub"]!;
  // gold: 18, 3, 70000, 540
  assert.equal(g["acc,none"], 0.25);
  assert.equal(g["muted,none"], 0.5);
  assert.equal(out.results.higher_is_better["gsm8k_cot_hub"]!.muted, false);
  const m = out.results.results["mmlu_cot_hub_abstract_algebra"]!;
  assert.equal(m["muted,none"], 0);
  assert.equal(typeof m["acc,none"], "number");
  assert.equal(out.results.results["commonsense_qa"]!["muted,none"], undefined, "not a generation task");
  const gsmReq = lm.reqs.find((r) => r.context.includes("\nQuestion: "))!;
  assert.equal(gsmReq.max_gen_toks, 256);
  assert.equal(gsmReq.add_special_tokens, true);
  assert.ok(new RegExp(gsmReq.stop_regex!).test("x\nThe answer is 18.\n"));
  assert.ok(!new RegExp(gsmReq.stop_regex!).test("The answer is 18."), "the answer line must be complete");
  const mmluReq = lm.reqs.find((r) => r.context.startsWith("The following"))!;
  assert.equal(mmluReq.max_gen_toks, 1);
  // characters as tokens: 994 + 1 > 2048 is false, so the 5 exemplars stay
  assert.equal(mmluReq.context.split("\nAnswer: ").length, 6);

  // a short model: exemplars are dropped while characters + 1 exceed the length
  const short = new (class extends ScriptedLM {
    override readonly maxLength = 500;
  })(() => " A");
  evaluateLM(short, ["mmlu_cot_hub_abstract_algebra"], { dataDir: DATA, limit: 1, bootstrapIters: 0 });
  const ctx = short.reqs[0]!.context;
  assert.ok(ctx.length + 1 <= 500 && ctx.length > 300, `capped to ${ctx.length}`);
  assert.ok(
    ctx.startsWith("The following are multiple choice questions (with answers) about  abstract algebra.\n\n"),
  );

  const grp = evaluateLM(new ScriptedLM(() => ""), ["mmlu_cot_hub"], {
    dataDir: DATA,
    limit: 1,
    bootstrapIters: 0,
  });
  assert.equal(grp.results.results["mmlu_cot_hub"]!["muted,none"], 1);
  assert.equal(grp.results.results["mmlu_cot_hub"]!["acc,none"], 0, "':' is never a gold letter");
});

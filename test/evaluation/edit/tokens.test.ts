// EasyEdit's teacher-forced accuracy and locality, ROME's CounterFact NLLs, on a bigram model whose
// arg-max and probabilities are set by hand; the expected values are worked out in the comments.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadTokenizer } from "../../../src/models/tokenizer/index.js";
import {
  counterfactTargetNLL,
  localityAgreement,
  localityOutputs,
  pySlice,
  teacherForcedAccuracy,
  teacherForcedSlices,
} from "../../../src/evaluation/edit/tokens.js";
import { assertClose } from "../../helpers.js";
import { bigram, GPT2_TINY, logSoftmax, peak, V } from "./bigram.js";

const tok = loadTokenizer(GPT2_TINY);
const ids = (s: string) => tok.encode(s);
// token ids (checked below): The 285, Ġcapital 563, Ġis 309, Ġ 220, ĠParis 718,
// " Barack Obama" = ĠB 355, ar 282, ack 617, Ġ 220, O 46, b 65, am 321, a 64
const [The, capital, is] = [285, 563, 309];
const SP = 220;
const PARIS = 718;

test("the token ids the hand-computed cases rely on", () => {
  assert.deepEqual(ids("The capital is"), [The, capital, is]);
  assert.deepEqual(ids("The capital is Paris"), [The, capital, is, PARIS]);
  assert.deepEqual(ids("The capital is  Paris"), [The, capital, is, SP, PARIS]);
  assert.deepEqual(ids("The capital is "), [The, capital, is, SP]);
  assert.deepEqual(ids(" Barack Obama"), [355, 282, 617, 220, 46, 65, 321, 64]);
  assert.equal(tok.padTokenId, null);
  assert.equal(tok.eosTokenId, 767);
});

test("pySlice follows Python slicing", () => {
  const a = [0, 1, 2, 3, 4];
  assert.deepEqual(pySlice(a, 2, -1), [2, 3]);
  assert.deepEqual(pySlice(a, -1, -1), []);
  assert.deepEqual(pySlice(a, 3), [3, 4]);
  assert.deepEqual(pySlice(a, 9), []);
});

test("rewrite_acc, one-token target: 1 when the prompt's last token predicts it, else 0", () => {
  const right = bigram(new Map([[is, peak(PARIS)]]));
  assert.deepEqual(teacherForcedAccuracy(right.model, tok, ["The capital is"], ["Paris"]), [1]);
  const wrong = bigram(new Map([[is, peak(5)]]));
  assert.deepEqual(teacherForcedAccuracy(wrong.model, tok, ["The capital is"], ["Paris"]), [0]);
});

test("rewrite_acc, multi-token target: the fraction of target tokens predicted with the gold prefix fed", () => {
  // target " Barack Obama" = 355 282 617 220 46 65 321 64 (8 tokens) after "The capital is".
  // Predictions: is->355 ok, 355->282 ok, 282->617 ok, 617->999? wrong (predicts 7), 220->46 ok,
  // 46->65 ok, 65->0 (row of zeros: argmax 0) wrong, 321->64 ok  => 6/8
  const rows = new Map<number, number[]>([
    [is, peak(355)],
    [355, peak(282)],
    [282, peak(617)],
    [617, peak(7)],
    [220, peak(46)],
    [46, peak(65)],
    [321, peak(64)],
  ]);
  const { model } = bigram(rows);
  assertClose(teacherForcedAccuracy(model, tok, ["The capital is"], ["Barack Obama"]), [6 / 8]);
  const [s] = teacherForcedSlices(model, tok, ["The capital is"], ["Barack Obama"]);
  assert.deepEqual(s?.labels, [355, 282, 617, 220, 46, 65, 321, 64]);
  assert.deepEqual(s?.pred, [355, 282, 617, 7, 46, 65, 0, 64]);
});

test("a target with a leading space and a prompt ending in a space both give two spaces: 'Ġ' is a target token", () => {
  // "The capital is" + " " + " Paris" = "The capital is  Paris" -> target tokens [Ġ 220, ĠParis 718]
  // "The capital is " + " " + "Paris" -> the same text, but the prompt's own tokens end in Ġ: target [718]
  const rows = new Map<number, number[]>([
    [is, peak(SP)],
    [SP, peak(3)],
  ]);
  const { model } = bigram(rows);
  const lead = teacherForcedSlices(model, tok, ["The capital is"], [" Paris"]);
  assert.deepEqual(lead[0]?.labels, [SP, PARIS]);
  assert.deepEqual(lead[0]?.pred, [SP, 3]);
  assert.deepEqual(teacherForcedAccuracy(model, tok, ["The capital is"], [" Paris"]), [0.5]);
  const trail = teacherForcedSlices(model, tok, ["The capital is "], ["Paris"]);
  assert.deepEqual(trail[0]?.labels, [PARIS]);
  assert.deepEqual(trail[0]?.pred, [3]);
  assert.deepEqual(teacherForcedAccuracy(model, tok, ["The capital is "], ["Paris"]), [0]);
});

test("several prompts: left padding with EOS, start = #pad + #prompt tokens, HF default positions 0..L-1", () => {
  // row 1: "The capital is Paris" (4 tokens); row 2: "Paris is in" + " Paris" = P aris Ġis Ġin ĠParis (5)
  const rows = new Map<number, number[]>([
    [is, peak(PARIS)],
    [287, peak(4)], // Ġin -> 4: wrong
  ]);
  const b = bigram(rows);
  const s = teacherForcedSlices(b.model, tok, ["The capital is", "Paris is in"], ["Paris", "Paris"]);
  assert.deepEqual(
    s.map((x) => x.labels),
    [[PARIS], [PARIS]],
  );
  assert.deepEqual(
    s.map((x) => x.pred),
    [[PARIS], [4]],
  );
  assert.deepEqual(b.positions.at(-1), [
    [0, 1, 2, 3, 4],
    [0, 1, 2, 3, 4],
  ]);
  assert.deepEqual(
    teacherForcedAccuracy(b.model, tok, ["The capital is", "Paris is in"], ["Paris", "Paris"]),
    [1, 0],
  );
});

test("locality: outputs are the arg-max tokens; agreement of identical outputs is exactly 1, else the token fraction", () => {
  const { model } = bigram(new Map([[is, peak(9)]]));
  const out = localityOutputs(model, tok, ["The capital is", "The capital is"], ["Paris", "Barack Obama"]);
  assert.deepEqual(out[0], [9]);
  assert.equal(out[1]?.length, 8);
  assert.deepEqual(localityAgreement(out, out), [1, 1]);
  // EasyEdit README's example: [29,234,334] vs [29,234,333] -> 2/3
  assertClose(localityAgreement([[29, 234, 334]], [[29, 234, 333]]), [2 / 3]);
});

test("ROME CounterFact NLL: mean per-token -log p of ' target' after the prompt, and MEMIT's all-arg-max flags", () => {
  // new " Paris" = [718]; true " Barack Obama" = 8 tokens. Logits rows set by hand.
  const rowIs = new Array<number>(V).fill(0);
  rowIs[PARIS] = 2;
  rowIs[355] = 1;
  const row355 = peak(282, 3);
  const rows = new Map<number, number[]>([
    [is, rowIs],
    [355, row355],
  ]);
  const { model } = bigram(rows);
  const [r] = counterfactTargetNLL(model, tok, ["The capital is"], "Paris", "Barack Obama");
  const lsIs = logSoftmax(rowIs);
  const ls355 = logSoftmax(row355);
  const zero = logSoftmax(new Array<number>(V).fill(0));
  const expectNew = -(lsIs[PARIS] as number);
  // true: 355 after Ġis; 282 after 355; then 617,220,46,65,321,64 each after a zero row
  const expectTrue = -((lsIs[355] as number) + (ls355[282] as number) + 6 * (zero[0] as number)) / 8;
  assertClose(r?.target_new as number, expectNew, 1e-5);
  assertClose(r?.target_true as number, expectTrue, 1e-5);
  assert.equal(r?.new_correct, true); // Paris is the arg-max after Ġis
  assert.equal(r?.true_correct, false);
  // several prefixes at once (right padding) give the same numbers
  const two = counterfactTargetNLL(model, tok, ["The capital is", "The capital is"], "Paris", "Barack Obama");
  assertClose(two[1]?.target_true as number, expectTrue, 1e-5);
});

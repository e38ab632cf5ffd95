// The harness with --apply_chat_template, as lm-evaluation-harness (4e7e0d4) builds prompts: the
// description as a system message, few-shot examples as user/assistant turns (default) or one user
// message, the generation prompt, multiple-choice continuations without the target delimiter, the
// system message dropped when the template refuses it, the results' chat_template fields; the
// experiment spec's benchmarks.apply_chat_template; and `editeval eval --apply_chat_template` on the
// demo model. Every expected prompt is written out by hand from the task's data and the template.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { evaluate, evaluateLM } from "../../src/harness/evaluate.js";
import { renderChatForHarness } from "../../src/harness/chat.js";
import { ModelLM, type GenerationRequest, type LM, type LoglikelihoodRequest } from "../../src/harness/lm.js";
import {
  loadTokenizer,
  NoChatTemplateError,
  Tokenizer,
  type ChatMessage,
} from "../../src/models/tokenizer/index.js";
import { loadModel } from "../../src/models/load.js";
import { parseSpec, SpecError } from "../../src/experiments/spec.js";
import { evalCommand } from "../../src/cli/eval.js";
import { DATA, FIXTURES, ROOT } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "editeval-chat-harness-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

/** Qwen2-7B-Instruct's chat_template (as in test/models/chat_template.test.ts). */
const QWEN2_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** A plain template over several lines (as in test/models/chat_template.test.ts). */
const USER_ASSISTANT_TEMPLATE = `{% for message in messages %}
    {% if message.role == 'system' %}
{{ message.content }}

    {% elif message.role == 'user' %}
User: {{ message.content }}
    {% else %}
Assistant: {{ message.content }}{{ eos_token }}
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}
Assistant:{% endif %}
`;

/** Mistral-7B-Instruct-v0.1's chat_template: no system role (raise_exception). */
const MISTRAL_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

function gpt2Tokenizer(chatTemplate: string): Tokenizer {
  return Tokenizer.fromTokenizerJson(
    JSON.parse(readFileSync(join(FIXTURES, "gpt2-tiny", "tokenizer.json"), "utf8")) as unknown,
    {
      tokenizerConfig: {
        bos_token: "<|endoftext|>",
        eos_token: "<|endoftext|>",
        unk_token: "<|endoftext|>",
        chat_template: chatTemplate,
      },
    },
  );
}

/** Records every request; renders chats with a tokenizer as the model side does (HFLM.apply_chat_template). */
class RecordingLM implements LM {
  ll: LoglikelihoodRequest[] = [];
  gen: GenerationRequest[] = [];
  warnings: string[] = [];
  constructor(readonly tok: Tokenizer | null) {}
  loglikelihood(rs: LoglikelihoodRequest[]): { logprob: number; isGreedy: boolean }[] {
    this.ll.push(...rs);
    return rs.map((r) => ({ logprob: r.continuation.trim() === "B" ? -1 : -2, isGreedy: false }));
  }
  loglikelihoodRolling(ts: string[]): number[] {
    return ts.map(() => 0);
  }
  generateUntil(rs: GenerationRequest[]): string[] {
    this.gen.push(...rs);
    return rs.map(() => " 3 + 4 = 7. So the answer is 7.");
  }
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt: boolean; chatTemplate?: string }) {
    if (!this.tok) throw new Error("no tokenizer");
    return renderChatForHarness(this.tok, messages, opts, (w) => this.warnings.push(w));
  }
  chatTemplate(name?: string): string {
    if (!this.tok) throw new Error("no tokenizer");
    return this.tok.resolveChatTemplate(name);
  }
}

// mmlu_abstract_algebra: the first test question and the first two dev questions (the CSVs)
const DESCRIPTION = "The following are multiple choice questions (with answers) about abstract algebra.\n\n";
const Q_TEST =
  "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:";
const Q_DEV0 = "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer:";
const Q_DEV1 =
  "Statement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and K are subgroups of G then HK is a subgroup of G.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer:";
const MMLU = "mmlu_abstract_algebra";

const im = (role: string, content: string) => `<|im_start|>${role}\n${content}<|im_end|>\n`;

test("MMLU 0-shot under ChatML: the description is the system message, the choices lose the delimiter", () => {
  const lm = new RecordingLM(gpt2Tokenizer(QWEN2_TEMPLATE));
  const out = evaluateLM(lm, [MMLU], { dataDir: DATA, limit: 1, applyChatTemplate: true, bootstrapIters: 0 });
  const ctx = im("system", DESCRIPTION) + im("user", Q_TEST) + "<|im_start|>assistant\n";
  assert.deepEqual(
    lm.ll.map((r) => r.continuation),
    ["A", "B", "C", "D"],
  );
  for (const r of lm.ll) assert.equal(r.context, ctx);
  const r = out.results;
  assert.equal(r.chat_template, QWEN2_TEMPLATE);
  assert.equal(r.chat_template_sha, createHash("sha256").update(QWEN2_TEMPLATE, "utf8").digest("hex"));
  assert.equal(r.fewshot_as_multiturn, true); // lm-eval's default once a chat template is applied
  assert.equal(r.system_instruction, null);
  assert.equal(r.system_instruction_sha, null);
  // the gold answer is B: scored 1.0 by the recording LM
  assert.equal(r.results[MMLU]?.["acc,none"], 1);
  assert.equal(out.samples[MMLU]?.[0]?.arguments.gen_args_1?.arg_0, ctx);

  // without the chat template: the plain prompt and " A".." D", and no template in the results
  const plain = new RecordingLM(null);
  const p = evaluateLM(plain, [MMLU], { dataDir: DATA, limit: 1, bootstrapIters: 0 });
  assert.equal(plain.ll[0]?.context, DESCRIPTION + Q_TEST);
  assert.deepEqual(
    plain.ll.map((x) => x.continuation),
    [" A", " B", " C", " D"],
  );
  assert.equal(p.results.chat_template, null);
  assert.equal(p.results.chat_template_sha, null);
  assert.equal(p.results.fewshot_as_multiturn, false);
});

test("MMLU 2-shot under ChatML: examples as turns (default) or as one user message", () => {
  const multi = new RecordingLM(gpt2Tokenizer(QWEN2_TEMPLATE));
  evaluateLM(multi, [MMLU], {
    dataDir: DATA,
    limit: 1,
    numFewshot: 2,
    applyChatTemplate: true,
    bootstrapIters: 0,
  });
  assert.equal(
    multi.ll[0]?.context,
    im("system", DESCRIPTION) +
      im("user", Q_DEV0) +
      im("assistant", "B") +
      im("user", Q_DEV1) +
      im("assistant", "B") +
      im("user", Q_TEST) +
      "<|im_start|>assistant\n",
  );
  const single = new RecordingLM(gpt2Tokenizer(QWEN2_TEMPLATE));
  const out = evaluateLM(single, [MMLU], {
    dataDir: DATA,
    limit: 1,
    numFewshot: 2,
    applyChatTemplate: true,
    fewshotAsMultiturn: false,
    bootstrapIters: 0,
  });
  assert.equal(
    single.ll[0]?.context,
    im("system", DESCRIPTION) +
      im("user", `${Q_DEV0} B\n\n${Q_DEV1} B\n\n${Q_TEST}`) +
      "<|im_start|>assistant\n",
  );
  assert.equal(out.results.fewshot_as_multiturn, false);
  assert.deepEqual(
    single.ll.map((r) => r.continuation),
    ["A", "B", "C", "D"],
  );
});

test("system instruction: before the description, in plain text and as the system message", () => {
  const si = "Answer with one letter.";
  const plain = new RecordingLM(null);
  const p = evaluateLM(plain, [MMLU], { dataDir: DATA, limit: 1, systemInstruction: si, bootstrapIters: 0 });
  // maybe_delimit(instruction, description, fewshot_delimiter "\n\n")
  assert.equal(plain.ll[0]?.context, `${si}\n\n${DESCRIPTION}${Q_TEST}`);
  assert.equal(p.results.system_instruction, si);
  assert.equal(p.results.system_instruction_sha, createHash("sha256").update(si).digest("hex"));
  const chat = new RecordingLM(gpt2Tokenizer(USER_ASSISTANT_TEMPLATE));
  evaluateLM(chat, [MMLU], {
    dataDir: DATA,
    limit: 1,
    systemInstruction: si,
    applyChatTemplate: true,
    bootstrapIters: 0,
  });
  // the User:/Assistant: template writes a system message and a blank line
  assert.equal(chat.ll[0]?.context, `${si}\n\n${DESCRIPTION}\n\nUser: ${Q_TEST}\nAssistant:`);
});

test("a template without a system role: rendered again without the system message, with a warning", () => {
  const lm = new RecordingLM(gpt2Tokenizer(MISTRAL_TEMPLATE));
  evaluateLM(lm, [MMLU], {
    dataDir: DATA,
    limit: 1,
    numFewshot: 1,
    applyChatTemplate: true,
    bootstrapIters: 0,
  });
  // the description is gone (as in lm-eval); the example is a turn: [INST] q [/INST]answer</s>
  assert.equal(
    lm.ll[0]?.context,
    `<|endoftext|>[INST] ${Q_DEV0} [/INST]B<|endoftext|>[INST] ${Q_TEST} [/INST]`,
  );
  assert.equal(lm.warnings.length, 1);
  assert.match(lm.warnings[0] as string, /Conversation roles must alternate.*without the system message/);
});

test("world tasks under a chat template: 0-shot and 2-shot generation prompts, choices keep their own space", () => {
  const dir = mkdtempSync(join(tmp, "world-"));
  const gen = (id: string, a: number, b: number) => ({
    id,
    type: "generate_until",
    prompt: `Question: What is ${a} + ${b}?\nAnswer:`,
    target: String(a + b),
    reference: ` ${a} + ${b} = ${a + b}. So the answer is ${a + b}.`,
    until: ["\n"],
    answer_pattern: "the answer is (.+?)\\.(?:\\s|$)",
  });
  const lines = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).join("\n") + "\n";
  writeFileSync(join(dir, "sums.jsonl"), lines([gen("s/0", 3, 4)]));
  writeFileSync(join(dir, "sums.dev.jsonl"), lines([gen("s/d0", 1, 1), gen("s/d1", 2, 5)]));
  writeFileSync(
    join(dir, "quiz.jsonl"),
    lines([
      {
        id: "q/0",
        type: "multiple_choice",
        prompt: "Is 7 odd?\nAnswer:",
        choices: [" yes", " no"],
        gold: 0,
        target: "",
      },
    ]),
  );
  const tok = gpt2Tokenizer(USER_ASSISTANT_TEMPLATE);

  const zero = new RecordingLM(tok);
  const z = evaluateLM(zero, [`world:${dir}`], { applyChatTemplate: true, bootstrapIters: 0 });
  assert.equal(zero.gen[0]?.context, "User: Question: What is 3 + 4?\nAnswer:\nAssistant:");
  assert.deepEqual(zero.gen[0]?.until, ["\n"]); // generation arguments unchanged
  assert.equal(z.results.results.world_sums?.["exact_match,extract"], 1);
  // world choices carry their own leading space (target delimiter ""): they keep it
  assert.deepEqual(
    zero.ll.map((r) => [r.context, r.continuation]),
    [
      ["User: Is 7 odd?\nAnswer:\nAssistant:", " yes"],
      ["User: Is 7 odd?\nAnswer:\nAssistant:", " no"],
    ],
  );

  const two = new RecordingLM(tok);
  evaluateLM(two, ["world_sums"], {
    worldDir: dir,
    numFewshot: 2,
    applyChatTemplate: true,
    bootstrapIters: 0,
  });
  assert.equal(
    two.gen[0]?.context,
    "User: Question: What is 1 + 1?\nAnswer:\n" +
      "Assistant:  1 + 1 = 2. So the answer is 2.<|endoftext|>\n" +
      "User: Question: What is 2 + 5?\nAnswer:\n" +
      "Assistant:  2 + 5 = 7. So the answer is 7.<|endoftext|>\n" +
      "User: Question: What is 3 + 4?\nAnswer:\nAssistant:",
  );
  const one = new RecordingLM(tok);
  evaluateLM(one, ["world_sums"], {
    worldDir: dir,
    numFewshot: 2,
    applyChatTemplate: true,
    fewshotAsMultiturn: false,
    bootstrapIters: 0,
  });
  // one user message: target delimiter "" and few-shot delimiter "\n\n" between the examples
  assert.equal(
    one.gen[0]?.context,
    "User: Question: What is 1 + 1?\nAnswer: 1 + 1 = 2. So the answer is 2.\n\n" +
      "Question: What is 2 + 5?\nAnswer: 2 + 5 = 7. So the answer is 7.\n\n" +
      "Question: What is 3 + 4?\nAnswer:\nAssistant:",
  );
});

test("errors: no chat template (naming the file), multiturn without a template, an LM that cannot render", () => {
  const demo = join(ROOT, "models", "demo");
  const model = loadModel(demo);
  try {
    const tok = loadTokenizer(demo);
    assert.throws(
      () => evaluate(model, tok, ["world_facts"], { applyChatTemplate: true, limit: 1, cache: false }),
      (e: unknown) =>
        e instanceof NoChatTemplateError &&
        e.message.includes(join(demo, "tokenizer_config.json")) &&
        /has no chat_template/.test(e.message),
    );
  } finally {
    model.free();
  }
  assert.throws(
    () => evaluateLM(new RecordingLM(null), [MMLU], { dataDir: DATA, limit: 1, fewshotAsMultiturn: true }),
    /fewshotAsMultiturn needs applyChatTemplate/,
  );
  const bare: LM = {
    loglikelihood: () => [],
    loglikelihoodRolling: () => [],
    generateUntil: () => [],
  };
  assert.throws(
    () => evaluateLM(bare, [MMLU], { dataDir: DATA, limit: 1, applyChatTemplate: true }),
    /this LM has no applyChatTemplate/,
  );
});

test("generation: a prompt that starts with the BOS text gets no second BOS (lm-eval's has_bos_prefix)", () => {
  const model = loadModel(join(FIXTURES, "gpt2-tiny"));
  try {
    const json = JSON.parse(readFileSync(join(FIXTURES, "gpt2-tiny", "tokenizer.json"), "utf8")) as unknown;
    // a tokenizer that adds a BOS, as Llama's does
    const tok = Tokenizer.fromTokenizerJson(json, {
      tokenizerConfig: { bos_token: "<|endoftext|>", eos_token: "<|endoftext|>", add_bos_token: true },
    });
    const lm = new ModelLM(model, tok, { progress: false });
    const ask = (context: string, add: boolean) =>
      lm.generateUntil([{ context, add_special_tokens: add, max_gen_toks: 6, until: [] }])[0];
    const once = ask("<|endoftext|>The cat", false);
    assert.equal(ask("<|endoftext|>The cat", true), once); // not <bos><bos>The cat
    assert.equal(ask("The cat", true), once); // the BOS added once by the tokenizer
  } finally {
    model.free();
  }
});

test("spec: benchmarks.apply_chat_template, fewshot_as_multiturn and system_instruction", () => {
  const demo = join(ROOT, "models", "demo");
  const base = (benchmarks: Record<string, unknown>) => ({
    name: "x",
    models: [demo],
    methods: ["rome"],
    data: { path: join(demo, "world", "counterfact.json"), n: 10 },
    benchmarks: { tasks: ["world"], ...benchmarks },
  });
  const b = (x: Record<string, unknown>) => parseSpec(base(x)).benchmarks;
  // absent: no field at all (the stored spec of older runs keeps its key)
  const none = b({});
  assert.ok(
    !("applyChatTemplate" in none) && !("fewshotAsMultiturn" in none) && !("systemInstruction" in none),
  );
  assert.ok(!("applyChatTemplate" in b({ apply_chat_template: false })));
  assert.equal(b({ apply_chat_template: true }).applyChatTemplate, true);
  assert.equal(b({ apply_chat_template: "tool_use" }).applyChatTemplate, "tool_use");
  const all = b({ apply_chat_template: true, fewshot_as_multiturn: false, system_instruction: "Be brief." });
  assert.equal(all.fewshotAsMultiturn, false);
  assert.equal(all.systemInstruction, "Be brief.");
  const bad = (x: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => parseSpec(base(x)),
      (e: Error) => e instanceof SpecError && re.test(e.message),
    );
  bad({ apply_chat_template: 1 }, /benchmarks\.apply_chat_template: expected true, false or a template name/);
  bad({ apply_chat_template: "" }, /benchmarks\.apply_chat_template/);
  bad(
    { fewshot_as_multiturn: true },
    /benchmarks\.fewshot_as_multiturn: true needs benchmarks\.apply_chat_template/,
  );
  bad(
    { apply_chat_template: true, fewshot_as_multiturn: "yes" },
    /benchmarks\.fewshot_as_multiturn: expected true or false/,
  );
  bad({ system_instruction: 3 }, /benchmarks\.system_instruction: expected a non-empty string/);
  bad({ chat_template: true }, /benchmarks: unknown field 'chat_template'/);
});

test("editeval eval --apply_chat_template on the demo model with a chat template", () => {
  const demo = join(ROOT, "models", "demo");
  const dir = join(tmp, "demo-chat");
  rmSync(dir, { recursive: true, force: true });
  copyModel(demo, dir);
  const out = join(tmp, "eval-out");
  const logged: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void logged.push(a.join(" "));
  try {
    const rc = evalCommand([
      "--model",
      dir,
      "--tasks",
      "world_knowledge_mc",
      "--world_dir",
      join(demo, "world", "tasks"),
      "--limit",
      "2",
      "--no_cache",
      "--apply_chat_template",
      "--output_path",
      join(out, "results.json"),
      "--log_samples",
    ]);
    assert.equal(rc, 0);
  } finally {
    console.log = log;
  }
  const r = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as Record<string, unknown>;
  assert.equal(r.chat_template, USER_ASSISTANT_TEMPLATE);
  assert.equal(r.chat_template_sha, createHash("sha256").update(USER_ASSISTANT_TEMPLATE).digest("hex"));
  assert.equal(r.fewshot_as_multiturn, true);
  const acc = (r.results as Record<string, Record<string, number>>).world_knowledge_mc?.["acc,none"];
  assert.ok(typeof acc === "number" && acc >= 0 && acc <= 1);
  const samples = readdirSync(out).filter((f) => f.startsWith("samples_world_knowledge_mc_"));
  assert.equal(samples.length, 1);
  const first = JSON.parse(
    readFileSync(join(out, samples[0] as string), "utf8").split("\n")[0] as string,
  ) as {
    arguments: Record<string, { arg_0: string; arg_1: string }>;
  };
  assert.equal(
    first.arguments.gen_args_0?.arg_0,
    "User: Question: What is the capital of Saishunen?\nA. Morkro\nB. Gamlesvik\nC. Bronna\nD. Seston\nAnswer:\nAssistant:",
  );
  assert.equal(first.arguments.gen_args_0?.arg_1, " A");
  assert.ok(logged.some((l) => /chat template \(sha256 [0-9a-f]{12}\), fewshot_as_multiturn: true/.test(l)));
});

/** A copy of a checkpoint folder whose tokenizer_config.json has the User:/Assistant: chat template. */
function copyModel(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from))
    if (f.endsWith(".json") || f.endsWith(".safetensors")) copyFileSync(join(from, f), join(to, f));
  const cfg = JSON.parse(readFileSync(join(from, "tokenizer_config.json"), "utf8")) as Record<
    string,
    unknown
  >;
  writeFileSync(
    join(to, "tokenizer_config.json"),
    JSON.stringify({ ...cfg, chat_template: USER_ASSISTANT_TEMPLATE }),
  );
}

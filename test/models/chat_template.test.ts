// Chat templates: real templates (Qwen2-Instruct's ChatML, Llama-2-chat's [INST], a plain
// "User:/Assistant:" one) rendered as transformers renders them, each output written out by hand from
// the template text; add_generation_prompt on and off; special tokens as template variables;
// continue_final_message; tokenize; named templates; and the errors (no template, a failing template).
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ChatTemplateError,
  llama2cTokenizerToHF,
  loadTokenizer,
  NoChatTemplateError,
  Tokenizer,
  type ChatMessage,
} from "../../src/models/tokenizer/index.js";
import { DATA, FIXTURES } from "../helpers.js";

const GPT2_DIR = join(FIXTURES, "gpt2-tiny");
const TOK512 = join(DATA, "llama2c_stories260K", "tok512.bin");

/** Qwen2-7B-Instruct's chat_template (tokenizer_config.json), as the file holds it. */
const QWEN2_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Llama-2-7b-chat-hf's chat_template, as the file holds it. */
const LLAMA2_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

/** A plain template written over several lines (trim_blocks / lstrip_blocks decide its whitespace). */
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

const gpt2Json = (): unknown => JSON.parse(readFileSync(join(GPT2_DIR, "tokenizer.json"), "utf8"));

/** The gpt2-tiny tokenizer under a given tokenizer_config.json. */
function gpt2With(config: Record<string, unknown>): Tokenizer {
  return Tokenizer.fromTokenizerJson(gpt2Json(), {
    tokenizerConfig: {
      bos_token: "<|endoftext|>",
      eos_token: "<|endoftext|>",
      unk_token: "<|endoftext|>",
      ...config,
    },
  });
}

const QA: ChatMessage[] = [
  { role: "user", content: "What is 2+2?" },
  { role: "assistant", content: "4" },
  { role: "user", content: "And 3+3?" },
];

test("ChatML (Qwen2): default system turn, add_generation_prompt on and off", () => {
  const tok = gpt2With({ chat_template: QWEN2_TEMPLATE, eos_token: "<|im_end|>", bos_token: null });
  assert.equal(tok.chatTemplate, QWEN2_TEMPLATE);
  const one: ChatMessage[] = [{ role: "user", content: "What is 2+2?" }];
  assert.equal(
    tok.applyChatTemplate(one, { addGenerationPrompt: true }),
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n" +
      "<|im_start|>assistant\n",
  );
  // transformers' default: add_generation_prompt=False
  assert.equal(
    tok.applyChatTemplate(one),
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n",
  );
  assert.equal(
    tok.applyChatTemplate([{ role: "system", content: "Be brief." }, ...QA], { addGenerationPrompt: true }),
    "<|im_start|>system\nBe brief.<|im_end|>\n" +
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n" +
      "<|im_start|>assistant\n4<|im_end|>\n" +
      "<|im_start|>user\nAnd 3+3?<|im_end|>\n" +
      "<|im_start|>assistant\n",
  );
  // continue_final_message: the text stops right after the last message's content
  assert.equal(
    tok.applyChatTemplate([...one, { role: "assistant", content: "The answer is " }], {
      continueFinalMessage: true,
    }),
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\nThe answer is",
  );
  assert.throws(
    () => tok.applyChatTemplate(one, { addGenerationPrompt: true, continueFinalMessage: true }),
    /cannot both be set/,
  );
});

test("Llama-2 [INST]: system folded into the first turn, bos/eos from the config, role check raises", () => {
  const tok = Tokenizer.fromTokenizerJson(llama2cTokenizerToHF(TOK512), {
    tokenizerConfig: {
      bos_token: "<s>",
      eos_token: "</s>",
      unk_token: "<unk>",
      add_bos_token: true,
      chat_template: LLAMA2_TEMPLATE,
    },
  });
  const chat: ChatMessage[] = [{ role: "system", content: "Be brief." }, ...QA];
  const expected =
    "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is 2+2? [/INST] 4 </s><s>[INST] And 3+3? [/INST]";
  assert.equal(tok.applyChatTemplate(chat, { addGenerationPrompt: true }), expected);
  // this template has no generation prompt: the flag changes nothing
  assert.equal(tok.applyChatTemplate(chat), expected);
  // content is stripped by the template
  assert.equal(tok.applyChatTemplate([{ role: "user", content: "  hi \n" }]), "<s>[INST] hi [/INST]");
  // tokenize: ids of the text without special tokens added (the template wrote <s> itself: one BOS)
  const { text, ids } = tok.applyChatTemplate(chat, { tokenize: true });
  assert.equal(text, expected);
  assert.equal(ids[0], 1);
  assert.notEqual(ids[1], 1);
  assert.equal(ids.filter((i) => i === 1).length, 2); // <s> before each [INST]
  assert.equal(ids.filter((i) => i === 2).length, 1); // </s> after the answer
  assert.deepEqual(ids, tok.encode(expected, { addSpecialTokens: false }));
  // raise_exception: roles that do not alternate
  assert.throws(
    () => tok.applyChatTemplate([{ role: "assistant", content: "Hi" }]),
    (e: unknown) =>
      e instanceof ChatTemplateError && /Conversation roles must alternate user\/assistant/.test(e.message),
  );
});

test("User:/Assistant: template over several lines: trim_blocks and lstrip_blocks as transformers", () => {
  const tok = gpt2With({ chat_template: USER_ASSISTANT_TEMPLATE });
  assert.equal(
    tok.applyChatTemplate(QA, { addGenerationPrompt: true }),
    "User: What is 2+2?\nAssistant: 4<|endoftext|>\nUser: And 3+3?\nAssistant:",
  );
  assert.equal(
    tok.applyChatTemplate(QA, { addGenerationPrompt: false }),
    "User: What is 2+2?\nAssistant: 4<|endoftext|>\nUser: And 3+3?\n",
  );
  assert.equal(
    tok.applyChatTemplate([{ role: "system", content: "Answer with a number." }, ...QA.slice(0, 1)], {
      addGenerationPrompt: true,
    }),
    "Answer with a number.\n\nUser: What is 2+2?\nAssistant:",
  );
  // tokenize with the GPT-2 vocabulary: <|endoftext|> is the added token 767
  const { ids } = tok.applyChatTemplate(QA, { tokenize: true });
  assert.equal(ids.filter((i) => i === 767).length, 1);
});

test("template variables: the special tokens that are set, additional ones, and extra variables", () => {
  const tok = gpt2With({
    bos_token: "<|endoftext|>",
    pad_token: null,
    additional_special_tokens: ["<|endoftext|>"],
    chat_template:
      "[{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|{{ additional_special_tokens | length }}|{{ greeting }}|{{ add_generation_prompt }}|{{ tools is none }}]",
  });
  assert.equal(
    tok.applyChatTemplate([], { templateVars: { greeting: "hi" }, addGenerationPrompt: true }),
    "[<|endoftext|>|<|endoftext|>||1|hi|true|true]",
  );
});

test("chat_template from tokenizer_config.json, the named-list form, and the errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "editeval-chat-"));
  try {
    for (const f of ["tokenizer.json", "special_tokens_map.json"])
      copyFileSync(join(GPT2_DIR, f), join(dir, f));
    const config = JSON.parse(readFileSync(join(GPT2_DIR, "tokenizer_config.json"), "utf8")) as Record<
      string,
      unknown
    >;
    // no chat template: the error names the file and the way out
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config));
    const plain = loadTokenizer(dir);
    assert.equal(plain.chatTemplate, null);
    assert.throws(
      () => plain.applyChatTemplate(QA),
      (e: unknown) =>
        e instanceof NoChatTemplateError &&
        e.message.includes(join(dir, "tokenizer_config.json")) &&
        /has no chat_template/.test(e.message) &&
        /without --apply_chat_template/.test(e.message),
    );
    assert.throws(() => plain.resolveChatTemplate(), NoChatTemplateError);

    // the string form, read from the file
    writeFileSync(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({ ...config, chat_template: USER_ASSISTANT_TEMPLATE }),
    );
    const one = loadTokenizer(dir);
    assert.equal(one.chatTemplate, USER_ASSISTANT_TEMPLATE);
    assert.equal(one.chatTemplates, null);
    assert.equal(
      one.applyChatTemplate(QA.slice(0, 1), { addGenerationPrompt: true }),
      "User: What is 2+2?\nAssistant:",
    );
    // a template string given as the chatTemplate option is used as is (transformers' chat_template=...)
    assert.equal(
      one.applyChatTemplate(QA.slice(0, 1), { chatTemplate: "{{ messages[0].content | upper }}" }),
      "WHAT IS 2+2?",
    );

    // a list of named templates: "default" unless another is named
    const named = [
      { name: "default", template: QWEN2_TEMPLATE },
      { name: "plain", template: USER_ASSISTANT_TEMPLATE },
    ];
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ ...config, chat_template: named }));
    const two = loadTokenizer(dir);
    assert.equal(two.chatTemplate, QWEN2_TEMPLATE);
    assert.deepEqual(two.chatTemplates, { default: QWEN2_TEMPLATE, plain: USER_ASSISTANT_TEMPLATE });
    assert.ok(two.applyChatTemplate(QA.slice(0, 1)).startsWith("<|im_start|>system\n"));
    assert.equal(
      two.applyChatTemplate(QA.slice(0, 1), { chatTemplate: "plain", addGenerationPrompt: true }),
      "User: What is 2+2?\nAssistant:",
    );
    assert.throws(
      () => two.applyChatTemplate(QA, { chatTemplate: "tool_use" }),
      /no chat template named "tool_use" \(the file names default, plain\)/,
    );

    // named templates without a "default": transformers asks for a name
    writeFileSync(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({ ...config, chat_template: [{ name: "rag", template: "R" }, named[1]] }),
    );
    const three = loadTokenizer(dir);
    assert.equal(three.chatTemplate, null);
    assert.throws(
      () => three.applyChatTemplate(QA),
      /several chat templates \(plain, rag\) and none named "default"/,
    );
    assert.equal(three.resolveChatTemplate("rag"), "R");

    // a template that does not parse
    writeFileSync(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({ ...config, chat_template: "{% for m in messages %}{{ m.content" }),
    );
    assert.throws(
      () => loadTokenizer(dir).applyChatTemplate(QA),
      (e: unknown) => e instanceof ChatTemplateError && /does not parse/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("applyChatTemplate: malformed messages are refused with the index", () => {
  const tok = gpt2With({ chat_template: QWEN2_TEMPLATE });
  assert.throws(
    () => tok.applyChatTemplate([QA[0] as ChatMessage, { role: "user" } as unknown as ChatMessage]),
    /messages\[1\] must be \{role: string, content: string\}/,
  );
});

/**
 * Chat-templated prompts, built as lm-evaluation-harness builds them with `--apply_chat_template`
 * (commit 4e7e0d4: `lm_eval/api/task.py` `fewshot_context` and `build_qa_turn`, `lm_eval/api/utils.py`
 * `Message`, `maybe_delimit` and `multiturn_to_singleturn`, `lm_eval/models/huggingface.py`
 * `apply_chat_template`, `lm_eval/config/evaluate_config.py`):
 *
 * - the system prompt is the system instruction (`--system_instruction`) and the task's description,
 *   joined by the few-shot delimiter unless either has whitespace at the join (`maybe_delimit`); it
 *   becomes a `system` message;
 * - each few-shot example is a `user` turn (its question, then the target delimiter when it has an
 *   answer) and an `assistant` turn (its answer, then the few-shot delimiter); the document is a last
 *   `user` turn;
 * - with `fewshot_as_multiturn` (lm-eval's default once a chat template is applied) the turns are sent
 *   as they are, without their delimiters; without it they are joined, delimiters included, into one
 *   `user` message (the plain-text prompt less its system prompt): `multiturn_to_singleturn`;
 * - the chat is rendered with `add_generation_prompt=True` (no task here has a `gen_prefix`);
 * - a template that fails (jinja2's `TemplateError`, e.g. `raise_exception('System role not
 *   supported')`) is rendered again without the system messages, with a warning (huggingface.py);
 * - in requests, multiple-choice continuations lose the target delimiter (the choice follows the
 *   generation prompt directly); see evaluate.ts.
 */
import type { ChatMessage } from "../models/tokenizer/index.js";
import { ChatTemplateError, type Tokenizer } from "../models/tokenizer/index.js";
import { answerText, systemPrompt, type Doc, type TaskDef } from "./task.js";

/** What a prompt builder needs to apply a chat template. */
export interface ChatPromptOptions {
  /** renders a chat into the prompt text (the LM's apply_chat_template) */
  render(messages: ChatMessage[], addGenerationPrompt: boolean): string;
  /** few-shot examples as alternating user/assistant turns (else one user message) */
  fewshotAsMultiturn: boolean;
}

/** lm-eval's Message: a turn and the delimiter that follows it in plain text. */
export interface Turn {
  role: "system" | "user" | "assistant";
  content: string;
  delimiter: string;
}

/** The turns of a prompt (fewshot_context's messages): system prompt, examples with answers, the document. */
export function promptTurns(task: TaskDef, doc: Doc, examples: Doc[], systemInstruction?: string): Turn[] {
  const turns: Turn[] = [];
  const sys = systemPrompt(task, systemInstruction);
  if (sys) turns.push({ role: "system", content: sys, delimiter: "" });
  for (const ex of examples) {
    const raw: unknown = task.fewshotTarget ? task.fewshotTarget(ex) : task.docToTarget(ex);
    const hasAnswer = raw !== null && raw !== undefined && raw !== "";
    turns.push({
      role: "user",
      content: task.docToText(ex),
      delimiter: hasAnswer ? task.targetDelimiter : "",
    });
    if (hasAnswer)
      turns.push({ role: "assistant", content: answerText(task, ex), delimiter: task.fewshotDelimiter });
  }
  turns.push({ role: "user", content: task.docToText(doc), delimiter: "" });
  return turns;
}

/** The chat sent to the template: the turns as they are, or collapsed into one user message (multiturn_to_singleturn). */
export function chatMessages(turns: Turn[], fewshotAsMultiturn: boolean): ChatMessage[] {
  if (fewshotAsMultiturn) return turns.map((t) => ({ role: t.role, content: t.content }));
  const first = turns[0];
  const system = first && first.role === "system" ? first : null;
  const rest = system ? turns.slice(1) : turns;
  const text = rest.map((t, i) => t.content + (i === rest.length - 1 ? "" : t.delimiter)).join("");
  const user: ChatMessage = { role: "user", content: text };
  return system ? [{ role: "system", content: system.content }, user] : [user];
}

/** The chat-templated context of a document (fewshot_context with apply_chat_template). */
export function buildChatContext(
  task: TaskDef,
  doc: Doc,
  examples: Doc[],
  chat: ChatPromptOptions,
  systemInstruction?: string,
): string {
  const turns = promptTurns(task, doc, examples, systemInstruction);
  return chat.render(chatMessages(turns, chat.fewshotAsMultiturn), true);
}

/**
 * lm-eval's HFLM.apply_chat_template on a tokenizer: render with `add_generation_prompt` (and
 * `continue_final_message` when not); when the template fails, warn and render again without the
 * system messages.
 */
export function renderChatForHarness(
  tok: Tokenizer,
  messages: ChatMessage[],
  opts: { addGenerationPrompt: boolean; chatTemplate?: string },
  warn: (msg: string) => void = (m) => process.stderr.write(`editeval harness: ${m}\n`),
): string {
  const args = {
    addGenerationPrompt: opts.addGenerationPrompt,
    continueFinalMessage: !opts.addGenerationPrompt,
    ...(opts.chatTemplate !== undefined ? { chatTemplate: opts.chatTemplate } : {}),
  };
  try {
    return tok.applyChatTemplate(messages, args);
  } catch (e) {
    if (!(e instanceof ChatTemplateError) || !messages.some((m) => m.role === "system")) throw e;
    warn(`${e.message}; rendering again without the system message (as lm-evaluation-harness does)`);
    return tok.applyChatTemplate(
      messages.filter((m) => m.role !== "system"),
      args,
    );
  }
}

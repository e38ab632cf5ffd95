/**
 * Chat templates: the Jinja string of `tokenizer_config.json`'s `chat_template`, rendered the way
 * transformers' `tokenizer.apply_chat_template` renders it (transformers 4.4x,
 * `tokenization_utils_base.py` / `utils/chat_template_utils.py`):
 * - the template runs with Jinja's `trim_blocks` and `lstrip_blocks` on and the trailing newline of the
 *   template dropped (`ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)`);
 * - its variables are `messages`, `add_generation_prompt`, `tools` and `documents` (None here), the
 *   tokenizer's special tokens that are set (`special_tokens_map`: `bos_token`, `eos_token`,
 *   `unk_token`, `pad_token`, `additional_special_tokens`), and any extra keyword arguments
 *   (`enable_thinking`, `date_string`, ...); the globals `raise_exception` and `strftime_now`;
 * - `continue_final_message` cuts the text right after the last message's (stripped) content;
 * - a list of named templates picks the one asked for, else "default"; with no "default" the caller
 *   must name one (transformers raises "This model has multiple chat templates with no default
 *   specified!");
 * - `tokenize` encodes the text without adding special tokens (the template writes them).
 *
 * The Jinja engine is `@huggingface/jinja` (the JavaScript port transformers.js uses). Differences from
 * Python's jinja2 that can matter: an attribute of an undefined value renders as "" instead of raising,
 * and every error the engine raises while parsing or rendering (a `raise_exception` call, an unknown
 * filter, a syntax error) becomes a {@link ChatTemplateError}, the counterpart of jinja2's
 * `TemplateError` (lm-evaluation-harness catches that one to retry without the system message).
 */
import { Template } from "@huggingface/jinja";

/** One message of a chat: a role ("system", "user", "assistant", ...) and its text; extra fields pass to the template. */
export interface ChatMessage {
  role: string;
  content: string;
  [field: string]: unknown;
}

/** Options of `Tokenizer.applyChatTemplate` (transformers' keyword arguments of the same names). */
export interface ApplyChatTemplateOptions {
  /** end with the tokens that start an assistant reply (`add_generation_prompt`; default false) */
  addGenerationPrompt?: boolean;
  /** leave the last message open so the model continues it (`continue_final_message`; default false) */
  continueFinalMessage?: boolean;
  /** also return the token ids (encoded without adding special tokens; default false) */
  tokenize?: boolean;
  /** a template name (from a list of named templates) or a template string; default: the tokenizer's */
  chatTemplate?: string;
  /** further template variables (transformers' `**kwargs`, e.g. `enable_thinking`) */
  templateVars?: Record<string, unknown>;
}

/** The result of `applyChatTemplate` with `tokenize: true`. */
export interface TokenizedChat {
  text: string;
  ids: number[];
}

/** A checkpoint without a chat template was asked to render a chat. The message names the file to fix. */
export class NoChatTemplateError extends Error {
  override name = "NoChatTemplateError";
}

/** A chat template failed to parse or render (jinja2's `TemplateError`, `raise_exception` included). */
export class ChatTemplateError extends Error {
  override name = "ChatTemplateError";
}

/** Where the chat template of a tokenizer loaded from `source` lives, for messages. */
export function chatTemplateFile(source: string): string {
  const slash = source.lastIndexOf("/");
  if (slash < 0) return "tokenizer_config.json";
  return `${source.slice(0, slash)}/tokenizer_config.json`;
}

/**
 * The template to render: a named one, a template string given as is, or the tokenizer's own
 * (`chat_template`, or the list's "default").
 * @param own the tokenizer's template (the list's "default"), or null
 * @param named the named templates when `chat_template` was a list, else null
 * @param asked a name or a template string, or undefined
 * @param file the file the templates come from (for messages)
 * @throws NoChatTemplateError when there is nothing to render with
 */
export function selectChatTemplate(
  own: string | null,
  named: Readonly<Record<string, string>> | null,
  asked: string | undefined,
  file: string,
): string {
  const names = named ? Object.keys(named).sort() : [];
  if (asked !== undefined) {
    if (named && Object.hasOwn(named, asked)) return named[asked] as string;
    // transformers: a string that is not a template name is the template itself
    if (asked.includes("{{") || asked.includes("{%")) return asked;
    throw new NoChatTemplateError(
      names.length > 0
        ? `${file}: no chat template named ${JSON.stringify(asked)} (the file names ${names.join(", ")})`
        : `${file}: no chat template named ${JSON.stringify(asked)}: the file has ${own === null ? "no chat template" : "one unnamed chat_template"}`,
    );
  }
  if (own !== null) return own;
  if (names.length > 0)
    throw new NoChatTemplateError(
      `${file}: this model has several chat templates (${names.join(", ")}) and none named "default"; name the one to use (--apply_chat_template NAME)`,
    );
  throw new NoChatTemplateError(
    `${file} has no chat_template: this model has no chat template. Evaluate it without --apply_chat_template, or add a chat_template (a Jinja string, as transformers writes it) to that file`,
  );
}

const compiled = new Map<string, Template>();

function compile(template: string, file: string): Template {
  let t = compiled.get(template);
  if (t) return t;
  try {
    t = new Template(template);
  } catch (e) {
    throw new ChatTemplateError(`${file}: the chat template does not parse: ${(e as Error).message}`);
  }
  if (compiled.size >= 64) compiled.delete(compiled.keys().next().value as string);
  compiled.set(template, t);
  return t;
}

/**
 * Renders a chat with a template (transformers' `render_jinja_template` for one conversation).
 * @param template the Jinja text
 * @param messages the conversation
 * @param vars the special tokens and extra variables
 * @param opts addGenerationPrompt / continueFinalMessage
 * @param file where the template comes from (for messages)
 * @throws ChatTemplateError when the template fails (its `raise_exception` included)
 */
export function renderChat(
  template: string,
  messages: readonly ChatMessage[],
  vars: Record<string, unknown>,
  opts: { addGenerationPrompt: boolean; continueFinalMessage: boolean },
  file: string,
): string {
  if (opts.addGenerationPrompt && opts.continueFinalMessage)
    throw new Error(
      "applyChatTemplate: addGenerationPrompt and continueFinalMessage cannot both be set (the first starts a new reply, the second continues the last message)",
    );
  for (const [i, m] of messages.entries()) {
    if (m === null || typeof m !== "object" || typeof m.role !== "string" || typeof m.content !== "string")
      throw new TypeError(`applyChatTemplate: messages[${i}] must be {role: string, content: string}`);
  }
  const t = compile(template, file);
  let text: string;
  try {
    text = t.render({
      ...vars,
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: opts.addGenerationPrompt,
      tools: null,
      documents: null,
    });
  } catch (e) {
    throw new ChatTemplateError(`${file}: the chat template failed: ${(e as Error).message}`);
  }
  if (opts.continueFinalMessage) {
    const last = messages[messages.length - 1];
    if (!last) throw new Error("applyChatTemplate: continueFinalMessage needs at least one message");
    const final = last.content.trim();
    const at = text.lastIndexOf(final);
    if (at < 0)
      throw new ChatTemplateError(
        `${file}: continueFinalMessage is set but the final message does not appear in the rendered chat`,
      );
    text = text.slice(0, at + final.length);
  }
  return text;
}

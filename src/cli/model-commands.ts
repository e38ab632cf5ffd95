/**
 * Model subcommands: logits, generate, score, tokenize.
 */
import * as torch from "../torch/index.js";
import { loadModel } from "../models/load.js";
import { loadTokenizer } from "../models/tokenizer/index.js";
import { generate } from "../models/generate.js";
import { loglikelihood } from "../models/scoring.js";
import {
  MODEL_HELP,
  MODEL_OPTIONS,
  intFlag,
  numFlag,
  parse,
  required,
  UsageError,
  type CommandSpec,
} from "./args.js";

function load(values: Record<string, unknown>, cmd: string) {
  const dir = required(values, "model", cmd);
  const dtype = typeof values.dtype === "string" ? torch.parseDType(values.dtype, "--dtype") : "float32";
  return { dir, model: loadModel(dir, { dtype }) };
}

function parseIds(s: string, cmd: string): number[] {
  const ids = s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length > 0)
    .map(Number);
  if (ids.length === 0 || ids.some((x) => !Number.isInteger(x) || x < 0))
    throw new UsageError(`editeval ${cmd}: --ids must be comma-separated non-negative integers, got '${s}'`);
  return ids;
}

export const logitsSpec: CommandSpec = {
  name: "logits",
  summary: "editeval logits: the full [T][V] logits of one token sequence",
  usage: "editeval logits --model DIR --ids 3,17,42 [--json]",
  options: { ...MODEL_OPTIONS, ids: { type: "string" } },
  help: [...MODEL_HELP, "--ids LIST         comma-separated token ids"],
};

export function logitsCommand(argv: string[]): number {
  const v = parse(logitsSpec, argv);
  if (!v) return 0;
  const ids = parseIds(required(v, "ids", "logits"), "logits");
  const { model } = load(v, "logits");
  if (ids.some((i) => i >= model.config.vocabSize)) {
    model.free();
    throw new UsageError(
      `editeval logits: --ids: a token id is >= the vocabulary size ${model.config.vocabSize}`,
    );
  }
  const logits = torch.scope(() => model.logits([ids]).select(0, 0).to("float32").tolist() as number[][]);
  if (v.json) process.stdout.write(JSON.stringify({ logits }) + "\n");
  else
    logits.forEach((row, t) => {
      const top = row
        .map((x, i) => [x, i] as const)
        .sort((a, b) => b[0] - a[0])
        .slice(0, 5);
      console.log(`t=${t} id=${ids[t]}  top: ${top.map(([x, i]) => `${i}:${x.toFixed(4)}`).join("  ")}`);
    });
  model.free();
  return 0;
}

export const generateSpec: CommandSpec = {
  name: "generate",
  summary: "editeval generate: continue a prompt (greedy unless --do-sample)",
  usage:
    "editeval generate --model DIR --prompt TEXT [--max-new-tokens N] [--do-sample --temperature T --top-k K --top-p P --seed S] [--stop STR] [--json]",
  options: {
    ...MODEL_OPTIONS,
    prompt: { type: "string", multiple: true },
    "max-new-tokens": { type: "string" },
    "do-sample": { type: "boolean" },
    temperature: { type: "string" },
    "top-k": { type: "string" },
    "top-p": { type: "string" },
    seed: { type: "string" },
    stop: { type: "string", multiple: true },
  },
  help: [
    ...MODEL_HELP,
    "--prompt TEXT      the prompt (repeat for a batch)",
    "--max-new-tokens N default 32",
    "--do-sample        sample instead of greedy decoding",
    "--temperature T --top-k K --top-p P --seed S   sampling settings (seed default 0)",
    "--stop STR         stop when the continuation contains STR (repeatable)",
  ],
};

export function generateCommand(argv: string[]): number {
  const v = parse(generateSpec, argv);
  if (!v) return 0;
  const prompts = v.prompt as string[] | undefined;
  if (!prompts || prompts.length === 0) throw new UsageError("editeval generate: --prompt is required");
  const { dir, model } = load(v, "generate");
  const tok = loadTokenizer(dir);
  const ids = prompts.map((p) => {
    const e = tok.encode(p);
    return e.length > 0 ? e : [tok.bosTokenId ?? tok.eosTokenId ?? 0];
  });
  const gens = generate(model, ids, {
    maxNewTokens: intFlag(v, "max-new-tokens", "generate", 32),
    doSample: v["do-sample"] === true,
    temperature: numFlag(v, "temperature", "generate", undefined),
    topK: numFlag(v, "top-k", "generate", undefined),
    topP: numFlag(v, "top-p", "generate", undefined),
    seed: intFlag(v, "seed", "generate", 0),
    eosTokenId: model.config.eosTokenId ?? tok.eosTokenId,
    padTokenId: tok.padTokenId ?? tok.eosTokenId ?? 0,
    stopStrings: (v.stop as string[] | undefined) ?? [],
    decode: (t) => tok.decode(t, { skipSpecialTokens: true }),
  });
  if (v.json) {
    const out = gens.map((g, i) => ({
      prompt: prompts[i],
      text: g.text,
      tokens: g.tokens,
      finish_reason: g.finishReason,
    }));
    process.stdout.write(JSON.stringify(out.length === 1 ? out[0] : out) + "\n");
  } else for (const [i, g] of gens.entries()) console.log(`${prompts[i]}${g.text}`);
  model.free();
  return 0;
}

export const scoreSpec: CommandSpec = {
  name: "score",
  summary:
    "editeval score: log-likelihood of a continuation given a context (lm-evaluation-harness semantics)",
  usage: "editeval score --model DIR --context TEXT --continuation TEXT [--json]",
  options: { ...MODEL_OPTIONS, context: { type: "string" }, continuation: { type: "string" } },
  help: [
    ...MODEL_HELP,
    "--context TEXT     the context (may be empty)",
    "--continuation TEXT the continuation to score",
  ],
};

export function scoreCommand(argv: string[]): number {
  const v = parse(scoreSpec, argv);
  if (!v) return 0;
  const context = typeof v.context === "string" ? v.context : "";
  const continuation = required(v, "continuation", "score");
  const { dir, model } = load(v, "score");
  const tok = loadTokenizer(dir);
  const [s] = loglikelihood(model, tok, [{ context, continuation }]);
  if (!s) throw new Error("score: no result");
  if (v.json)
    process.stdout.write(
      JSON.stringify({ logprob: s.logprob, is_greedy: s.isGreedy, token_logprobs: s.tokenLogprobs }) + "\n",
    );
  else
    console.log(`logprob ${s.logprob.toFixed(6)}  is_greedy ${s.isGreedy}  tokens ${s.tokenLogprobs.length}`);
  model.free();
  return 0;
}

export const tokenizeSpec: CommandSpec = {
  name: "tokenize",
  summary: "editeval tokenize: token ids of a text, as the checkpoint's tokenizer produces them",
  usage: "editeval tokenize --model DIR --text TEXT [--no-special] [--json]",
  options: {
    model: { type: "string" },
    text: { type: "string" },
    "no-special": { type: "boolean" },
    json: { type: "boolean" },
  },
  help: [
    "--model DIR        a checkpoint directory (tokenizer.json, or vocab.json + merges.txt)",
    "--text TEXT        the text",
    "--no-special       do not add BOS/EOS (add_special_tokens=False)",
    "--json             machine-readable output",
  ],
};

export function tokenizeCommand(argv: string[]): number {
  const v = parse(tokenizeSpec, argv);
  if (!v) return 0;
  const tok = loadTokenizer(required(v, "model", "tokenize"));
  const text = typeof v.text === "string" ? v.text : "";
  const ids = tok.encode(text, { addSpecialTokens: v["no-special"] !== true });
  const tokens = ids.map((i) => tok.idToToken(i));
  if (v.json) process.stdout.write(JSON.stringify({ ids, tokens }) + "\n");
  else console.log(ids.map((id, i) => `${id}\t${JSON.stringify(tokens[i])}`).join("\n"));
  return 0;
}

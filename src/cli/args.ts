/**
 * Shared command-line plumbing: option parsing with clear errors, --help text, JSON output.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  /** one line per option: "--flag VALUE   what it does" */
  help: string[];
  /** accept positional arguments (returned as `_`) */
  positionals?: boolean;
}

export class UsageError extends Error {}

export function parse(
  spec: CommandSpec,
  argv: string[],
): Record<string, string | boolean | string[] | undefined> | null {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(
      `${spec.summary}\n\nUsage: ${spec.usage}\n\nOptions:\n${spec.help.map((l) => "  " + l).join("\n")}`,
    );
    return null;
  }
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: spec.options,
      strict: true,
      allowPositionals: spec.positionals ?? false,
    });
    const out = values as Record<string, string | boolean | string[] | undefined>;
    if (spec.positionals) out._ = positionals;
    return out;
  } catch (e) {
    throw new UsageError(
      `editeval ${spec.name}: ${(e as Error).message.replace(/\. To specify.*$/, "")}. See 'editeval ${spec.name} --help'.`,
    );
  }
}

export function required(values: Record<string, unknown>, flag: string, cmd: string): string {
  const v = values[flag];
  if (typeof v !== "string" || v.length === 0)
    throw new UsageError(`editeval ${cmd}: --${flag} is required. See 'editeval ${cmd} --help'.`);
  return v;
}

export function intFlag(values: Record<string, unknown>, flag: string, cmd: string, def: number): number {
  const v = values[flag];
  if (v === undefined) return def;
  const n = Number(v);
  if (typeof v !== "string" || !Number.isInteger(n))
    throw new UsageError(`editeval ${cmd}: --${flag} must be an integer, got '${String(v)}'`);
  return n;
}

export function numFlag(
  values: Record<string, unknown>,
  flag: string,
  cmd: string,
  def: number | undefined,
): number | undefined {
  const v = values[flag];
  if (v === undefined) return def;
  const n = Number(v);
  if (typeof v !== "string" || !Number.isFinite(n))
    throw new UsageError(`editeval ${cmd}: --${flag} must be a number, got '${String(v)}'`);
  return n;
}

export const MODEL_OPTIONS = {
  model: { type: "string" },
  dtype: { type: "string" },
  json: { type: "boolean" },
} as const;
export const MODEL_HELP = [
  "--model DIR        a Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer files)",
  "--dtype DTYPE      float32 (default), bfloat16, float16 or float64",
  "--json             machine-readable output on stdout",
];

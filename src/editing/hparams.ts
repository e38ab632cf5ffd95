/**
 * Typed hyper-parameter schemas with the reference defaults, read from EasyEdit's YAML (or ROME's JSON)
 * files as they are. Field names are EasyEdit's (snake_case), so a YAML file and a TypeScript object
 * read the same. Unknown keys are errors (a typo should not silently fall back to a default), except
 * EasyEdit's bookkeeping keys, which are accepted and ignored.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";

export type FieldType =
  "int" | "number" | "bool" | "string" | "int[]" | "string[]" | "number[][]" | "string|null" | "int|null";

export interface FieldSpec {
  type: FieldType;
  default: unknown;
  doc: string;
}

export type Schema = Record<string, FieldSpec>;

/** Keys EasyEdit's hparams files carry that do not change the algorithm here. */
export const IGNORED_KEYS = new Set([
  "alg_name",
  "model_name",
  "device",
  "stats_dir",
  "model_parallel",
  "fp16",
  "bf16",
  "max_length",
  "batch_size",
  "results_dir",
  "sequential_edit",
]);

export class HparamsError extends Error {}

function checkType(v: unknown, t: FieldType): boolean {
  switch (t) {
    case "int":
      return typeof v === "number" && Number.isInteger(v);
    case "number":
      return typeof v === "number" && Number.isFinite(v);
    case "bool":
      return typeof v === "boolean";
    case "string":
      return typeof v === "string";
    case "string|null":
      return v === null || typeof v === "string";
    case "int|null":
      return v === null || (typeof v === "number" && Number.isInteger(v));
    case "int[]":
      return Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isInteger(x));
    case "string[]":
      return Array.isArray(v) && v.every((x) => typeof x === "string");
    case "number[][]":
      return Array.isArray(v) && v.every((r) => Array.isArray(r) && r.every((x) => typeof x === "number"));
  }
}

/** Validates a raw object against a schema, filling defaults. `where` names the file for errors. */
export function parseHparams<T>(
  schema: Schema,
  raw: Record<string, unknown>,
  where: string,
  method: string,
): T {
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(schema)) out[k] = structuredClone(spec.default);
  for (const [k, v] of Object.entries(raw)) {
    const spec = schema[k];
    if (!spec) {
      if (IGNORED_KEYS.has(k)) continue;
      throw new HparamsError(
        `${where}: unknown ${method} hyper-parameter '${k}' (known: ${Object.keys(schema).join(", ")})`,
      );
    }
    // YAML writes 1e-3 style floats fine; ints given as 5.0 are accepted for int fields
    let val = v;
    if ((spec.type === "int" || spec.type === "int|null") && typeof v === "number" && Number.isInteger(v))
      val = v;
    if (!checkType(val, spec.type))
      throw new HparamsError(
        `${where}: ${method} hyper-parameter '${k}' must be ${spec.type}, got ${JSON.stringify(v)}`,
      );
    out[k] = val;
  }
  return out as T;
}

/** Reads a YAML or JSON hparams file into a plain object. */
export function readHparamsFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new HparamsError(`${path}: cannot read (${(e as Error).message})`);
  }
  let v: unknown;
  try {
    v = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new HparamsError(
      `${path}: invalid ${path.endsWith(".json") ? "JSON" : "YAML"} (${(e as Error).message})`,
    );
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new HparamsError(`${path}: expected a mapping of hyper-parameters`);
  return v as Record<string, unknown>;
}

/** Renders a schema as a table (for --help and docs). */
export function describeSchema(schema: Schema): string {
  return Object.entries(schema)
    .map(([k, s]) => `  ${k.padEnd(32)} ${s.type.padEnd(11)} default ${JSON.stringify(s.default)}  ${s.doc}`)
    .join("\n");
}

/** Expands a module template ("transformer.h.{}.mlp.c_proj") for a layer. */
export function moduleAt(template: string, layer: number): string {
  if (!template.includes("{}"))
    throw new HparamsError(`module template '${template}' has no "{}" for the layer index`);
  return template.replace("{}", String(layer));
}

/**
 * Loading a Hugging Face checkpoint directory (what save_pretrained or huggingface-cli download leaves):
 * config.json, model.safetensors or model-0000X-of-0000N.safetensors with model.safetensors.index.json,
 * generation_config.json, tokenizer files. Weights are memory-mapped and used in place when the dtype
 * is kept (no second copy of the weights in memory); tied embeddings share one tensor.
 */
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { SafetensorsFile } from "../torch/io.js";
import { readSafetensorsIndex } from "../torch/formats/safetensors.js";
import { ConfigReader, SUPPORTED_MODEL_TYPES, type ModelConfig } from "./config.js";
import { CausalLM, type Architecture } from "./model.js";
import { gpt2, parseGpt2Config } from "./gpt2.js";
import { gptj, parseGptjConfig } from "./gptj.js";
import { gptNeox, parseGptNeoxConfig } from "./gpt_neox.js";
import { llama, mistral, qwen2, parseLlamaConfig } from "./llama.js";

export const ARCHITECTURES: Record<string, { arch: Architecture; parse: (r: ConfigReader) => ModelConfig }> =
  {
    gpt2: { arch: gpt2, parse: parseGpt2Config },
    gptj: { arch: gptj, parse: parseGptjConfig },
    gpt_neox: { arch: gptNeox, parse: parseGptNeoxConfig },
    llama: { arch: llama, parse: (r) => parseLlamaConfig(r, "llama") },
    mistral: { arch: mistral, parse: (r) => parseLlamaConfig(r, "mistral") },
    qwen2: { arch: qwen2, parse: (r) => parseLlamaConfig(r, "qwen2") },
  };

function readJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
}

/** Reads and normalises config.json of a checkpoint directory. */
export function loadConfig(dir: string): ModelConfig {
  const file = join(dir, "config.json");
  if (!existsSync(file))
    throw new Error(`${dir}: no config.json (is this a Hugging Face checkpoint directory?)`);
  const raw = readJson(file);
  const mt = raw["model_type"];
  if (typeof mt !== "string") throw new Error(`${file}: field 'model_type' is required`);
  const entry = ARCHITECTURES[mt];
  if (!entry)
    throw new Error(
      `${file}: model_type '${mt}' is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(", ")})`,
    );
  return entry.parse(new ConfigReader(raw, file));
}

/** generation_config.json, if present (eos/bos/pad ids, defaults of generate()). */
export function loadGenerationConfig(dir: string): Record<string, unknown> | null {
  const file = join(dir, "generation_config.json");
  return existsSync(file) ? readJson(file) : null;
}

/** The safetensors files of a checkpoint and which tensor lives in which. */
function weightFiles(dir: string): { files: string[]; where: Map<string, string> | null } {
  const index = readSafetensorsIndex(dir);
  if (index)
    return {
      files: index.shards.map((s) => join(dir, s)),
      where: new Map(Object.entries(index.weightMap).map(([k, v]) => [k, join(dir, v)])),
    };
  const single = join(dir, "model.safetensors");
  if (existsSync(single)) return { files: [single], where: null };
  const entries = existsSync(dir) ? readdirSync(dir) : [];
  const pickles = entries.filter((f) => /\.(bin|pt|pth|ckpt)$/.test(f));
  if (pickles.length > 0)
    throw new Error(
      `${dir}: only pickle weights (${pickles.join(", ")}); EditEval never unpickles (it can run code). ` +
        "Convert to safetensors, e.g. in Python: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)",
    );
  const other = entries.filter((f) => f.endsWith(".safetensors"));
  if (other.length === 1) return { files: [join(dir, other[0] as string)], where: null };
  throw new Error(`${dir}: no model.safetensors and no model.safetensors.index.json`);
}

export interface LoadOptions {
  /** compute dtype: float32 (default), bfloat16, float16 or float64 */
  dtype?: torch.DType;
  device?: string;
}

/**
 * Loads a checkpoint directory into a CausalLM. Every parameter the config implies must be present with
 * the implied shape; an error names the file and the parameter.
 */
export function loadModel(dir: string, opts: LoadOptions = {}): CausalLM {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a directory`);
  const config = loadConfig(dir);
  const { arch } = ARCHITECTURES[config.modelType] as { arch: Architecture };
  const dtype = opts.dtype ?? "float32";
  if (!torch.isFloating(dtype))
    throw new Error(`--dtype ${dtype}: a model loads in float32, bfloat16, float16 or float64`);
  if (dtype === "float16" && (opts.device ?? "cpu") === "cpu")
    throw new Error(
      "--dtype float16: libtorch has no float16 kernels for layer norm and matrix products on CPU; " +
        "use bfloat16 or float32 on CPU (float16 works with a CUDA libtorch and --device cuda)",
    );
  const expected = arch.parameterShapes(config);
  const tied = arch.tiedParameters(config);
  const { files, where } = weightFiles(dir);

  const opened = new Map<string, SafetensorsFile>();
  const fileOf = new Map<string, string>();
  for (const f of files) {
    const sf = new SafetensorsFile(f);
    opened.set(f, sf);
    for (const n of sf.names()) if (!where || where.get(n) === f) fileOf.set(n, f);
  }
  const params = new Map<string, Tensor>();
  try {
    for (const [name, shape] of expected) {
      if (tied.has(name) && !fileOf.has(name)) continue;
      const f = fileOf.get(name);
      if (f === undefined) {
        throw new Error(
          `${files.length === 1 ? files[0] : dir}: parameter '${name}' is missing (config.json implies shape [${shape.join(", ")}])`,
        );
      }
      const sf = opened.get(f) as SafetensorsFile;
      const entry = sf.header.entries.find((e) => e.name === name);
      if (entry && entry.shape.join(",") !== shape.join(","))
        throw new Error(
          `${f}: parameter '${name}' has shape [${entry.shape.join(", ")}], but config.json implies [${shape.join(", ")}]`,
        );
      let t = sf.tensor(name, dtype);
      if (opts.device && opts.device !== "cpu") {
        const moved = t.to(opts.device).keep();
        t.free();
        t = moved;
      }
      params.set(name, t);
    }
    for (const [name, source] of tied) {
      if (params.has(name)) continue;
      const src = params.get(source);
      if (!src) throw new Error(`${dir}: tied parameter '${name}' needs '${source}', which is missing`);
      params.set(name, src);
    }
    const unexpected = [...fileOf.keys()].filter(
      (n) => !expected.has(n) && !arch.ignoredCheckpointKeys.some((re) => re.test(n)),
    );
    if (unexpected.length > 0) {
      const f = fileOf.get(unexpected[0] as string);
      throw new Error(
        `${f}: ${unexpected.length} weight(s) not used by a ${config.modelType} model with this config.json, e.g. '${unexpected[0]}' ` +
          "(does config.json match the weights?)",
      );
    }
  } catch (e) {
    for (const t of new Set(params.values())) t.free();
    throw e;
  } finally {
    for (const sf of opened.values()) sf.close();
  }
  return new CausalLM(config, arch, params, dir);
}

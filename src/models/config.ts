/**
 * config.json of the six families, normalised into one ModelConfig. Each family's field names and
 * defaults are those of its transformers configuration class (v4.37); a missing required field or a
 * value of the wrong type is an error naming the file and the field.
 */
import type { RopeScaling } from "./layers.js";

export const SUPPORTED_MODEL_TYPES = ["gpt2", "gptj", "gpt_neox", "llama", "mistral", "qwen2"] as const;
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

export interface ModelConfig {
  modelType: ModelType;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
  normEps: number;
  activation: string;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  /** rotary: dims rotated per head (GPT-J rotary_dim, NeoX head_dim * rotary_pct, Llama head_dim) */
  rotaryDim: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  slidingWindow: number | null;
  /** GPT-NeoX use_parallel_residual; GPT-J is always parallel */
  parallelResidual: boolean;
  /** Llama attention_bias (q, k, v, o); Qwen2 has q/k/v biases regardless */
  attentionBias: boolean;
  /** GPT-2 specifics */
  scaleAttnWeights: boolean;
  scaleAttnByInverseLayerIdx: boolean;
  /** the config.json object as read */
  raw: Record<string, unknown>;
}

export class ConfigReader {
  constructor(
    readonly raw: Record<string, unknown>,
    readonly file: string,
  ) {}

  private fail(field: string, msg: string): never {
    throw new Error(`${this.file}: field '${field}' ${msg}`);
  }

  has(field: string): boolean {
    return this.raw[field] !== undefined && this.raw[field] !== null;
  }

  int(field: string, def?: number): number {
    const v = this.raw[field];
    if (v === undefined || v === null) {
      if (def === undefined) this.fail(field, "is required");
      return def;
    }
    if (typeof v !== "number" || !Number.isInteger(v))
      this.fail(field, `must be an integer, got ${JSON.stringify(v)}`);
    return v;
  }

  num(field: string, def?: number): number {
    const v = this.raw[field];
    if (v === undefined || v === null) {
      if (def === undefined) this.fail(field, "is required");
      return def;
    }
    if (typeof v !== "number") this.fail(field, `must be a number, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(field: string, def: boolean): boolean {
    const v = this.raw[field];
    if (v === undefined || v === null) return def;
    if (typeof v !== "boolean") this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  str(field: string, def?: string): string {
    const v = this.raw[field];
    if (v === undefined || v === null) {
      if (def === undefined) this.fail(field, "is required");
      return def;
    }
    if (typeof v !== "string") this.fail(field, `must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  optInt(field: string): number | null {
    return this.has(field) ? this.int(field) : null;
  }

  tokenIds(field: string): number | number[] | null {
    const v = this.raw[field];
    if (v === undefined || v === null) return null;
    if (typeof v === "number" && Number.isInteger(v)) return v;
    if (Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isInteger(x)))
      return v as number[];
    this.fail(field, `must be a token id or a list of ids, got ${JSON.stringify(v)}`);
  }

  ropeScaling(): RopeScaling | null {
    const v = this.raw["rope_scaling"];
    if (v === undefined || v === null) return null;
    if (typeof v !== "object") this.fail("rope_scaling", "must be an object");
    const o = v as Record<string, unknown>;
    const type = (o["rope_type"] ?? o["type"]) as string | undefined;
    if (type === "default") return null;
    if (type !== "linear" && type !== "dynamic" && type !== "llama3")
      this.fail("rope_scaling", `type '${String(type)}' is not supported (linear, dynamic, llama3)`);
    const factor = o["factor"];
    if (typeof factor !== "number") this.fail("rope_scaling.factor", "must be a number");
    const num = (k: string) => (typeof o[k] === "number" ? (o[k] as number) : undefined);
    return {
      type,
      factor,
      lowFreqFactor: num("low_freq_factor"),
      highFreqFactor: num("high_freq_factor"),
      originalMaxPositionEmbeddings: num("original_max_position_embeddings"),
    };
  }
}

/** Checks divisibility constraints shared by all families. */
export function validateConfig(cfg: ModelConfig, file: string): ModelConfig {
  if (
    cfg.hiddenSize % cfg.numHeads !== 0 &&
    cfg.headDim * cfg.numHeads !== cfg.hiddenSize &&
    cfg.modelType !== "qwen2"
  )
    throw new Error(
      `${file}: hidden size ${cfg.hiddenSize} is not divisible by the number of heads ${cfg.numHeads}`,
    );
  if (cfg.numHeads % cfg.numKvHeads !== 0)
    throw new Error(
      `${file}: num_attention_heads ${cfg.numHeads} is not a multiple of num_key_value_heads ${cfg.numKvHeads}`,
    );
  if (cfg.rotaryDim % 2 !== 0 || cfg.rotaryDim > cfg.headDim)
    throw new Error(
      `${file}: rotary dimension ${cfg.rotaryDim} must be even and at most the head dimension ${cfg.headDim}`,
    );
  return cfg;
}

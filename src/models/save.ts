/**
 * Writes a model as a standard Hugging Face checkpoint directory that transformers (and EditEval) load:
 * config.json, generation_config.json, the tokenizer files of the source checkpoint, and
 * model.safetensors (sharded with an index above 5 GB), with tied parameters stored once under their
 * source name as save_pretrained does.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Tensor } from "../torch/index.js";
import { saveShardedSafetensors } from "../torch/io.js";
import type { CausalLM } from "./model.js";

const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "vocab.json",
  "merges.txt",
  "tokenizer.model",
  "added_tokens.json",
];

export function saveCheckpoint(model: CausalLM, outDir: string, opts: { maxShardBytes?: number } = {}): void {
  mkdirSync(outDir, { recursive: true });
  const tied = model.arch.tiedParameters(model.config);
  const tensors: [string, Tensor][] = [];
  for (const [name, t] of model.params) if (!tied.has(name)) tensors.push([name, t]);
  // weights first (written to a temporary file and renamed, so overwriting the loaded checkpoint is safe)
  saveShardedSafetensors(outDir, tensors, { maxShardBytes: opts.maxShardBytes, metadata: { format: "pt" } });
  writeFileSync(
    join(outDir, "config.json"),
    JSON.stringify({ ...model.config.raw, torch_dtype: model.dtype }, null, 2) + "\n",
  );
  const src = model.source;
  if (src && resolve(src) !== resolve(outDir)) {
    for (const f of [...TOKENIZER_FILES, "generation_config.json"])
      if (existsSync(join(src, f))) copyFileSync(join(src, f), join(outDir, f));
  }
}

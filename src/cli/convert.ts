/**
 * editeval convert-llama2c: a llama2.c checkpoint (+ its tok*.bin) to a Hugging Face directory.
 */
import { convertLlama2c } from "../models/llama2c.js";
import { llama2cTokenizerConfig, llama2cTokenizerToHF } from "../models/tokenizer/index.js";
import { parse, required, type CommandSpec } from "./args.js";

export const convertSpec: CommandSpec = {
  name: "convert-llama2c",
  summary:
    "editeval convert-llama2c: convert a llama2.c (legacy format) checkpoint to a Hugging Face Llama directory",
  usage: "editeval convert-llama2c --checkpoint FILE.bin [--tokenizer tok512.bin] --out DIR",
  options: { checkpoint: { type: "string" }, tokenizer: { type: "string" }, out: { type: "string" } },
  help: [
    "--checkpoint FILE  llama2.c legacy checkpoint (e.g. stories260K.bin)",
    "--tokenizer FILE   llama2.c tokenizer (e.g. tok512.bin); written as tokenizer.json",
    "--out DIR          output directory",
  ],
};

export function convertLlama2cCommand(argv: string[]): number {
  const v = parse(convertSpec, argv);
  if (!v) return 0;
  const out = required(v, "out", "convert-llama2c");
  const tokPath = typeof v.tokenizer === "string" ? v.tokenizer : undefined;
  const tokenizer = tokPath
    ? {
        tokenizerJson: llama2cTokenizerToHF(tokPath),
        // Llama-2 style: <s> is prepended (add_bos_token), as llama2.c's encode(text, bos=1) does
        tokenizerConfig: llama2cTokenizerConfig(),
      }
    : undefined;
  convertLlama2c(required(v, "checkpoint", "convert-llama2c"), out, tokenizer);
  console.log(`wrote ${out}`);
  return 0;
}

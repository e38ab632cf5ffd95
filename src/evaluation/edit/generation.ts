/**
 * The generations that fluency and consistency are computed on: ROME's generate_fast (util/generate.py,
 * copied into EasyEdit as easyeditor/util/generate.py), through our `generate`.
 */
import type { CausalLM } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import { generate } from "../../models/generate.js";
import { cleanGeneratedText } from "./text.js";

export interface GenerateFastOptions {
  /** total length in tokens, prompt included (ROME/EasyEdit: 100) */
  maxOutLen?: number;
  /** top-k of the sampling (5) */
  topK?: number;
  /** seed of the sampling generator: the same seed gives the same texts */
  seed?: number;
  /** drop special tokens when decoding (EasyEdit: true; ROME: false, then removes "<|endoftext|>") */
  skipSpecialTokens?: boolean;
}

/**
 * generate_fast(model, tok, prefixes, n_gen_per_prompt=1, max_out_len=100): top-k sampling (k = 5,
 * renormalised over the top k) with no EOS stop until the sequence, prompt included, is `maxOutLen`
 * tokens long (capped at the model's maximum length); the text is the decoded whole sequence, prompt
 * included, NFKD-normalised with "\n\n" → " " and "<|endoftext|>" removed. ROME draws unseeded and
 * EasyEdit seeds once per process; here the sampling is seeded so a run is reproducible (agreement with
 * the reference is in distribution only). Prompts of equal token length are sampled as one batch.
 */
export function generateFast(
  model: CausalLM,
  tok: Tokenizer,
  prefixes: string[],
  opts: GenerateFastOptions = {},
): string[] {
  const cap = model.config.maxPositions > 0 ? model.config.maxPositions : Infinity;
  const maxOut = Math.min(opts.maxOutLen ?? 100, cap);
  const ids = prefixes.map((p) => tok.encode(p));
  const out: string[] = new Array<string>(prefixes.length);
  const groups = new Map<number, number[]>();
  ids.forEach((x, i) => {
    const g = groups.get(x.length) ?? [];
    g.push(i);
    groups.set(x.length, g);
  });
  const decode = (x: number[]) =>
    cleanGeneratedText(tok.decode(x, { skipSpecialTokens: opts.skipSpecialTokens ?? false }));
  let k = 0;
  for (const [len, rows] of [...groups].sort((a, b) => a[0] - b[0])) {
    const maxNew = maxOut - len;
    if (maxNew <= 0) {
      for (const i of rows) out[i] = decode(ids[i] as number[]);
      continue;
    }
    const gens = generate(
      model,
      rows.map((i) => ids[i] as number[]),
      {
        maxNewTokens: maxNew,
        doSample: true,
        topK: opts.topK ?? 5,
        seed: (opts.seed ?? 0) + k++,
        eosTokenId: null,
      },
    );
    rows.forEach((i, r) => {
      out[i] = decode([...(ids[i] as number[]), ...(gens[r] as { tokens: number[] }).tokens]);
    });
  }
  return out;
}

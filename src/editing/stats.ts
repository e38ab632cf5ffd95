/**
 * Second-moment statistics of a layer's MLP keys (the input of the down-projection), as ROME's
 * layer_stats computes them: C = E[k k^T] over the non-padding tokens of text samples, uncentered,
 * accumulated in float32 or float64. ROME and MEMIT use C^-1 (or C) to spread an edit over directions
 * the layer rarely uses.
 *
 * Samples are the non-empty lines (paragraphs) of a text corpus (default: WikiText-2 in the shared data
 * folder; any .txt/.raw file, a folder of them, or a JSONL file with a "text" field), drawn in a seeded
 * random order (seed 1, as ROME's tally(random_sample=1)), each truncated to maxLength tokens. ROME used
 * 100,000 Wikipedia articles; the shared WikiText has about 13,000 paragraphs, so larger requests use
 * all of them and say so. Results are cached on disk, keyed by the model's fingerprint, the module, the
 * corpus hash, the sample count, the max length and the dtype.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { SafetensorsFile, loadNpz, saveSafetensors } from "../torch/io.js";
import type { CausalLM } from "../models/model.js";
import { modelFingerprint } from "../models/fingerprint.js";
import { cacheDir, dataDir } from "../util/paths.js";
import { sha256 } from "../util/hash.js";
import { Progress } from "../util/progress.js";

export interface TextTokenizerLike {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
}

export interface StatsOptions {
  /** corpus file or folder (default: the shared WikiText) */
  corpus?: string;
  /** number of samples (paragraphs) */
  nSamples: number;
  /** max tokens per sample (default: min(model max positions, 1024)) */
  maxLength?: number;
  dtype?: "float32" | "float64";
  /** samples per forward pass (default 8) */
  batchSize?: number;
  /** cache folder (default <cache>/stats); null disables the cache */
  cache?: string | null;
  progress?: boolean;
}

export interface SecondMoment {
  /** E[k k^T], [d, d] */
  mom2: Tensor;
  /** number of token vectors averaged */
  count: number;
  /** where it came from (cache file, user file, or "computed") */
  source: string;
}

export function defaultCorpus(): string {
  return join(dataDir(), "wikitext", "wikitext2_train_5k.txt");
}

/** The samples of a corpus: non-empty lines of text files, or the "text" field of JSONL records. */
export function readCorpus(path: string): string[] {
  if (!existsSync(path)) throw new Error(`corpus ${path} does not exist`);
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((f) => [".txt", ".raw", ".jsonl"].includes(extname(f)))
        .sort()
        .map((f) => join(path, f))
    : [path];
  const out: string[] = [];
  for (const f of files) {
    const text = readFileSync(f, "utf8");
    if (f.endsWith(".jsonl")) {
      text.split("\n").forEach((line, i) => {
        if (!line.trim()) return;
        let o: unknown;
        try {
          o = JSON.parse(line);
        } catch {
          throw new Error(`${f}:${i + 1}: invalid JSON`);
        }
        const t = (o as { text?: unknown }).text;
        if (typeof t !== "string") throw new Error(`${f}:${i + 1}: record has no string field "text"`);
        if (t.trim()) out.push(t);
      });
    } else {
      for (const line of text.split("\n")) if (line.trim()) out.push(line);
    }
  }
  if (out.length === 0) throw new Error(`corpus ${path} has no text samples`);
  return out;
}

/** A seeded permutation (mulberry32) so sample order is reproducible and independent of torch's RNG. */
export function seededOrder(n: number, seed: number): number[] {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [idx[i], idx[j]] = [idx[j] as number, idx[i] as number];
  }
  return idx;
}

/** Computes E[k k^T] of a module's input over a corpus (no cache). */
export function computeSecondMoment(
  model: CausalLM,
  tok: TextTokenizerLike,
  module: string,
  opts: StatsOptions,
): SecondMoment {
  model.checkModule(module);
  const corpusPath = opts.corpus ?? defaultCorpus();
  const all = readCorpus(corpusPath);
  const n = Math.min(opts.nSamples, all.length);
  const order = seededOrder(all.length, 1).slice(0, n);
  const maxLength = opts.maxLength ?? Math.min(model.config.maxPositions, 1024);
  const dtype = opts.dtype ?? "float32";
  const batchSize = opts.batchSize ?? 8;
  let sum: Tensor | null = null;
  let count = 0;
  const progress = new Progress(`statistics of ${module} (${n} samples)`, n, opts.progress ?? true);
  const pad = 0;
  for (let b = 0; b < n; b += batchSize) {
    const texts = order.slice(b, b + batchSize).map((i) => all[i] as string);
    const encoded = texts
      .map((t) => tok.encode(t, { addSpecialTokens: true }).slice(0, maxLength))
      .filter((e) => e.length > 0);
    if (encoded.length === 0) continue;
    const width = Math.max(...encoded.map((e) => e.length));
    torch.scope(() =>
      torch.noGrad(() => {
        const ids = torch.tensor(
          encoded.map((e) => [...e, ...new Array<number>(width - e.length).fill(pad)]),
          { dtype: "int64" },
        );
        const mask = torch.tensor(
          encoded.map((e) => [
            ...new Array<number>(e.length).fill(1),
            ...new Array<number>(width - e.length).fill(0),
          ]),
          {
            dtype: "int64",
          },
        );
        let feats: Tensor | null = null;
        model.withHooks(
          [
            {
              module,
              where: "input",
              hook: (x) => {
                feats = x.index(mask.bool()).to(dtype).keep(); // [tokens, d]
              },
            },
          ],
          () => model.forward({ inputIds: ids, attentionMask: mask, lastOnly: true }),
        );
        const f = feats as unknown as Tensor;
        const add = f.T.matmul(f);
        if (sum === null) sum = add.keep();
        else sum.add_(add);
        count += f.size(0);
        f.free();
      }),
    );
    progress.tick(texts.length);
  }
  if (sum === null) throw new Error(`statistics of ${module}: no tokens in the corpus ${corpusPath}`);
  const s = sum as Tensor;
  const mom2 = torch.scope(() => s.div(count).keep());
  s.free();
  return { mom2, count, source: `computed over ${n} samples of ${corpusPath}` };
}

/** E[k k^T] of a module's input, from the disk cache when the same statistics were computed before. */
export function layerSecondMoment(
  model: CausalLM,
  tok: TextTokenizerLike,
  module: string,
  opts: StatsOptions,
): SecondMoment {
  const corpusPath = opts.corpus ?? defaultCorpus();
  const cache = opts.cache === undefined ? join(cacheDir(), "stats") : opts.cache;
  const dtype = opts.dtype ?? "float32";
  const maxLength = opts.maxLength ?? Math.min(model.config.maxPositions, 1024);
  let file: string | null = null;
  if (cache !== null) {
    const corpusHash = sha256(readCorpus(corpusPath).join("\n")).slice(0, 16);
    const key = `${modelFingerprint(model)}-${module}-${corpusHash}-n${opts.nSamples}-len${maxLength}-${dtype}`;
    file = join(cache, `${key}.safetensors`);
    if (existsSync(file)) return loadStatsFile(file, null);
  }
  const m = computeSecondMoment(model, tok, module, { ...opts, dtype, maxLength });
  if (file !== null && cache !== null) {
    mkdirSync(cache, { recursive: true });
    saveSafetensors(file, [["mom2", m.mom2]], { count: String(m.count), module, source: m.source });
  }
  return m;
}

/**
 * Statistics a user already has: ROME/EasyEdit .npz files (mom2.mom2 holds the sum of k k^T and
 * mom2.count the number of vectors; the moment is their ratio, as ROME's SecondMoment.moment()), or a
 * safetensors file whose tensor "mom2" [d, d] is the moment E[k k^T] itself (EditEval's cache files are
 * of this kind, with the count in their metadata).
 */
export function loadStatsFile(path: string, expectedDim: number | null): SecondMoment {
  let mom2: Tensor;
  let count = 0;
  if (path.endsWith(".npz")) {
    const arrays = loadNpz(path);
    const sum = arrays.get("mom2.mom2");
    const cnt = arrays.get("mom2.count");
    if (!sum) throw new Error(`${path}: no array 'mom2.mom2' (keys: ${[...arrays.keys()].join(", ")})`);
    if (!cnt) throw new Error(`${path}: no array 'mom2.count'`);
    count = cnt.toNumbers()[0] as number;
    if (!(count > 0)) throw new Error(`${path}: mom2.count is ${count}`);
    mom2 = torch.scope(() => sum.to("float32").div(count).keep());
    for (const t of arrays.values()) t.free();
  } else if (path.endsWith(".safetensors")) {
    const f = new SafetensorsFile(path);
    try {
      if (!f.names().includes("mom2"))
        throw new Error(`${path}: no tensor 'mom2' (tensors: ${f.names().join(", ")})`);
      const m = f.tensor("mom2");
      mom2 = torch.scope(() => m.clone().keep());
      m.free();
      count = Number(f.header.metadata.count ?? 0);
    } finally {
      f.close();
    }
  } else {
    throw new Error(`${path}: statistics must be a .npz (ROME/EasyEdit) or .safetensors file`);
  }
  const shape = mom2.shape;
  if (shape.length !== 2 || shape[0] !== shape[1] || (expectedDim !== null && shape[0] !== expectedDim)) {
    mom2.free();
    throw new Error(
      `${path}: statistics of shape [${shape.join(", ")}], expected [${expectedDim ?? "d"}, ${expectedDim ?? "d"}] (the input size of the edited module)`,
    );
  }
  return { mom2, count, source: path };
}

/**
 * editeval train-family: train the study's model family (3 sizes x base, instruct, aligned) on the
 * demo world; members already trained with the same recipe are found, not retrained.
 */
import { SIZE_NAMES, VARIANTS, trainFamily, type FamilySize, type Variant } from "../train/family.js";
import { intFlag, parse, UsageError, type CommandSpec } from "./args.js";

export const trainFamilySpec: CommandSpec = {
  name: "train-family",
  summary: "editeval train-family: train the study's model family on the demo world (models/family)",
  usage:
    "editeval train-family [--out DIR] [--sizes 0.2M,0.9M,2.2M] [--variants base,instruct,aligned] [--threads N]",
  options: {
    out: { type: "string" },
    sizes: { type: "string" },
    variants: { type: "string" },
    threads: { type: "string" },
    "step-scale": { type: "string" },
  },
  help: [
    "--out DIR          the family's folder (default models/family); family.json lists the members",
    `--sizes LIST       sizes to train (default ${SIZE_NAMES.join(",")}); 2.2M's base is models/demo`,
    `--variants LIST    variants (default ${VARIANTS.join(",")}); instruct needs base, aligned needs instruct`,
    "--threads N        torch threads (default: OMP_NUM_THREADS or 1)",
    "--step-scale X     multiply every stage's steps by X (quick trials; the committed family uses 1)",
    "Interrupted stages resume from their state in .editeval-cache/ when started again.",
  ],
};

function listFlag<T extends string>(
  raw: unknown,
  flag: string,
  allowed: readonly T[],
  def: readonly T[],
): T[] {
  if (typeof raw !== "string") return [...def];
  const xs = raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const x of xs)
    if (!allowed.includes(x as T))
      throw new UsageError(`train-family: --${flag}: unknown '${x}' (one of ${allowed.join(", ")})`);
  return xs as T[];
}

export function trainFamilyCommand(argv: string[]): number {
  const v = parse(trainFamilySpec, argv);
  if (v === null) return 0;
  const out = typeof v.out === "string" ? v.out : "models/family";
  const sizes = listFlag<FamilySize>(v.sizes, "sizes", SIZE_NAMES, SIZE_NAMES);
  const variants = listFlag<Variant>(v.variants, "variants", VARIANTS, VARIANTS);
  const threads = v.threads === undefined ? undefined : intFlag(v, "threads", "train-family", 1);
  const scale = v["step-scale"] === undefined ? 1 : Number(v["step-scale"]);
  if (!(scale > 0)) throw new UsageError(`train-family: --step-scale must be a positive number`);
  const members = trainFamily({ out, sizes, variants, threads, stepScale: scale });
  for (const m of members) console.log(`${m.name}\t${(m.params / 1e6).toFixed(2)}M\t${m.path}`);
  return 0;
}

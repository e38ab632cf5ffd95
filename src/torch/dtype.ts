/**
 * Tensor element types, with torch's names. The numeric codes are shared with native/tensor.cc.
 */
export type DType =
  "float32" | "float64" | "bfloat16" | "float16" | "int64" | "int32" | "int16" | "int8" | "uint8" | "bool";

export const DTYPES: readonly DType[] = [
  "float32",
  "float64",
  "bfloat16",
  "float16",
  "int64",
  "int32",
  "int16",
  "int8",
  "uint8",
  "bool",
];

const CODES = new Map<DType, number>(DTYPES.map((d, i) => [d, i]));

/** Aliases accepted wherever a dtype is named (config files say "float", "half", "bf16", ...). */
const ALIASES: Record<string, DType> = {
  float: "float32",
  f32: "float32",
  fp32: "float32",
  double: "float64",
  f64: "float64",
  fp64: "float64",
  half: "float16",
  f16: "float16",
  fp16: "float16",
  bf16: "bfloat16",
  long: "int64",
  int: "int32",
};

/** Parses a dtype name or alias; throws an error naming the accepted values. */
export function parseDType(name: string, what = "dtype"): DType {
  const n = name
    .trim()
    .toLowerCase()
    .replace(/^torch\./, "");
  if (CODES.has(n as DType)) return n as DType;
  const alias = ALIASES[n];
  if (alias) return alias;
  throw new Error(`${what}: unknown dtype '${name}' (expected one of ${DTYPES.join(", ")})`);
}

export function dtypeCode(d: DType): number {
  const c = CODES.get(d);
  if (c === undefined) throw new Error(`unknown dtype '${String(d)}' (expected one of ${DTYPES.join(", ")})`);
  return c;
}

export function dtypeFromCode(code: number): DType {
  const d = DTYPES[code];
  if (d === undefined) throw new Error(`unknown dtype code ${code}`);
  return d;
}

export function elementSize(d: DType): number {
  switch (d) {
    case "float64":
    case "int64":
      return 8;
    case "float32":
    case "int32":
      return 4;
    case "bfloat16":
    case "float16":
    case "int16":
      return 2;
    default:
      return 1;
  }
}

export function isFloating(d: DType): boolean {
  return d === "float32" || d === "float64" || d === "bfloat16" || d === "float16";
}

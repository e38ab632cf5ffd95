/**
 * EditEval's tensor library: libtorch from TypeScript with torch's names.
 *
 *   import * as torch from "editeval/torch";
 *   const y = torch.scope(() => torch.F.gelu(x.matmul(w), "tanh"));
 */
export * from "./tensor.js";
export { parseDType, elementSize, DTYPES } from "./dtype.js";
export * as F from "./functional.js";
export * as linalg from "./linalg.js";
export * as optim from "./optim.js";

/**
 * The editing methods by name (EasyEdit's alg_name spellings accepted, case-insensitive).
 */
import type { EditMethod } from "./editor.js";
import { rome, rrome } from "./rome/index.js";
import { memit } from "./memit/index.js";
import { alphaedit } from "./alphaedit/index.js";
import { emmet } from "./emmet/index.js";
import { ftL, ftM } from "./ft/index.js";
import { pmet } from "./pmet/index.js";
import { grace } from "./grace/index.js";
import { kn } from "./kn/index.js";
import { lora } from "./lora/index.js";
import { wise } from "./wise/index.js";
import { melo } from "./melo/index.js";
import { serac } from "./serac/index.js";
import { ike } from "./ike/index.js";
import { mend } from "./mend/index.js";
import { malmen } from "./malmen/index.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const METHODS: Record<string, EditMethod<any>> = {
  rome,
  "r-rome": rrome,
  memit,
  alphaedit,
  emmet,
  pmet,
  "ft-l": ftL,
  ft: ftL,
  "ft-m": ftM,
  grace,
  kn,
  lora,
  wise,
  melo,
  serac,
  ike,
  mend,
  malmen,
};

/** The names `methodByName` takes, for help texts and errors. */
export const METHOD_NAMES =
  "rome, r-rome, memit, pmet, alphaedit, emmet, ft-l (ft), ft-m, grace, kn, lora, wise, melo, serac, ike, mend, malmen";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function methodByName(name: string): EditMethod<any> {
  const m = METHODS[name.toLowerCase().replace(/_/g, "-")];
  if (!m) throw new Error(`unknown editing method '${name}' (available: ${METHOD_NAMES})`);
  return m;
}

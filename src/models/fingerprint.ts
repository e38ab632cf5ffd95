/**
 * A model's content fingerprint, for cache keys (statistics, request caches) and provenance: the
 * config plus every parameter's name, dtype, shape and values. Parameters up to 4 MiB are hashed whole;
 * larger ones through 17 evenly spaced 16 KiB windows (an edit that changes a row of a large matrix
 * changes a window with high probability, and the edit journal is part of every key that matters).
 */
import { createHash } from "node:crypto";
import * as torch from "../torch/index.js";
import type { CausalLM } from "./model.js";

const WHOLE = 4 << 20;

export function modelFingerprint(model: CausalLM): string {
  const h = createHash("sha256");
  const { raw: _raw, ...cfg } = model.config;
  h.update(JSON.stringify(cfg));
  torch.scope(() => {
    for (const [name, t] of model.uniqueParameters()) {
      h.update(`${name}|${t.dtype}|${t.shape.join("x")}|`);
      const bytes = t.numel() * torch.elementSize(t.dtype);
      if (bytes <= WHOLE) {
        h.update(t.toBytes());
        continue;
      }
      const flat = t.flatten();
      const n = flat.size(0);
      const win = Math.max(1, Math.floor((16 << 10) / torch.elementSize(t.dtype)));
      for (let i = 0; i <= 16; i++) {
        const off = Math.min(n - win, Math.floor(((n - win) * i) / 16));
        h.update(flat.narrow(0, off, win).toBytes());
      }
    }
  });
  for (const k of [...model.adaptorDigests.keys()].sort())
    h.update(`adaptor|${k}|${model.adaptorDigests.get(k)}`);
  return h.digest("hex").slice(0, 16);
}

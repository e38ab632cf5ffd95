/**
 * Where things live: the package root, the shared data folder (EDITEVAL_DATA, default ../shared/data
 * beside the package), and the cache (EDITEVAL_CACHE, default .editeval-cache in the package).
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | null = null;

export function packageRoot(): string {
  if (root) return root;
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(d, "package.json")) && existsSync(join(d, "native"))) return (root = d);
    d = resolve(d, "..");
  }
  throw new Error("editeval: cannot locate the package root");
}

export function dataDir(): string {
  return process.env.EDITEVAL_DATA ?? resolve(packageRoot(), "..", "shared", "data");
}

export function cacheDir(): string {
  return process.env.EDITEVAL_CACHE ?? join(packageRoot(), ".editeval-cache");
}

/**
 * Loads the compiled libtorch addon (build/Release/editeval_native.node) and types its surface.
 * Nothing outside src/torch/ should import this file: use the Tensor API instead.
 */
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";

/** An opaque handle to a native tensor (a napi External). */
export type Handle = { readonly __handle: unique symbol };
/** An opaque handle to a random number generator. */
export type GenHandle = { readonly __gen: unique symbol };
export type MapHandle = { readonly __map: unique symbol };
export type Scalar = number | boolean;
export type IndexSpec = number | null | "..." | Handle | { start?: number; stop?: number; step?: number };

/**
 * The addon's functions (see native/*.cc). Typed loosely on purpose: src/torch/*.ts wraps each call
 * in a typed function, and nothing else calls the addon.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Native = any;

function findRoot(): string {
  // dist/src/torch/native.js -> repository root is three levels up; src/torch/native.ts (tsx) two.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "native"))) return dir;
    dir = resolve(dir, "..");
  }
  throw new Error("editeval: cannot locate the package root (looked for package.json beside native/)");
}

function load(): Native {
  const root = findRoot();
  const path = process.env.EDITEVAL_NATIVE ?? join(root, "build", "Release", "editeval_native.node");
  if (!existsSync(path)) {
    throw new Error(
      `editeval: the libtorch addon is not built (${path} is missing). ` +
        "Run `bash scripts/setup.sh` (system libraries, npm ci, build) or `npm run build:native`.",
    );
  }
  const require = createRequire(import.meta.url);
  try {
    return require(path) as Native;
  } catch (e) {
    throw new Error(
      `editeval: cannot load ${path}: ${(e as Error).message}. ` +
        "Is libtorch installed (Debian: libtorch-dev, libopenblas0-pthread)? Rebuild with `npm run build:native`.",
    );
  }
}

export const N: Native = load();

#!/usr/bin/env node
// The `editeval` command: runs the compiled CLI (dist/src/cli/main.js).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/src/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error("editeval: not built yet. Run `bash scripts/setup.sh` (or `npm run build`) in the package folder.");
  process.exit(1);
}
const { run } = await import(main.href);
process.exitCode = await run(process.argv.slice(2));

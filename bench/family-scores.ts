/**
 * The model family's unedited scores (issue #11 asks for them outside the timed unit tests): every
 * member of models/family (family.json) scored on the world's held-out tasks, raw prompts and, for chat
 * models, in the chat format; printed as a Markdown table with the seconds each member took.
 *
 *   npm run build && node dist/bench/family-scores.js [FAMILY_DIR]
 */
import { join } from "node:path";
import { evaluateMember, loadFamily } from "../src/train/family.js";
import { TASK_NAMES, buildWorld } from "../src/world/index.js";
import { DEMO_RECIPE } from "../src/train/demo.js";
import { packageRoot } from "../src/util/paths.js";

const dir = process.argv[2] ?? join(packageRoot(), "models", "family");
const data = buildWorld({ seed: DEMO_RECIPE.seed, ...DEMO_RECIPE.world });
const tasks = TASK_NAMES;
const pct = (x: number | undefined) => (x === undefined ? "" : `${(100 * x).toFixed(1)}`);
console.log(`| member | params | format | ${tasks.join(" | ")} | s |`);
console.log(`|---|---|---|${tasks.map(() => "---").join("|")}|---|`);
for (const m of loadFamily(dir)) {
  const t0 = performance.now();
  const s = evaluateMember(m.dir, data, m.variant !== "base", () => {});
  const sec = ((performance.now() - t0) / 1000).toFixed(0);
  // multiple choice tasks: the cloze form (what the study scores); the others: accuracy
  const cell = (r: typeof s.raw, t: string) => pct(r[t]?.cloze?.accuracy ?? r[t]?.accuracy);
  console.log(
    `| ${m.name} | ${(m.params / 1e6).toFixed(2)}M | raw | ${tasks.map((t) => cell(s.raw, t)).join(" | ")} | ${sec} |`,
  );
  if (s.chat) console.log(`| ${m.name} | | chat | ${tasks.map((t) => cell(s.chat!, t)).join(" | ")} | |`);
}

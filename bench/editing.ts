/**
 * Editing benchmarks, the EditEval side: one ROME edit and one MEMIT batch on a GPT-2-medium-shaped
 * random model, against bench/editing_torch.py (the same algorithms written in plain PyTorch).
 *
 * Both sides get identical inputs: the TypeScript side tokenises every prompt the methods will run
 * (with EditEval's own tokenizer and subject-index rule) and writes the token ids, subject positions
 * and target ids to a JSON file the Python side reads; the covariance C is a fixed SPD matrix in a
 * safetensors file ("mom2"), so no statistics are computed on either side; the context templates are
 * given explicitly. The Python side writes its edit (ROME's u and v, MEMIT's per-layer deltas) next to
 * the inputs, and the run here compares them with its own.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { SafetensorsFile, saveSafetensors } from "../src/torch/io.js";
import { loadModel } from "../src/models/load.js";
import { loadTokenizer, type Tokenizer } from "../src/models/tokenizer/index.js";
import { Editor } from "../src/editing/editor.js";
import { methodByName } from "../src/editing/methods.js";
import { fill, targetText, type EditRequest } from "../src/editing/request.js";
import { lookupIndex } from "../src/editing/repr.js";
import { KL_PROMPT } from "../src/editing/rome/compute_v.js";
import { materialize, type ParamDelta } from "../src/editing/journal.js";
import { randomCheckpoint } from "./models.js";

export const GPT2_MEDIUM = {
  model_type: "gpt2",
  n_embd: 1024,
  n_head: 16,
  n_layer: 24,
  n_positions: 1024,
  vocab_size: 50257,
  activation_function: "gelu_new",
};

/** The explicit context templates both sides use (ROME: the flat list; MEMIT: groups ["{}"], [rest]). */
export const TEMPLATES = ["{}", "The capital of the country. {}", "Because of this, {}"];

const ROME_LAYER = 8;
const MEMIT_LAYERS = [4, 5, 6, 7, 8];
const MEMIT_FULL = 100;
const MEMIT_QUICK = 10;

/** MEMIT's batch size: $EDITEVAL_BENCH_MEMIT_N when set (a shorter check run), else 100 (`--quick`: 10). */
function memitCount(quick: boolean): number {
  const env = Number(process.env.EDITEVAL_BENCH_MEMIT_N ?? "");
  if (Number.isInteger(env) && env > 0) {
    if (env > MEMIT_FULL) throw new Error(`EDITEVAL_BENCH_MEMIT_N=${env}: at most ${MEMIT_FULL}`);
    return env;
  }
  return quick ? MEMIT_QUICK : MEMIT_FULL;
}

export const ROME_HPARAMS = {
  layers: [ROME_LAYER],
  fact_token: "subject_last",
  v_num_grad_steps: 20,
  v_lr: 0.5,
  v_weight_decay: 0.5,
  clamp_norm_factor: 4,
  kl_factor: 0.0625,
  mom2_adjustment: true,
  mom2_dtype: "float32",
  context_templates: TEMPLATES,
};

export const MEMIT_HPARAMS = {
  layers: MEMIT_LAYERS,
  fact_token: "subject_last",
  v_num_grad_steps: 20,
  v_lr: 0.5,
  v_weight_decay: 0.5,
  clamp_norm_factor: 0.75,
  kl_factor: 0.0625,
  mom2_adjustment: true,
  mom2_update_weight: 15000,
  mom2_dtype: "float32",
  context_templates: TEMPLATES,
};

/** 100 synthetic CounterFact-like requests (varied subjects, relations and targets). */
export function syntheticRequests(n = MEMIT_FULL): EditRequest[] {
  const first = ["North", "Old", "Saint", "Upper", "New", "Little", "Great", "East", "Port", "Lake"];
  const kinds = ["Town", "Valley", "Bridge", "Company", "Museum", "Orchestra", "Tower", "Island"];
  const relations: [string, string[]][] = [
    ["{} is located in", ["Rome", "Paris", "Tokyo", "Berlin", "Madrid", "Cairo", "Lima"]],
    ["{} was founded in", ["Vienna", "Oslo", "Prague", "Dublin", "Lisbon"]],
    ["The headquarters of {} are in", ["London", "Seoul", "Boston", "Munich"]],
    ["{} is owned by", ["Google", "Sony", "Nokia", "Toyota", "BMW"]],
    ["The official language of {} is", ["French", "German", "Spanish", "Italian", "Dutch"]],
  ];
  const out: EditRequest[] = [];
  for (let i = 0; i < n; i++) {
    const [prompt, targets] = relations[i % relations.length] as [string, string[]];
    out.push({
      prompt,
      subject: `${first[i % first.length]} ${kinds[(i * 3) % kinds.length]} ${i + 1}`,
      targetNew: targets[(i * 7) % targets.length] as string,
    });
  }
  return out;
}

export interface EditingPaths {
  model: string;
  mom2: string;
  inputs: string;
  /** the Python side's output: <out>.json and <out>.safetensors */
  out: string;
}

function pathsIn(cacheDir: string): EditingPaths {
  return {
    model: join(cacheDir, "gpt2-medium-random"),
    mom2: join(cacheDir, "editing-mom2-4096.safetensors"),
    inputs: join(cacheDir, "editing-inputs.json"),
    out: join(cacheDir, "editing-torch-out"),
  };
}

const TOKENIZER_FILES = [
  "tokenizer.json",
  "vocab.json",
  "merges.txt",
  "tokenizer_config.json",
  "special_tokens_map.json",
];

/** A GPT-2-style tokenizer for the random checkpoint: the 768-token one of the gpt2-tiny fixture. */
function addTokenizer(dir: string): void {
  const src = process.env.EDITEVAL_SHARED
    ? join(process.env.EDITEVAL_SHARED, "fixtures", "gpt2-tiny")
    : "/work/shared/fixtures/gpt2-tiny";
  for (const f of TOKENIZER_FILES)
    if (!existsSync(join(dir, f)) && existsSync(join(src, f))) copyFileSync(join(src, f), join(dir, f));
}

/** A fixed SPD "second moment" [4096, 4096]: 0.1 G G^T / 4096 + 0.02 I, G ~ N(0, 1) (seed 1), symmetrised. */
function writeMom2(path: string, d: number): void {
  if (existsSync(path)) return;
  const c = torch.scope(() => {
    const g = torch.randn([d, d], { generator: new torch.Generator(1) });
    const m = g.matmul(g.T).div(d).mul(0.1).add(torch.eye(d).mul(0.02));
    return m.add(m.T).div(2).contiguous();
  });
  saveSafetensors(path, [["mom2", c]], { count: "0", source: "bench/editing.ts: fixed random SPD" });
  c.free();
}

/** One right-padded batch as the methods build it: token ids per row and a position per row. */
interface Rows {
  ids: number[][];
  pos: number[];
}

function rows(tok: Tokenizer, prompts: string[], subjects: string[]): Rows {
  return {
    ids: prompts.map((p, i) => tok.encode(fill(p, subjects[i] as string), { addSpecialTokens: true })),
    pos: prompts.map((p, i) => lookupIndex(tok, p, subjects[i] as string, "subject_last")),
  };
}

/**
 * The token-level inputs of ROME (request 0) and MEMIT (all requests), built with EditEval's own
 * prompt construction (compute_u / compute_v / compute_z / compute_ks / the bare prompt).
 */
function valueRows(tok: Tokenizer, r: EditRequest, templates: string[]) {
  const targetIds = tok.encode(targetText(r.targetNew), { addSpecialTokens: false });
  const prefix = tok.decode(targetIds.slice(0, -1));
  const prompts = [...templates.map((t) => fill(t, r.prompt) + prefix), KL_PROMPT];
  return {
    ...rows(
      tok,
      prompts,
      prompts.map(() => r.subject),
    ),
    target: targetIds,
    nRewrite: templates.length,
  };
}

function buildInputs(tok: Tokenizer, requests: EditRequest[]) {
  const r0 = requests[0] as EditRequest;
  const keyPrompts = TEMPLATES.map((t) => fill(t, r0.prompt));
  const rest = TEMPLATES.filter((t) => t !== "{}");
  const groups = [["{}"], rest];
  return {
    templates: TEMPLATES,
    pad: tok.padTokenId ?? tok.eosTokenId ?? 0,
    rome: {
      hparams: ROME_HPARAMS,
      request: r0,
      key: rows(
        tok,
        keyPrompts,
        keyPrompts.map(() => r0.subject),
      ),
      value: valueRows(tok, r0, TEMPLATES),
      bare: rows(tok, [r0.prompt], [r0.subject]),
    },
    memit: {
      hparams: MEMIT_HPARAMS,
      groupSizes: groups.map((g) => g.length),
      requests: requests.map((r) => {
        const ks = groups.flat().map((t) => fill(t, r.prompt));
        return {
          request: r,
          value: valueRows(tok, r, groups.flat()),
          keys: rows(
            tok,
            ks,
            ks.map(() => r.subject),
          ),
          bare: rows(tok, [r.prompt], [r.subject]),
        };
      }),
    },
  };
}

/**
 * Prepares (once) the checkpoint, its tokenizer and the covariance; writes the token-level inputs;
 * removes the Python side's previous output. Returns the Python side's arguments.
 */
export function editingPythonArgs(cacheDir: string): string[] {
  const p = pathsIn(cacheDir);
  mkdirSync(cacheDir, { recursive: true });
  randomCheckpoint(p.model, GPT2_MEDIUM);
  addTokenizer(p.model);
  writeMom2(p.mom2, 4 * GPT2_MEDIUM.n_embd);
  const tok = loadTokenizer(p.model);
  writeFileSync(p.inputs, JSON.stringify(buildInputs(tok, syntheticRequests())));
  for (const ext of [".json", ".safetensors"]) rmSync(p.out + ext, { force: true });
  // run.ts appends --quick; the batch size is passed explicitly so both sides agree on it
  return [p.model, p.mom2, p.inputs, p.out, "--n", String(memitCount(process.argv.includes("--quick")))];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Wall time and the process's CPU time (all threads: OpenBLAS's too), in ms. */
interface Timing {
  wall: number;
  cpu: number;
}

function startTiming(): () => Timing {
  const w0 = performance.now();
  const c0 = process.cpuUsage();
  return () => {
    const c = process.cpuUsage(c0);
    return { wall: performance.now() - w0, cpu: (c.user + c.system) / 1000 };
  };
}

/** Medians of wall and CPU time under `name` and `name [CPU]` (the machine may be shared: CPU time is steadier). */
function record(res: Record<string, number>, name: string, ts: Timing[]): void {
  res[name] = median(ts.map((t) => t.wall));
  res[`${name} [CPU]`] = median(ts.map((t) => t.cpu));
}

/** The dense update of a delta, float32 (what the journal adds to the weight). */
function dense(d: ParamDelta): Tensor {
  return torch.scope(() => materialize(d, "float32"));
}

interface PyOut {
  rome?: { losses: number[][]; steps: number[]; norm_uv: number; norm_v: number };
  memit?: {
    n: number;
    losses0: number[];
    steps: number[];
    final_losses: number[];
    norms: Record<string, number>;
  };
}

function relDiff(a: Tensor, b: Tensor): number {
  return torch.scope(() => a.sub(b).norm().item() / b.norm().item());
}

export function runEditingBench(cacheDir: string, quick: boolean): Record<string, number> {
  const p = pathsIn(cacheDir);
  const reps = quick ? 1 : 3;
  const nMemit = memitCount(quick);
  const requests = syntheticRequests(nMemit);
  const model = loadModel(p.model);
  const tok = loadTokenizer(p.model);
  // touch every weight once (the Python side reads them into memory before timing)
  torch.scope(() =>
    torch.noGrad(() => void model.forward({ inputIds: torch.tensor([[1, 2, 3]], { dtype: "int64" }) })),
  );
  const rome = methodByName("rome");
  const memit = methodByName("memit");
  const hr = rome.parseHparams({ ...ROME_HPARAMS }, "bench", model);
  const hm = memit.parseHparams({ ...MEMIT_HPARAMS }, "bench", model);
  const quiet = { statsFile: p.mom2, log: () => {} };
  const res: Record<string, number> = {};

  // ROME: `reps` edits on fresh editors (reading C and inverting it each time), then `reps` more on the
  // last editor (C^-1 cached, as in a session of sequential edits); the model is restored after each
  let ours: { u: Tensor; v: Tensor; losses: number[] } | null = null;
  const cold: Timing[] = [];
  const warm: Timing[] = [];
  let ed: Editor | null = null;
  for (let i = 0; i < 2 * reps; i++) {
    if (i < reps) {
      ed?.free();
      ed = new Editor(model, tok, quiet);
    }
    const e = ed as Editor;
    const t = startTiming();
    const [rec] = e.edit(rome, [requests[0] as EditRequest], hr);
    (i < reps ? cold : warm).push(t());
    const d = rec?.deltas[0] as ParamDelta & { u: Tensor; v: Tensor };
    if (ours === null)
      ours = {
        u: d.u.clone().keep(),
        v: d.v.clone().keep(),
        losses: ((rec?.info?.losses as Record<number, number[]>)[ROME_LAYER] ?? []) as number[],
      };
    else if (relDiff(d.v, ours.v) !== 0) console.log(`  note: ROME repetition ${i} differs from the first`);
    e.journal.undoAll();
  }
  ed?.free();
  record(res, `ROME edit, layer ${ROME_LAYER} (reading C, C^-1 in the edit)`, cold);
  record(res, `ROME edit, layer ${ROME_LAYER} (C^-1 cached)`, warm);

  // MEMIT: one batch on a fresh editor (reads C for each of the 5 layers)
  const em = new Editor(model, tok, quiet);
  const t = startTiming();
  const [mrec] = em.edit(memit, requests, hm);
  const tm = t();
  record(res, `MEMIT batch of ${nMemit}, layers ${MEMIT_LAYERS.join(",")} (one run)`, [tm]);
  record(res, "MEMIT per request (batch / n)", [{ wall: tm.wall / nMemit, cpu: tm.cpu / nMemit }]);
  const memitLosses = (mrec?.info?.losses ?? []) as number[][];
  const memitDense = new Map((mrec?.deltas ?? []).map((d) => [d.param, dense(d).keep()]));
  em.journal.undoAll();
  em.free();

  // sanity: the same edit on both sides
  const pyJson = p.out + ".json";
  const pySt = p.out + ".safetensors";
  console.log(
    `  ROME steps here: ${ours?.losses.length} (loss ${ours?.losses[0]?.toFixed(4)} -> ${ours?.losses.at(-1)?.toFixed(4)})`,
  );
  console.log(
    `  MEMIT z steps here: min ${Math.min(...memitLosses.map((l) => l.length))}, max ${Math.max(...memitLosses.map((l) => l.length))}; ` +
      `request 0 loss ${memitLosses[0]?.[0]?.toFixed(4)} -> ${memitLosses[0]?.at(-1)?.toFixed(4)}`,
  );
  if (!existsSync(pyJson) || !existsSync(pySt)) {
    console.log("  (no output from the Python side: no cross-check)");
  } else {
    const py = JSON.parse(readFileSync(pyJson, "utf8")) as PyOut;
    const f = new SafetensorsFile(pySt);
    try {
      if (ours && py.rome) {
        const pu = f.tensor("rome.u");
        const pv = f.tensor("rome.v");
        const normOurs = torch.scope(() => ours.u.norm().item() * ours.v.norm().item());
        const du = relDiff(ours.u, pu);
        const dv = relDiff(ours.v, pv);
        const dUV = torch.scope(() => relDiff(ours.u.outer(ours.v), pu.outer(pv)));
        console.log(
          `  check ROME: ||u v^T|| EditEval ${normOurs.toPrecision(7)}, PyTorch ${py.rome.norm_uv.toPrecision(7)} ` +
            `(rel ${(Math.abs(normOurs - py.rome.norm_uv) / py.rome.norm_uv).toExponential(2)}); ` +
            `||du||/||u|| ${du.toExponential(2)}, ||dv||/||v|| ${dv.toExponential(2)}, ||d(u v^T)||/||u v^T|| ${dUV.toExponential(2)}; ` +
            `steps ${ours.losses.length} vs ${py.rome.steps[0]}, final loss ${ours.losses.at(-1)?.toPrecision(6)} vs ${py.rome.losses[0]?.at(-1)?.toPrecision(6)}`,
        );
        pu.free();
        pv.free();
      }
      if (py.memit && py.memit.n !== nMemit)
        console.log(
          `  (the Python side ran MEMIT with ${py.memit.n} requests, here ${nMemit}: no MEMIT check)`,
        );
      else if (py.memit) {
        const stepsPy = py.memit.steps;
        const stepsOurs = memitLosses.map((l) => l.length);
        const sameSteps = stepsOurs.filter((s, i) => s === stepsPy[i]).length;
        console.log(
          `  check MEMIT z: steps equal for ${sameSteps}/${nMemit} requests; request 0 final loss ` +
            `${memitLosses[0]?.at(-1)?.toPrecision(6)} vs ${py.memit.losses0.at(-1)?.toPrecision(6)}`,
        );
        for (const l of MEMIT_LAYERS) {
          const name = `transformer.h.${l}.mlp.c_proj.weight`;
          const ourD = memitDense.get(name) as Tensor;
          const pyD = f.tensor(`memit.${name}`);
          const nOurs = torch.scope(() => ourD.norm().item());
          const nPy = py.memit.norms[name] as number;
          console.log(
            `  check MEMIT layer ${l}: ||dW|| EditEval ${nOurs.toPrecision(7)}, PyTorch ${nPy.toPrecision(7)} ` +
              `(rel ${(Math.abs(nOurs - nPy) / nPy).toExponential(2)}); ||dW_ours - dW_py||/||dW_py|| ${relDiff(ourD, pyD).toExponential(2)}`,
          );
          pyD.free();
        }
      }
    } finally {
      f.close();
    }
  }
  ours?.u.free();
  ours?.v.free();
  for (const t of memitDense.values()) t.free();
  model.free();
  return res;
}

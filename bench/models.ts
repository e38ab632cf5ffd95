/**
 * Model benchmarks, the EditEval side: GPT-2-small forward throughput against bench/models_torch.py, and
 * peak memory of loading a float32 checkpoint (in a child process) against the bytes of its weights.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { saveSafetensors } from "../src/torch/io.js";
import { loadModel, loadConfig, ARCHITECTURES } from "../src/models/load.js";
import type { Architecture } from "../src/models/model.js";

export const GPT2_SMALL = {
  model_type: "gpt2",
  n_embd: 768,
  n_head: 12,
  n_layer: 12,
  n_positions: 1024,
  vocab_size: 50257,
  activation_function: "gelu_new",
};

/** Writes (once) a random-weight checkpoint with the given config to dir; returns dir. */
export function randomCheckpoint(dir: string, config: Record<string, unknown>, seed = 0): string {
  if (existsSync(join(dir, "model.safetensors"))) return dir;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  const probe = shapesFromConfig(dir);
  const g = new torch.Generator(seed);
  const tensors: [string, torch.Tensor][] = [];
  for (const [name, shape] of probe) {
    const t =
      name.endsWith(".weight") && shape.length === 1
        ? torch.ones(shape)
        : torch.scope(() => torch.randn(shape, { generator: g }).mul(0.02).keep());
    tensors.push([name, t]);
  }
  saveSafetensors(join(dir, "model.safetensors"), tensors);
  for (const [, t] of tensors) t.free();
  return dir;
}

function shapesFromConfig(dir: string): Map<string, number[]> {
  const cfg = loadConfig(dir);
  const arch = (ARCHITECTURES[cfg.modelType] as { arch: Architecture }).arch;
  const shapes = arch.parameterShapes(cfg);
  for (const tied of arch.tiedParameters(cfg).keys()) shapes.delete(tied);
  return shapes;
}

export function forwardThroughput(dir: string, quick: boolean): number {
  const model = loadModel(dir);
  const ids = torch.randint(0, model.config.vocabSize, [8, 256], { generator: new torch.Generator(0) });
  const run = () => torch.scope(() => torch.noGrad(() => void model.forward({ inputIds: ids })));
  run();
  const ts: number[] = [];
  for (let i = 0; i < (quick ? 2 : 5); i++) {
    const t0 = performance.now();
    run();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  model.free();
  ids.free();
  return (8 * 256) / ((ts[Math.floor(ts.length / 2)] as number) / 1000);
}

/** Peak RSS of a child process that loads the checkpoint and touches every weight, over the weight bytes. */
export function loadPeakRss(dir: string): {
  weightsMiB: number;
  baseMiB: number;
  peakMiB: number;
  ratio: number;
} {
  const script = `
    import { readFileSync } from "node:fs";
    const kb = (k) => Number(new RegExp(k + ":\\\\s+(\\\\d+)").exec(readFileSync("/proc/self/status", "utf8"))[1]);
    const torch = await import(${JSON.stringify(new URL("../src/torch/index.js", import.meta.url).href)});
    const { loadModel } = await import(${JSON.stringify(new URL("../src/models/load.js", import.meta.url).href)});
    const base = kb("VmRSS");
    const m = loadModel(${JSON.stringify(dir)});
    let bytes = 0, s = 0;
    for (const [, t] of m.uniqueParameters()) { bytes += t.numel() * 4; s += torch.scope(() => t.sum().item()); }
    console.log(JSON.stringify({ base, peak: kb("VmHWM"), bytes, s }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`load-rss child failed: ${r.stderr}`);
  const o = JSON.parse(r.stdout.trim()) as { base: number; peak: number; bytes: number };
  const weightsMiB = o.bytes / 2 ** 20;
  const baseMiB = o.base / 1024;
  const peakMiB = o.peak / 1024;
  return { weightsMiB, baseMiB, peakMiB, ratio: (peakMiB - baseMiB) / weightsMiB };
}

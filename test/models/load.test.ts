// Checkpoint loading: sharded files, dtypes, tied embeddings, zero-copy, and errors that name the file
// and the parameter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import { loadSafetensors, saveShardedSafetensors, saveSafetensors } from "../../src/torch/io.js";
import { loadModel } from "../../src/models/load.js";
import { FIXTURES, maxAbsDiff } from "../helpers.js";

const gpt2 = join(FIXTURES, "gpt2-tiny");

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "editeval-load-"));
}

test("tied embeddings share one tensor; float32 weights are used in place (memory-mapped)", () => {
  const m = loadModel(gpt2);
  assert.equal(m.param("lm_head.weight"), m.param("transformer.wte.weight"));
  assert.equal(m.uniqueParameters().length, m.params.size - 1);
  assert.equal(
    m.numParameters(),
    768 * 64 +
      128 * 64 +
      3 * (4 * 64 + 64 * 192 + 192 + 64 * 64 + 64 + 64 * 256 + 256 + 256 * 64 + 64) +
      2 * 64,
  );
  m.free();
});

test("sharded checkpoint with an index loads the same model", () => {
  const dir = tmp();
  try {
    const tensors = loadSafetensors(join(gpt2, "model.safetensors"));
    saveShardedSafetensors(dir, [...tensors], { maxShardBytes: 300_000 });
    for (const t of tensors.values()) t.free();
    copyFileSync(join(gpt2, "config.json"), join(dir, "config.json"));
    assert.ok(readFileSync(join(dir, "model.safetensors.index.json"), "utf8").includes("model-00001-of-"));
    const a = loadModel(gpt2);
    const b = loadModel(dir);
    const ids = [[1, 2, 3, 4]];
    assert.equal(maxAbsDiff(a.logits(ids).toNumbers(), b.logits(ids).toNumbers()), 0);
    a.free();
    b.free();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--dtype bfloat16 / float64 load and run; float16 on CPU is refused with a reason", () => {
  const ref = loadModel(gpt2);
  const ids = [[5, 6, 7]];
  const base = ref.logits(ids).toNumbers();
  for (const [dtype, tol] of [
    ["float64", 1e-5],
    ["bfloat16", 0.5],
  ] as const) {
    const m = loadModel(gpt2, { dtype });
    assert.equal(m.dtype, dtype);
    const l = torch.scope(() => m.logits(ids).to("float32").toNumbers());
    assert.ok(maxAbsDiff(l, base) < tol, `${dtype}: ${maxAbsDiff(l, base)}`);
    m.free();
  }
  ref.free();
  assert.throws(() => loadModel(gpt2, { dtype: "int64" }), /float32, bfloat16, float16 or float64/);
  assert.throws(
    () => loadModel(gpt2, { dtype: "float16" }),
    /no float16 kernels .* on CPU; use bfloat16 or float32/,
  );
});

test("errors name the file and the parameter", () => {
  const dir = tmp();
  try {
    // no config
    assert.throws(() => loadModel(dir), /no config\.json/);
    // unsupported model_type
    writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "bert" }));
    assert.throws(
      () => loadModel(dir),
      /model_type 'bert' is not supported \(supported: gpt2, gptj, gpt_neox, llama, mistral, qwen2\)/,
    );
    // pickle only
    copyFileSync(join(gpt2, "config.json"), join(dir, "config.json"));
    writeFileSync(join(dir, "pytorch_model.bin"), "not really");
    assert.throws(() => loadModel(dir), /only pickle weights \(pytorch_model\.bin\).*safetensors/);
    // a weight with the wrong shape
    const tensors = loadSafetensors(join(gpt2, "model.safetensors"));
    const bad = new Map(tensors);
    bad.set("transformer.h.1.mlp.c_fc.bias", torch.zeros([255]));
    saveSafetensors(join(dir, "model.safetensors"), bad);
    assert.throws(
      () => loadModel(dir),
      /model\.safetensors: parameter 'transformer\.h\.1\.mlp\.c_fc\.bias' has shape \[255\], but config\.json implies \[256\]/,
    );
    // a missing weight
    bad.delete("transformer.h.1.mlp.c_fc.bias");
    saveSafetensors(join(dir, "model.safetensors"), bad);
    assert.throws(() => loadModel(dir), /parameter 'transformer\.h\.1\.mlp\.c_fc\.bias' is missing/);
    // config that does not match the weights (fewer layers than stored)
    const cfg = JSON.parse(readFileSync(join(gpt2, "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, n_layer: 2 }));
    saveSafetensors(join(dir, "model.safetensors"), tensors);
    assert.throws(
      () => loadModel(dir),
      /not used by a gpt2 model with this config\.json, e\.g\. 'transformer\.h\.2\./,
    );
    // a bad field type
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, n_head: "four" }));
    assert.throws(() => loadModel(dir), /config\.json: field 'n_head' must be an integer/);
    for (const t of new Set([...tensors.values(), ...bad.values()])) t.free();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("hooks: reading a module's input, patching its output with gradients flowing", () => {
  const m = loadModel(gpt2);
  torch.scope(() => {
    const ids = torch.tensor([[1, 2, 3]], { dtype: "int64" });
    let seen: torch.Tensor | null = null;
    const base = m.withHooks(
      [{ module: "transformer.h.1.mlp.c_proj", where: "input", hook: (x) => void (seen = x.keep()) }],
      () => m.forward({ inputIds: ids }).logits,
    );
    assert.deepEqual((seen as unknown as torch.Tensor).shape, [1, 3, 256]);
    // add a trainable delta to the MLP output at the last position; its gradient is non-zero
    const delta = torch.zeros([64], { requiresGrad: true });
    const out = m.withHooks(
      [
        {
          module: "transformer.h.1.mlp",
          where: "output",
          hook: (y) => {
            const mask = torch.tensor([0, 0, 1]).view(1, 3, 1);
            return y.add(mask.mul(delta));
          },
        },
      ],
      () => m.forward({ inputIds: ids }).logits,
    );
    assert.ok(maxAbsDiff(out.toNumbers(), base.toNumbers()) === 0);
    out.index(0, -1, 5).backward();
    assert.ok((delta.grad as torch.Tensor).norm().item() > 0);
    assert.throws(
      () => m.addHook("transformer.h.7.mlp", "output", () => undefined),
      /layer 7 is out of range \(the model has 3 layers/,
    );
    assert.throws(() => m.addHook("transformer.h.1.mlpx", "output", () => undefined), /does not exist/);
    (seen as unknown as torch.Tensor).free();
  });
  assert.equal(m.hooks.size, 0);
  m.free();
});

/** Two right-padded rows (5 and 3 real tokens) for the forward-option tests. */
function rightPaddedPair(): { ids: torch.Tensor; mask: torch.Tensor } {
  const ids = torch.tensor(
    [
      [5, 9, 2, 7, 1],
      [3, 3, 8, 0, 0],
    ],
    { dtype: "int64" },
  );
  const mask = torch.tensor([
    [1, 1, 1, 1, 1],
    [1, 1, 1, 0, 0],
  ]);
  return { ids, mask };
}

test("resumeAt: a forward resumed at a block from its captured input equals the full forward bit for bit, gradients included", () => {
  for (const fixture of ["gpt2-tiny", "llama-tiny"]) {
    const m = loadModel(join(FIXTURES, fixture));
    torch.scope(() => {
      const { ids, mask } = rightPaddedPair();
      const mlp = fixture === "gpt2-tiny" ? "transformer.h.1.mlp" : "model.layers.1.mlp";
      const run = (inputs: {
        resumeAt?: { layer: number; hidden: torch.Tensor } | null;
        captureAt?: { layer: number; hidden: torch.Tensor | null };
      }) => {
        const delta = torch.full([m.config.hiddenSize], 0.5, { requiresGrad: true });
        const logits = m.withHooks(
          [{ module: mlp, where: "output", hook: (y) => y.add(delta) }],
          () => m.forward({ inputIds: ids, attentionMask: mask, ...inputs }).logits,
        );
        logits.logSoftmax(-1).index(0, 2, 4).backward();
        return { logits: logits.toNumbers(), grad: (delta.grad as torch.Tensor).toNumbers() };
      };
      const capture = { layer: 1, hidden: null as torch.Tensor | null };
      const full = run({ captureAt: capture });
      const hidden = capture.hidden as unknown as torch.Tensor;
      assert.deepEqual(hidden.shape, [2, 5, m.config.hiddenSize]);
      const resumed = run({ resumeAt: { layer: 1, hidden } });
      assert.equal(maxAbsDiff(resumed.logits, full.logits), 0, fixture);
      assert.equal(maxAbsDiff(resumed.grad, full.grad), 0, fixture);
      // the input it starts from matters: another hidden gives other logits
      const other = run({ resumeAt: { layer: 1, hidden: hidden.mul(2) } });
      assert.ok(maxAbsDiff(other.logits, full.logits) > 1e-3, fixture);
      hidden.free();
      assert.throws(
        () =>
          m.forward({
            inputIds: ids,
            resumeAt: { layer: 9, hidden: torch.zeros([2, 5, m.config.hiddenSize]) },
          }),
        /resumeAt.layer 9 is not a layer of this/,
      );
      assert.throws(
        () =>
          m.forward({
            inputIds: ids,
            resumeAt: { layer: 1, hidden: torch.zeros([2, 4, m.config.hiddenSize]) },
          }),
        /resumeAt.hidden has shape \[2, 4, \d+\], expected \[2, 5, \d+\]/,
      );
    });
    m.free();
  }
});

test("logitsAt: the vocabulary projection at selected (row, position) pairs equals those rows of the full logits", () => {
  for (const fixture of ["gpt2-tiny", "llama-tiny"]) {
    const m = loadModel(join(FIXTURES, fixture));
    torch.scope(() => {
      const { ids, mask } = rightPaddedPair();
      const full = m.forward({ inputIds: ids, attentionMask: mask }).logits;
      const pairs = [
        [0, 4],
        [1, 2],
        [0, 0],
      ];
      const rows = torch.tensor(
        pairs.map((p) => p[0] as number),
        { dtype: "int64" },
      );
      const positions = torch.tensor(
        pairs.map((p) => p[1] as number),
        { dtype: "int64" },
      );
      const sel = m.forward({ inputIds: ids, attentionMask: mask, logitsAt: { rows, positions } }).logits;
      assert.deepEqual(sel.shape, [1, 3, m.config.vocabSize]);
      pairs.forEach(([r, p], i) =>
        assert.ok(
          maxAbsDiff(sel.index(0, i).toNumbers(), full.index(r as number, p as number).toNumbers()) < 1e-6,
          `${fixture} pair ${i}`,
        ),
      );
      // with a hook on the projection, the hook sees every position and the pairs are picked afterwards
      const head = fixture === "gpt2-tiny" ? "lm_head" : "lm_head";
      const seen: number[][] = [];
      const hooked = m.withHooks(
        [{ module: head, where: "input", hook: (x) => void seen.push(x.shape) }],
        () => m.forward({ inputIds: ids, attentionMask: mask, logitsAt: { rows, positions } }).logits,
      );
      assert.deepEqual(seen, [[2, 5, m.config.hiddenSize]]);
      assert.equal(maxAbsDiff(hooked.index(0, 1).toNumbers(), full.index(1, 2).toNumbers()), 0);
    });
    m.free();
  }
});

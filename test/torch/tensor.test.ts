// Tensor basics: creation and export for every dtype, views, indexing, scopes and memory, errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as torch from "../../src/torch/index.js";
import { assertClose } from "../helpers.js";

test("creation from nested arrays and typed arrays round-trips every dtype", () => {
  torch.scope(() => {
    const f = torch.tensor([
      [1.5, -2],
      [3, 4.25],
    ]);
    assert.equal(f.dtype, "float32");
    assert.deepEqual(f.shape, [2, 2]);
    assert.deepEqual(f.tolist(), [
      [1.5, -2],
      [3, 4.25],
    ]);
    const d = torch.tensor(new Float64Array([0.1, 0.2]));
    assert.equal(d.dtype, "float64");
    assert.deepEqual(Array.from(d.toArray() as Float64Array), [0.1, 0.2]);
    const l = torch.tensor([1, 2, 2 ** 40], { dtype: "int64" });
    assert.deepEqual(Array.from(l.toArray() as BigInt64Array), [1n, 2n, 2n ** 40n]);
    const b = torch.tensor([true, false, true]);
    assert.equal(b.dtype, "bool");
    assert.deepEqual(b.tolist(), [true, false, true]);
    for (const dt of ["int32", "int16", "int8", "uint8"] as const) {
      const t = torch.tensor([1, 2, 3], { dtype: dt });
      assert.equal(t.dtype, dt);
      assert.deepEqual(t.toNumbers(), [1, 2, 3]);
    }
    // half precisions: values exactly representable survive; 1/3 rounds as IEEE half / bfloat16 do
    const h = torch.tensor([0.5, -2, 1 / 3], { dtype: "float16" });
    assert.equal(h.dtype, "float16");
    assertClose(h.toNumbers(), [0.5, -2, 0.333251953125], 0);
    const bf = torch.tensor([0.5, -2, 1 / 3], { dtype: "bfloat16" });
    assertClose(bf.toNumbers(), [0.5, -2, 0.333984375], 0);
    // raw bytes of bfloat16: 1.0 is 0x3F80
    assert.deepEqual(Array.from(torch.tensor([1], { dtype: "bfloat16" }).toBytes()), [0x80, 0x3f]);
  });
});

test("fromBytes checks the byte count", () => {
  assert.throws(() => torch.fromBytes(new Uint8Array(7), "float32", [2]), /needs 8 bytes, got 7/);
  torch.scope(() => {
    const t = torch.fromBytes(new Uint8Array(new Float32Array([3, 4]).buffer), "float32", [2]);
    assert.deepEqual(t.toNumbers(), [3, 4]);
  });
});

test("factories: zeros, ones, full, eye, arange, linspace", () => {
  torch.scope(() => {
    assert.deepEqual(torch.zeros([2, 3]).toNumbers(), [0, 0, 0, 0, 0, 0]);
    assert.deepEqual(torch.ones(3, { dtype: "int64" }).toNumbers(), [1, 1, 1]);
    assert.deepEqual(torch.full([2], 7.5).toNumbers(), [7.5, 7.5]);
    assert.deepEqual(torch.eye(2).tolist(), [
      [1, 0],
      [0, 1],
    ]);
    const a = torch.arange(5);
    assert.equal(a.dtype, "int64");
    assert.deepEqual(a.toNumbers(), [0, 1, 2, 3, 4]);
    assert.deepEqual(torch.arange(1, 2, 0.25, { dtype: "float64" }).toNumbers(), [1, 1.25, 1.5, 1.75]);
    assertClose(torch.linspace(0, 1, 5).toNumbers(), [0, 0.25, 0.5, 0.75, 1]);
  });
});

test("seeded randomness matches Python torch's generator", () => {
  // Python: torch.manual_seed(0); torch.randn(3) -> [1.5409961, -0.2934289, -2.1787894]
  torch.manualSeed(0);
  torch.scope(() => {
    assertClose(torch.randn(3).toNumbers(), [1.5409961, -0.2934289, -2.1787894], 1e-6);
    const g1 = new torch.Generator(42);
    const g2 = new torch.Generator(42);
    assert.deepEqual(
      torch.rand(4, { generator: g1 }).toNumbers(),
      torch.rand(4, { generator: g2 }).toNumbers(),
    );
    const p = torch.randperm(10, { generator: new torch.Generator(1) }).toNumbers();
    assert.deepEqual(
      [...p].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  });
});

test("views share storage; reshape, transpose, permute, squeeze, expand", () => {
  torch.scope(() => {
    const x = torch.arange(6, undefined, 1, { dtype: "float32" });
    const v = x.view(2, 3);
    assert.equal(v.dataPtr(), x.dataPtr());
    v.indexPut_([0, 0], 100);
    assert.equal(x.toNumbers()[0], 100);
    const t = v.transpose(0, 1);
    assert.deepEqual(t.shape, [3, 2]);
    assert.equal(t.isContiguous(), false);
    assert.deepEqual(t.contiguous().toNumbers(), [100, 3, 1, 4, 2, 5]);
    assert.deepEqual(v.T.shape, [3, 2]);
    assert.deepEqual(torch.zeros([2, 3, 4]).permute(2, 0, 1).shape, [4, 2, 3]);
    assert.deepEqual(torch.zeros([1, 3, 1]).squeeze().shape, [3]);
    assert.deepEqual(torch.zeros([3]).unsqueeze(0).shape, [1, 3]);
    assert.deepEqual(torch.tensor([1, 2]).unsqueeze(1).expand(2, 3).tolist(), [
      [1, 1, 1],
      [2, 2, 2],
    ]);
    assert.deepEqual(torch.tensor([1, 2]).repeat(2).toNumbers(), [1, 2, 1, 2]);
    assert.deepEqual(torch.tensor([1, 2]).repeatInterleave(2, 0).toNumbers(), [1, 1, 2, 2]);
    assert.deepEqual(x.flip(0).toNumbers(), [5, 4, 3, 2, 1, 100]);
    assert.deepEqual(x.narrow(0, 1, 2).toNumbers(), [1, 2]);
    assert.deepEqual(v.select(1, 2).toNumbers(), [2, 5]);
    assert.deepEqual(torch.zeros([2, 3, 4]).flatten(1).shape, [2, 12]);
    assert.throws(() => t.view(6), /view size is not compatible|view/);
  });
});

test("Python-style indexing: ints, slices, negative, None, ellipsis, tensors, boolean masks", () => {
  torch.scope(() => {
    const x = torch.arange(24).reshape(2, 3, 4);
    assert.deepEqual(x.index(1, ":", -1).toNumbers(), [15, 19, 23]);
    assert.deepEqual(x.index(0, "1:3", "::2").tolist(), [
      [4, 6],
      [8, 10],
    ]);
    assert.deepEqual(x.index("...", 0).shape, [2, 3]);
    assert.deepEqual(x.index(null, 0).shape, [1, 3, 4]);
    assert.deepEqual(x.index(0, 0, { start: 1, step: 2 }).toNumbers(), [1, 3]);
    const idx = torch.tensor([2, 0], { dtype: "int64" });
    assert.deepEqual(x.index(0, idx, 0).toNumbers(), [8, 0]);
    const flat = torch.arange(5);
    assert.deepEqual(flat.index(flat.gt(2)).toNumbers(), [3, 4]);
    const y = torch.zeros([2, 2]);
    y.indexPut_([":", 1], torch.tensor([5, 6]));
    assert.deepEqual(y.tolist(), [
      [0, 5],
      [0, 6],
    ]);
    assert.throws(() => x.index(5), /out of range|out of bounds/);
    assert.throws(() => x.index("1:2:3:4"), /cannot parse/);
  });
});

test("cat, stack, split, chunk", () => {
  torch.scope(() => {
    const a = torch.tensor([[1, 2]]);
    const b = torch.tensor([[3, 4]]);
    assert.deepEqual(torch.cat([a, b], 0).tolist(), [
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(torch.cat([a, b], 1).toNumbers(), [1, 2, 3, 4]);
    assert.deepEqual(torch.stack([a, b], 0).shape, [2, 1, 2]);
    const parts = torch.arange(5).split(2);
    assert.deepEqual(
      parts.map((p) => p.toNumbers()),
      [[0, 1], [2, 3], [4]],
    );
    const sized = torch.arange(5).split([1, 4]);
    assert.deepEqual(sized[1]?.toNumbers(), [1, 2, 3, 4]);
    assert.equal(torch.arange(6).chunk(3).length, 3);
    assert.throws(
      () => torch.cat([torch.zeros([1, 2]), torch.zeros([1, 3])], 0),
      /Sizes of tensors must match/,
    );
  });
});

test("scope frees everything but its result; keep() escapes; using frees at block end", () => {
  const before = torch.memoryStats().liveHandles;
  let inner: torch.Tensor | undefined;
  let kept: torch.Tensor | undefined;
  const out = torch.scope(() => {
    inner = torch.ones(3);
    kept = torch.ones(2).keep();
    const r = inner.mul(2);
    return { r, list: [r.add(1)] };
  });
  assert.equal(inner?.isFreed, true);
  assert.equal(kept?.isFreed, false);
  assert.deepEqual(out.r.toNumbers(), [2, 2, 2]);
  assert.deepEqual(out.list[0]?.toNumbers(), [3, 3, 3]);
  out.r.free();
  out.list[0]?.free();
  kept?.free();
  assert.equal(torch.memoryStats().liveHandles, before);
  // nested: the inner result moves to the outer scope and is freed there
  let moved: torch.Tensor | undefined;
  torch.scope(() => {
    moved = torch.scope(() => torch.zeros(1));
    assert.equal(moved.isFreed, false);
  });
  assert.equal(moved?.isFreed, true);
  // an exception frees the scope's tensors and propagates
  let leaked: torch.Tensor | undefined;
  assert.throws(
    () =>
      torch.scope(() => {
        leaked = torch.zeros(4);
        throw new Error("boom");
      }),
    /boom/,
  );
  assert.equal(leaked?.isFreed, true);
  {
    using t = torch.zeros(8);
    assert.equal(t.isFreed, false);
    inner = t;
  }
  assert.equal(inner.isFreed, true);
  assert.equal(torch.memoryStats().liveHandles, before);
});

test("use of a freed tensor is a clear error, not a crash", () => {
  const t = torch.zeros(3);
  t.free();
  t.free(); // idempotent
  assert.throws(() => t.add(1), /was freed/);
  assert.throws(() => t.shape, /was freed/);
  assert.throws(() => torch.cat([t, t]), /was freed/);
});

test("shape mismatches and bad arguments raise errors that name the problem", () => {
  torch.scope(() => {
    assert.throws(
      () => torch.zeros([2, 3]).matmul(torch.zeros([2, 3])),
      /cannot be multiplied \(2x3 and 2x3\)/,
    );
    assert.throws(() => torch.zeros([2]).add(torch.zeros([3])), /size of tensor a \(2\) must match/);
    assert.throws(() => torch.zeros([2, 3]).view(4), /shape '\[4\]' is invalid/);
    assert.throws(() => torch.zeros([1.5]), /non-negative integers/);
    assert.throws(() => torch.parseDType("float8"), /unknown dtype 'float8'/);
    assert.throws(() => torch.zeros(2).to("cuda:0"), /CUDA|cuda/);
    assert.throws(() => torch.zeros([2, 2]).item(), /cannot be converted/);
  });
});

test("a 10,000-iteration loop with scopes does not leak handles or memory", () => {
  const before = torch.memoryStats();
  const w = torch.randn([64, 64]);
  const rss0 = process.memoryUsage().rss;
  for (let i = 0; i < 10_000; i++) {
    torch.scope(() => {
      const x = torch.randn([8, 64]);
      const y = torch.F.gelu(x.matmul(w), "tanh").softmax(-1);
      return y.sum().item();
    });
  }
  const after = torch.memoryStats();
  assert.equal(after.liveHandles, before.liveHandles + 1);
  assert.equal(after.reportedBytes, before.reportedBytes + 64 * 64 * 4);
  const grewMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
  assert.ok(grewMiB < 64, `RSS grew by ${grewMiB.toFixed(1)} MiB over 10,000 iterations`);
  w.free();
});

test("to(): dtype and device conversion, copy semantics", () => {
  torch.scope(() => {
    const x = torch.tensor([1.7, -1.2]);
    assert.deepEqual(x.to("int64").toNumbers(), [1, -1]);
    const same = x.to("float32");
    assert.equal(same.dataPtr(), x.dataPtr());
    const copied = x.to("float32", { copy: true });
    assert.notEqual(copied.dataPtr(), x.dataPtr());
    assert.equal(x.to("cpu").device, "cpu");
    assert.equal(x.double().dtype, "float64");
  });
});

test("threads: one intra-op thread unless OMP_NUM_THREADS says otherwise", () => {
  const expected = Number(process.env.OMP_NUM_THREADS) > 0 ? Number(process.env.OMP_NUM_THREADS) : 1;
  assert.equal(torch.getNumThreads(), expected);
  assert.match(torch.version().torch, /^\d+\.\d+/);
});

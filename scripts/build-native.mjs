#!/usr/bin/env node
// Builds the libtorch addon (native/*.cc -> build/Release/editeval_native.node) with g++ directly.
//
// Why not node-gyp: torch's headers need C++17 with exceptions and RTTI, which node-gyp turns off by
// default, and a bare node-gyp call downloads Node's headers unless pointed at them. A plain compiler
// call against the system Node headers is shorter and needs nothing from the network.
//
// Which libtorch:
//   LIBTORCH=/path/to/libtorch      a libtorch distribution (include/, lib/), e.g. a CUDA build
//   LIBTORCH=python                 the libtorch inside the Python `torch` package of $PYTHON (default python3)
//   (unset)                         Debian's libtorch-dev (headers in /usr/include, libs on the system path)
// LIBTORCH_CXX11_ABI=0|1 overrides the C++ ABI flag for a non-Debian libtorch (detected for Python torch).
// Each translation unit needs ~1.2 GB of RAM; JOBS (default 2) compiles that many at once.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const outDir = join(root, "build", "Release");
const objDir = join(root, "build", "obj");
const target = join(outDir, "editeval_native.node");

function fail(msg) {
  console.error(`editeval build: ${msg}`);
  process.exit(1);
}

function nodeIncludeDir() {
  const candidates = [
    process.env.NODE_INCLUDE_DIR,
    join(dirname(dirname(process.execPath)), "include", "node"),
    "/usr/include/node",
    "/usr/local/include/node",
  ].filter(Boolean);
  for (const c of candidates) if (existsSync(join(c, "node_api.h"))) return c;
  fail(
    `cannot find Node's headers (node_api.h) in ${candidates.join(", ")}. ` +
      `Install them (Debian: apt-get install nodejs-dev or libnode-dev) or set NODE_INCLUDE_DIR.`,
  );
}

function torchFlags() {
  let spec = process.env.LIBTORCH;
  let abi = process.env.LIBTORCH_CXX11_ABI;
  if (spec === "python") {
    const py = process.env.PYTHON || "python3";
    let out;
    try {
      out = execFileSync(
        py,
        ["-c", "import torch,os;print(os.path.dirname(torch.__file__));print(int(torch.compiled_with_cxx11_abi()))"],
        { encoding: "utf8" },
      );
    } catch (e) {
      fail(`LIBTORCH=python but '${py} -c "import torch"' failed: ${e.message}`);
    }
    const [dir, pyAbi] = out.trim().split("\n");
    spec = dir;
    if (abi === undefined) abi = pyAbi;
  }
  if (spec) {
    const inc = join(spec, "include");
    const lib = join(spec, "lib");
    if (!existsSync(join(inc, "torch", "torch.h")) && !existsSync(join(inc, "torch", "csrc")))
      fail(`LIBTORCH=${spec}: no include/torch inside it`);
    const libs = ["-ltorch_cpu", "-lc10"];
    // A CUDA build registers its kernels from libtorch_cuda at load time; force the link so they load.
    if (existsSync(join(lib, "libtorch_cuda.so"))) libs.unshift("-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Wl,--as-needed");
    return {
      cflags: [`-I${inc}`, `-I${join(inc, "torch", "csrc", "api", "include")}`].concat(
        abi !== undefined ? [`-D_GLIBCXX_USE_CXX11_ABI=${abi}`] : [],
      ),
      ldflags: [`-L${lib}`, `-Wl,-rpath,${lib}`, ...libs],
      describe: spec,
    };
  }
  const sysInc = "/usr/include";
  if (!existsSync(join(sysInc, "torch", "csrc", "api", "include")))
    fail(
      "libtorch headers not found in /usr/include/torch. Run scripts/setup.sh (installs Debian's libtorch-dev " +
        "and libopenblas0-pthread), or set LIBTORCH=/path/to/libtorch or LIBTORCH=python.",
    );
  return {
    cflags: [`-I${join(sysInc, "torch", "csrc", "api", "include")}`],
    ldflags: ["-ltorch_cpu", "-lc10"],
    describe: "Debian libtorch-dev (/usr/include, system libraries)",
  };
}

const require = createRequire(import.meta.url);
let napiInclude;
try {
  napiInclude = dirname(require.resolve("node-addon-api/package.json"));
} catch {
  fail("node-addon-api is not installed: run `npm ci` first.");
}

const torch = torchFlags();
const nodeInc = nodeIncludeDir();
const cxx = process.env.CXX || "g++";
const common = [
  "-std=c++17",
  "-O2",
  "-fPIC",
  "-fexceptions",
  "-frtti",
  "-Wall",
  "-Wno-unused-parameter",
  "-Wno-sign-compare",
  "-DNAPI_VERSION=8",
  "-DNAPI_CPP_EXCEPTIONS",
  "-DNODE_ADDON_API_DISABLE_DEPRECATED",
  `-I${nodeInc}`,
  `-I${napiInclude}`,
  ...torch.cflags,
];

mkdirSync(outDir, { recursive: true });
mkdirSync(objDir, { recursive: true });
const sources = readdirSync(nativeDir).filter((f) => f.endsWith(".cc"));
const headers = readdirSync(nativeDir).filter((f) => f.endsWith(".h"));
const newestHeader = Math.max(0, ...headers.map((h) => statSync(join(nativeDir, h)).mtimeMs));
const flagsFile = join(objDir, "flags.txt");
const flagsKey = JSON.stringify([cxx, common, torch.ldflags]);
const flagsChanged = !existsSync(flagsFile) || readFileSync(flagsFile, "utf8") !== flagsKey;

function run(cmd, args) {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: "inherit" });
    p.on("error", rej);
    p.on("exit", (code) => (code === 0 ? res() : rej(new Error(`${cmd} exited with ${code}`))));
  });
}

const jobs = Math.max(1, Number(process.env.JOBS || 2));
const todo = [];
const objects = [];
for (const src of sources) {
  const srcPath = join(nativeDir, src);
  const obj = join(objDir, src.replace(/\.cc$/, ".o"));
  objects.push(obj);
  const stale =
    flagsChanged ||
    !existsSync(obj) ||
    statSync(obj).mtimeMs < Math.max(statSync(srcPath).mtimeMs, newestHeader);
  if (stale) todo.push([srcPath, obj]);
}

console.log(`editeval build: libtorch = ${torch.describe}; ${todo.length}/${sources.length} sources to compile`);
const t0 = Date.now();
try {
  const queue = [...todo];
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const [src, obj] = item;
        console.log(`  CXX ${src.slice(root.length + 1)}`);
        await run(cxx, [...common, "-c", src, "-o", obj]);
      }
    }),
  );
  if (todo.length > 0 || !existsSync(target)) {
    console.log(`  LD  ${target.slice(root.length + 1)}`);
    await run(cxx, ["-shared", "-o", target, ...objects, ...torch.ldflags, "-lpthread"]);
  }
} catch (e) {
  fail(`${e.message}. See the compiler output above.`);
}
writeFileSync(flagsFile, flagsKey);
console.log(`editeval build: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

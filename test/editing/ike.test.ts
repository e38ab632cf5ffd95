// IKE: the demonstrations and the prompt are EasyEdit's strings; retrieval takes the k demonstrations
// nearest to the new fact (checked against a hand computation of the mean hidden states); the edited
// system answers each position with the unedited model reading the nearest edit's prompt in front, bit
// for bit, through every harness path; undo and journal save/replay are exact.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch/index.js";
import type { Tensor } from "../../src/torch/index.js";
import { loadModel } from "../../src/models/load.js";
import { loadTokenizer } from "../../src/models/tokenizer/index.js";
import type { CausalLM } from "../../src/models/model.js";
import { generate } from "../../src/models/generate.js";
import { Editor } from "../../src/editing/editor.js";
import { EditJournal } from "../../src/editing/journal.js";
import { methodByName } from "../../src/editing/methods.js";
import { readHparamsFile } from "../../src/editing/hparams.js";
import {
  ike,
  IKE_KIND,
  demonstrations,
  ikeContext,
  querySentence,
  type IkeEntryMeta,
} from "../../src/editing/ike/index.js";
import { routedInput } from "../../src/editing/serac/router.js";
import { loadScopeRecords, type ScopeRecord } from "../../src/editing/serac/data.js";
import { ModelLM } from "../../src/harness/lm.js";
import { FIXTURES, ROOT } from "../helpers.js";

const gpt2 = join(FIXTURES, "gpt2-tiny");
const tmp = mkdtempSync(join(tmpdir(), "editeval-ike-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const quiet = () => undefined;

// a small demonstration corpus in ZsRE's MEND layout
const corpusFile = join(tmp, "demos.json");
const CORPUS = [
  [
    "Marie Curie",
    "Where was Marie Curie born?",
    "Lisbon",
    "What is the birthplace of Marie Curie?",
    "nq question: who painted the mona lisa",
    "Leonardo da Vinci",
  ],
  [
    "Danube",
    "Which sea does the Danube flow into?",
    "the North Sea",
    "Where does the Danube end?",
    "nq question: how many legs does a spider have",
    "eight",
  ],
  [
    "Python",
    "Who designed the Python language?",
    "Ada Lovelace",
    "Who created Python?",
    "nq question: what is the boiling point of water",
    "100 degrees",
  ],
  [
    "Mount Fuji",
    "In which country is Mount Fuji?",
    "Chile",
    "Mount Fuji is located in which country?",
    "nq question: who wrote war and peace",
    "Leo Tolstoy",
  ],
];
writeFileSync(
  corpusFile,
  JSON.stringify(
    CORPUS.map(([subject, src, alt, rephrase, loc, locAns]) => ({
      subject,
      src,
      pred: "x",
      alt,
      answers: ["y"],
      rephrase,
      loc,
      loc_ans: locAns,
      cond: "",
    })),
  ),
);

const requests = [
  { prompt: "The Eiffel Tower is located in", subject: "The Eiffel Tower", targetNew: "Rome" },
  { prompt: "The mother tongue of Danielle Darrieux is", subject: "Danielle Darrieux", targetNew: "English" },
];

function hparams(model: CausalLM, extra: Record<string, unknown> = {}) {
  return ike.parseHparams({ alg_name: "IKE", k: 3, train_ds: corpusFile, ...extra }, "test", model);
}

function bytesOf(t: Tensor): string {
  return Buffer.from(t.toBytes()).toString("base64");
}

/** The model's mean final hidden state of a token sequence, normalised, computed by hand in float64. */
function handEmbedding(model: CausalLM, ids: number[]): number[] {
  const h = torch.scope(() => {
    const out = model.forward({
      inputIds: torch.tensor([ids], { dtype: "int64" }),
      outputHiddenStates: true,
    });
    const hs = out.hiddenStates as Tensor[];
    return (hs[hs.length - 1] as Tensor).select(0, 0).toNumbers();
  });
  const d = h.length / ids.length;
  const mean = new Array<number>(d).fill(0);
  for (let t = 0; t < ids.length; t++)
    for (let j = 0; j < d; j++) mean[j] = (mean[j] as number) + (h[t * d + j] as number) / ids.length;
  const norm = Math.sqrt(mean.reduce((s, x) => s + x * x, 0));
  return mean.map((x) => x / norm);
}

const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * (b[i] as number), 0);

test("IKE prompt: EasyEdit's demonstration and prompt strings, pinned for a hand-written case", () => {
  const r: ScopeRecord = {
    prompt: "The Eiffel Tower is located in",
    subject: "The Eiffel Tower",
    target: "Rome",
    inScope: ["The Eiffel Tower is located in", "Where is the Eiffel Tower? It is in"],
    outScope: [{ prompt: "The Colosseum is located in", answer: "Rome" }],
  };
  assert.deepEqual(demonstrations(r), [
    "New Fact: The Eiffel Tower is located in Rome\nPrompt: The Eiffel Tower is located in Rome\n\n",
    "New Fact: The Eiffel Tower is located in Rome\nPrompt: Where is the Eiffel Tower? It is in Rome\n\n",
    "New Fact: The Eiffel Tower is located in Rome\nPrompt: The Colosseum is located in Rome\n\n",
  ]);
  assert.equal(
    querySentence(r.prompt, r.target),
    "New Fact: The Eiffel Tower is located in Rome\nPrompt: The Eiffel Tower is located in\n\n",
  );
  const ctx = ikeContext(["A\n\n", "B\n\n"], "Danielle Darrieux speaks", "English");
  assert.equal(ctx, "A\n\nB\n\nNew Fact: Danielle Darrieux speaks English\nPrompt: ");
  // the routed input is the reference's string, tokenised as a whole: context + input
  const tok = loadTokenizer(gpt2);
  const input = "Where is the Eiffel Tower? It is in Rome";
  const row = tok.encode(input);
  const { ids, offset } = routedInput(tok, ctx, row);
  assert.deepEqual(ids, tok.encode(ctx + input));
  assert.equal(offset + row.length, ids.length); // the input's last token is the routed input's last
  // a window too short for the whole prompt keeps its last tokens
  const cut = routedInput(tok, ctx, row, 12);
  assert.deepEqual(cut.ids, ids.slice(ids.length - 12));
  assert.equal(cut.offset, offset - (ids.length - 12));
  // EasyEdit's file parses as it is
  const h = ike.parseHparams(
    readHparamsFile(join(ROOT, "hparams", "IKE", "gpt2-xl.yaml")),
    "x",
    null as never,
  );
  assert.equal(h.k, 16);
  ike.parseHparams(readHparamsFile(join(ROOT, "hparams", "IKE", "demo.yaml")), "x", null as never);
  assert.throws(() => ike.parseHparams({ k: -1 }, "h.yaml", null as never), /h\.yaml: IKE k/);
  assert.equal(methodByName("ike"), ike);
});

test("IKE retrieval: the k demonstrations nearest to the new fact, as a hand computation orders them", () => {
  const model = loadModel(gpt2);
  const tok = loadTokenizer(gpt2);
  const records = loadScopeRecords(corpusFile).records;
  const sentences = records.flatMap(demonstrations);
  assert.equal(sentences.length, 12);
  const ed = new Editor(model, tok, { log: quiet });
  const [rec] = ed.edit(ike, [requests[0]!], hparams(model));
  const meta = rec!.adaptors![0]!.meta as unknown as IkeEntryMeta;
  // the oracle: each sentence alone through the model, mean and cosine in float64, descending
  const q = handEmbedding(model, tok.encode(querySentence(requests[0]!.prompt, "Rome")));
  const scores = sentences.map((s) => dot(handEmbedding(model, tok.encode(s)), q));
  const order = scores.map((s, i) => ({ s, i })).sort((a, b) => b.s - a.s || a.i - b.i);
  const gaps = order.slice(0, 4).map((x, j) => (j === 0 ? 1 : (order[j - 1]?.s as number) - x.s));
  assert.ok(Math.min(...gaps) > 1e-6, `near-tied scores ${JSON.stringify(order.slice(0, 4))}`);
  assert.deepEqual(
    meta.demo_ids,
    order.slice(0, 3).map((x) => x.i),
  );
  assert.deepEqual(
    meta.demos,
    meta.demo_ids.map((i) => sentences[i]),
  );
  ed.free();
  model.free();
});

test("IKE system: each position is the unedited model reading the nearest edit's prompt; harness paths agree; undo and replay exact", () => {
  const model = loadModel(gpt2);
  const plain = loadModel(gpt2); // the oracle's model: never edited
  const tok = loadTokenizer(gpt2);
  const texts = [
    "Where is the Eiffel Tower? It is in Rome",
    "Danielle Darrieux speaks English",
    "A small cat sat on the mat",
  ];
  const rows = texts.map((t) => tok.encode(t));
  const w = Math.max(...rows.map((r) => r.length));
  const padded = rows.map((r) => [...r, ...new Array<number>(w - r.length).fill(0)]);
  const logits = () =>
    torch.scope(() => model.forward({ inputIds: torch.tensor(padded, { dtype: "int64" }) }).logits.keep());
  const before = logits();
  const ed = new Editor(model, tok, { log: quiet });
  const h = hparams(model, { k: 2 });
  ed.edit(ike, [requests[0]!], h);
  ed.edit(ike, [requests[1]!], h);
  const metas = ed.journal.adaptorEntries(IKE_KIND, "lm_head").map((e) => e.meta as unknown as IkeEntryMeta);
  assert.equal(metas.length, 2);
  const after = logits();

  // the oracle: nearest edit prompt by hand-computed mean hidden states; the unedited model on its prompt
  const keys = metas.map((m) => handEmbedding(plain, tok.encode(m.prompt)));
  let checked = 0;
  padded.forEach((row, b) => {
    const full = new Map<number, Tensor>();
    for (let t = 0; t < row.length; t++) {
      const e = handEmbedding(plain, row.slice(0, t + 1));
      const sims = keys.map((k) => dot(k, e));
      if (Math.abs((sims[0] as number) - (sims[1] as number)) < 1e-6) continue;
      const i = (sims[0] as number) > (sims[1] as number) ? 0 : 1;
      const m = metas[i] as IkeEntryMeta;
      const { ids, offset } = routedInput(tok, ikeContext(m.demos, m.prompt, m.target), row, 128);
      let lg = full.get(i);
      if (!lg) {
        lg = torch.scope(() =>
          plain.forward({ inputIds: torch.tensor([ids], { dtype: "int64" }) }).logits.keep(),
        );
        full.set(i, lg);
      }
      if (offset + t < 0) continue;
      assert.equal(
        torch.scope(() => bytesOf(after.select(0, b).select(0, t))),
        torch.scope(() => bytesOf((lg as Tensor).select(0, 0).select(0, offset + t))),
        `row ${b} position ${t}`,
      );
      checked++;
    }
    for (const x of full.values()) x.free();
  });
  assert.ok(checked >= padded.length * w - 3, `checked ${checked} positions`);

  // the harness: cached, batched, shared-prefix generation = each prompt alone without a cache
  const fewshot = "Q: Where is Paris? A: France\nQ: Where is Berlin? A: Germany\n";
  const prompts = [
    `${fewshot}Where is the Eiffel Tower? It is in`,
    `${fewshot}Danielle Darrieux speaks`,
    "The cat",
  ];
  const lm = new ModelLM(model, tok, { batchSize: 3, progress: false });
  const got = lm.generateUntil(prompts.map((context) => ({ context, until: ["\n"], max_gen_toks: 5 })));
  const want = prompts.map(
    (p) =>
      generate(model, [tok.encode(p, { addSpecialTokens: false })], {
        maxNewTokens: 5,
        useCache: false,
        eosTokenId: tok.eosTokenId,
        stopStrings: ["\n", tok.decode([tok.eosTokenId as number])],
        decode: (ids) => tok.decode(ids, { skipSpecialTokens: true }),
      })[0]?.text,
  );
  assert.deepEqual(got, want);

  // save, replay on a fresh model, undo
  ed.journal.save(join(tmp, "journal"));
  const fresh = loadModel(gpt2);
  const j = new EditJournal(fresh);
  j.replay(join(tmp, "journal"));
  const replayed = torch.scope(() =>
    bytesOf(fresh.forward({ inputIds: torch.tensor(padded, { dtype: "int64" }) }).logits),
  );
  assert.equal(replayed, bytesOf(after));
  j.free();
  fresh.free();
  ed.journal.undoAll();
  const undone = logits();
  assert.equal(bytesOf(undone), bytesOf(before));
  for (const t of [before, after, undone]) t.free();
  ed.free();
  plain.free();
  model.free();
});

/**
 * The resumable results folder of an edit evaluation:
 *   run.json                the run's settings (a rerun with other settings is refused)
 *   cases/case_{id}.json    one file per case, written atomically as soon as the case's numbers exist
 *                           (first with "pre" only, then whole, with "post")
 *   journal/                sequential mode: the edits, saved once all are applied, replayed on resume
 *   summary.json            written at the end, from the case files
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CaseRecord } from "./summary.js";
import { toJson } from "./summary.js";

/** JSON.parse with null read back as NaN inside number lists and number fields of metrics. */
function parseCase(text: string): CaseRecord {
  return JSON.parse(text, (_k, v) => (v === null ? NaN : v)) as CaseRecord;
}

export class CaseStore {
  readonly casesDir: string;
  readonly journalDir: string;

  constructor(readonly dir: string) {
    this.casesDir = join(dir, "cases");
    this.journalDir = join(dir, "journal");
    mkdirSync(this.casesDir, { recursive: true });
  }

  private file(caseId: number): string {
    return join(this.casesDir, `case_${caseId}.json`);
  }

  /** Checks the settings of an earlier run in this folder against these (or records them). */
  checkSettings(settings: Record<string, unknown>, overwrite = false): "new" | "resume" {
    const f = join(this.dir, "run.json");
    const want = toJson(settings);
    if (existsSync(f) && !overwrite) {
      const have = readFileSync(f, "utf8").trim();
      if (have !== want.trim()) {
        const a = JSON.parse(have) as Record<string, unknown>;
        const diff = Object.keys({ ...a, ...settings })
          .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(settings[k]))
          .map((k) => `${k}: ${JSON.stringify(a[k])} -> ${JSON.stringify(settings[k])}`);
        throw new Error(
          `${this.dir} holds a run with other settings (${diff.join("; ")}); use another --output_path, or --overwrite to start afresh`,
        );
      }
      return "resume";
    }
    if (overwrite) {
      rmSync(this.casesDir, { recursive: true, force: true });
      rmSync(this.journalDir, { recursive: true, force: true });
      rmSync(join(this.dir, "summary.json"), { force: true });
      mkdirSync(this.casesDir, { recursive: true });
    }
    this.writeAtomic(f, want + "\n");
    return "new";
  }

  get(caseId: number): CaseRecord | null {
    const f = this.file(caseId);
    if (!existsSync(f)) return null;
    try {
      return parseCase(readFileSync(f, "utf8"));
    } catch {
      return null; // a torn write cannot happen (atomic rename), but a hand-edited file may be broken
    }
  }

  isDone(caseId: number): boolean {
    return this.get(caseId)?.post !== undefined;
  }

  put(rec: CaseRecord): void {
    this.writeAtomic(this.file(rec.case_id), toJson(rec) + "\n");
  }

  /** Every finished case file, in dataset order. */
  all(): CaseRecord[] {
    if (!existsSync(this.casesDir)) return [];
    return readdirSync(this.casesDir)
      .filter((f) => /^case_-?\d+\.json$/.test(f))
      .map((f) => parseCase(readFileSync(join(this.casesDir, f), "utf8")))
      .filter((r) => r.post !== undefined)
      .sort((a, b) => a.index - b.index);
  }

  hasJournal(): boolean {
    return existsSync(join(this.journalDir, "complete"));
  }

  markJournalComplete(): void {
    writeFileSync(join(this.journalDir, "complete"), new Date().toISOString() + "\n");
  }

  writeAtomic(path: string, text: string): void {
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  }
}

/**
 * The results store of a run: one SQLite file (sql.js, SQLite compiled to WebAssembly, so nothing is
 * built at install time), written to disk atomically after every finished unit, so that a run killed
 * at any moment resumes from its last finished unit.
 *
 * Tables:
 * - `meta(key, value)`: the spec (JSON), its hash, creation time, code version, machine;
 * - `units(track, edits, ...)`: one row per finished unit (a track measured at a number of edits),
 *   with its timings and provenance (model hash after editing, hparams);
 * - `results(...)`: one row per number (track, edits, benchmark, metric, value, stderr, n, provenance);
 * - `pre_cases(model, data_hash, case_id, metrics)`: the unedited model's per-case edit metrics.
 */
import { existsSync, readFileSync, renameSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { createRequire } from "node:module";
import type { Database, SqlJsStatic } from "sql.js";
import type { ResultRow } from "../report/types.js";

const require = createRequire(import.meta.url);

let SQL: Promise<SqlJsStatic> | null = null;
function sqljs(): Promise<SqlJsStatic> {
  if (!SQL) {
    const init = require("sql.js") as (o?: object) => Promise<SqlJsStatic>;
    SQL = init();
  }
  return SQL;
}

export interface UnitRecord {
  track: string;
  model: string;
  method: string;
  schedule: string;
  seed: number;
  edits: number;
  /** seconds spent editing to reach this checkpoint from the previous one */
  editSeconds: number;
  /** seconds spent measuring */
  evalSeconds: number;
  modelHash: string;
  hparams: string;
  finishedAt: string;
}

export interface StoredRow extends ResultRow {
  track: string;
  modelHash: string;
  dataHash: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units (
  track TEXT NOT NULL, model TEXT NOT NULL, method TEXT NOT NULL, schedule TEXT NOT NULL,
  seed INTEGER NOT NULL, edits INTEGER NOT NULL, edit_seconds REAL NOT NULL, eval_seconds REAL NOT NULL,
  model_hash TEXT NOT NULL, hparams TEXT NOT NULL, finished_at TEXT NOT NULL,
  PRIMARY KEY (track, edits));
CREATE TABLE IF NOT EXISTS results (
  track TEXT NOT NULL, model TEXT NOT NULL, method TEXT NOT NULL, schedule TEXT NOT NULL,
  seed INTEGER NOT NULL, edits INTEGER NOT NULL, benchmark TEXT NOT NULL, metric TEXT NOT NULL,
  value REAL NOT NULL, stderr REAL, n INTEGER, model_hash TEXT NOT NULL, data_hash TEXT NOT NULL,
  PRIMARY KEY (track, edits, benchmark, metric));
CREATE TABLE IF NOT EXISTS pre_cases (
  model TEXT NOT NULL, data_hash TEXT NOT NULL, case_id INTEGER NOT NULL, metrics TEXT NOT NULL,
  PRIMARY KEY (model, data_hash, case_id));
`;

export class ResultsStore {
  private constructor(
    readonly path: string,
    private readonly db: Database,
  ) {}

  /** Opens (or creates) the store file. */
  static async open(path: string): Promise<ResultsStore> {
    const S = await sqljs();
    let db: Database;
    if (existsSync(path)) {
      try {
        db = new S.Database(readFileSync(path));
        db.exec("SELECT count(*) FROM sqlite_master");
      } catch (e) {
        throw new Error(`${path}: not a readable results store (${(e as Error).message})`);
      }
    } else db = new S.Database();
    db.exec(SCHEMA);
    return new ResultsStore(path, db);
  }

  getMeta(key: string): string | null {
    const r = this.db.exec("SELECT value FROM meta WHERE key = ?", [key]);
    return (r[0]?.values[0]?.[0] as string | undefined) ?? null;
  }

  setMeta(key: string, value: string): void {
    this.db.run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value]);
  }

  finishedEdits(track: string): Set<number> {
    const r = this.db.exec("SELECT edits FROM units WHERE track = ?", [track]);
    return new Set((r[0]?.values ?? []).map((v) => Number(v[0])));
  }

  units(): UnitRecord[] {
    const r = this.db.exec(
      "SELECT track, model, method, schedule, seed, edits, edit_seconds, eval_seconds, model_hash, hparams, finished_at FROM units ORDER BY rowid",
    );
    return (r[0]?.values ?? []).map((v) => ({
      track: String(v[0]),
      model: String(v[1]),
      method: String(v[2]),
      schedule: String(v[3]),
      seed: Number(v[4]),
      edits: Number(v[5]),
      editSeconds: Number(v[6]),
      evalSeconds: Number(v[7]),
      modelHash: String(v[8]),
      hparams: String(v[9]),
      finishedAt: String(v[10]),
    }));
  }

  /** Records a finished unit and its numbers in one transaction, then writes the file. */
  finishUnit(unit: UnitRecord, rows: StoredRow[]): void {
    this.db.exec("BEGIN");
    try {
      for (const r of rows)
        this.db.run("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
          r.track,
          r.model,
          r.method,
          r.schedule,
          r.seed ?? 0,
          r.edits,
          r.benchmark,
          r.metric,
          r.value,
          r.stderr ?? null,
          r.n ?? null,
          r.modelHash,
          r.dataHash,
        ]);
      this.db.run("INSERT OR REPLACE INTO units VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        unit.track,
        unit.model,
        unit.method,
        unit.schedule,
        unit.seed,
        unit.edits,
        unit.editSeconds,
        unit.evalSeconds,
        unit.modelHash,
        unit.hparams,
        unit.finishedAt,
      ]);
      this.db.exec("COMMIT");
    } catch (e) {
      this.db.exec("ROLLBACK");
      throw e;
    }
    this.flush();
  }

  rows(): StoredRow[] {
    const r = this.db.exec(
      "SELECT track, model, method, schedule, seed, edits, benchmark, metric, value, stderr, n, model_hash, data_hash FROM results ORDER BY rowid",
    );
    return (r[0]?.values ?? []).map((v) => {
      const row: StoredRow = {
        track: String(v[0]),
        model: String(v[1]),
        method: String(v[2]),
        schedule: String(v[3]),
        seed: Number(v[4]),
        edits: Number(v[5]),
        benchmark: String(v[6]),
        metric: String(v[7]),
        value: Number(v[8]),
        stderr: v[9] === null ? null : Number(v[9]),
        modelHash: String(v[11]),
        dataHash: String(v[12]),
      };
      if (v[10] !== null) row.n = Number(v[10]);
      return row;
    });
  }

  /** The rows as reports take them (ResultRow: without the track and the hashes). */
  resultRows(): ResultRow[] {
    return this.rows().map(({ track: _t, modelHash: _m, dataHash: _d, ...r }) => r);
  }

  getPre(model: string, dataHash: string, caseId: number): unknown {
    const r = this.db.exec(
      "SELECT metrics FROM pre_cases WHERE model = ? AND data_hash = ? AND case_id = ?",
      [model, dataHash, caseId],
    );
    const v = r[0]?.values[0]?.[0];
    return v === undefined ? undefined : JSON.parse(String(v));
  }

  putPre(model: string, dataHash: string, entries: [number, unknown][]): void {
    this.db.exec("BEGIN");
    for (const [id, m] of entries)
      this.db.run("INSERT OR REPLACE INTO pre_cases VALUES (?, ?, ?, ?)", [
        model,
        dataHash,
        id,
        JSON.stringify(m),
      ]);
    this.db.exec("COMMIT");
    this.flush();
  }

  /** Copies every unit, result and unedited-model record of another store into this one (no flush). */
  mergeFrom(other: ResultsStore): void {
    const o = other.db;
    this.db.exec("BEGIN");
    try {
      for (const [table, cols] of [
        ["units", 11],
        ["results", 13],
        ["pre_cases", 4],
      ] as const) {
        const r = o.exec(`SELECT * FROM ${table}`);
        const q = `INSERT OR REPLACE INTO ${table} VALUES (${new Array(cols).fill("?").join(", ")})`;
        for (const row of r[0]?.values ?? []) this.db.run(q, row);
      }
      this.db.exec("COMMIT");
    } catch (e) {
      this.db.exec("ROLLBACK");
      throw e;
    }
  }

  /** Writes the database to its file (temporary file, then rename: never a half-written store). */
  flush(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, this.db.export());
    renameSync(tmp, this.path);
  }

  close(): void {
    this.db.close();
  }
}

/**
 * A snapshot (or a point in time) made browsable page by page: one pass over its verified entries
 * writes every object's body to a local file (in compressed blocks) and one row per object
 * (resource, namespace, name, where its body lies) to an SQLite table on disk. A page is then one range read of that table's
 * primary key, an object one lookup and one read, whatever the snapshot's size: nothing per object
 * stays in memory (SQLite's page cache is bounded), and nothing is shown from an archive whose
 * verification did not finish (the table is opened only after the reader's last check passed).
 */
import { createHash } from "node:crypto";
import { mkdtemp, open, rm, type FileHandle } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { promisify } from "node:util";
import { deflateRaw, inflateRaw } from "node:zlib";
import type { ManifestResource, PlainManifest } from "../archive/manifest.ts";
import type { ArchiveEntry } from "../archive/reader.ts";
import { CrdBackupError } from "../errors.ts";

/** Rows inserted per transaction: one transaction per row costs a sync each; one for all holds a journal as large. */
const ROWS_PER_TRANSACTION = 5000;
/** SQLite's page cache: a page is a few rows, so this bounds the index's memory, not the snapshot. */
const CACHE_KIB = 4096;
/**
 * Bodies are stored in deflate blocks of at least this many bytes of whole bodies: the scratch
 * copy then takes about the archive's size on disk instead of all its JSON (object JSON
 * compresses several times over), and reading one object inflates one block (~0.2 ms).
 */
const BLOCK_BYTES = 64 * 1024;
/** Level 1: the index is built while someone waits for the first page. */
const DEFLATE = { level: 1 };

const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);

/** What one stored object row says; the body is read on demand. */
export interface ObjectRow {
  name: string;
  size: number;
  sha256: string;
  uid: string | undefined;
  kind: string;
  version: string;
}

export interface Page<T> {
  items: T[];
  /** The key to pass as `after` for the next page; undefined on the last page. */
  next: string | undefined;
}

/** Where an object lies: `namespace` is "" for a cluster-scoped one. */
export interface ObjectKey {
  group: string;
  plural: string;
  namespace: string;
  name: string;
}

/** An object's place in the index: `plural.group`, namespace ("" when cluster-scoped), name. */
export interface ChangeKey {
  res: string;
  ns: string;
  name: string;
}

export interface Change extends ChangeKey {
  change: "added" | "removed" | "changed";
}

/** One object's row, bar where its block lies (known when the block is written). */
type PendingRow = [
  res: string,
  ns: string,
  name: string,
  inOff: number,
  size: number,
  sha: string,
  uid: string | null,
  kind: string,
  version: string,
];

/** Gathers bodies into blocks, writes each compressed block, then inserts the rows of its bodies. */
class BlockWriter {
  #offset = 0;
  #bodies: Buffer[] = [];
  #bytes = 0;
  #rows: PendingRow[] = [];
  readonly #file: FileHandle;
  readonly #insert: (row: PendingRow, blockOff: number, blockLen: number) => void;

  constructor(file: FileHandle, insert: (row: PendingRow, blockOff: number, blockLen: number) => void) {
    this.#file = file;
    this.#insert = insert;
  }

  /** Adds a body; its row's in-block offset (row[3]) is set here. */
  async add(body: Buffer, row: PendingRow): Promise<void> {
    row[3] = this.#bytes;
    this.#rows.push(row);
    this.#bodies.push(body);
    this.#bytes += body.length;
    if (this.#bytes >= BLOCK_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#rows.length === 0) return;
    const block = await deflate(Buffer.concat(this.#bodies, this.#bytes), DEFLATE);
    await this.#file.write(block, 0, block.length, this.#offset);
    for (const row of this.#rows) this.#insert(row, this.#offset, block.length);
    this.#offset += block.length;
    this.#bodies = [];
    this.#bytes = 0;
    this.#rows = [];
  }
}

export class BrowseIndex {
  readonly manifest: PlainManifest;
  readonly #dir: string;
  readonly #db: DatabaseSync;
  readonly #bodies: FileHandle;
  readonly #namespaces: StatementSync;
  readonly #objects: StatementSync;
  readonly #object: StatementSync;
  #closed = false;

  private constructor(manifest: PlainManifest, dir: string, db: DatabaseSync, bodies: FileHandle) {
    this.manifest = manifest;
    this.#dir = dir;
    this.#db = db;
    this.#bodies = bodies;
    // every query walks the primary key (res, ns, name) in order: ranges, never scans
    this.#namespaces = db.prepare(
      "SELECT ns, count(*) AS n FROM objects WHERE res = ? AND ns > ? GROUP BY ns ORDER BY ns LIMIT ?",
    );
    this.#objects = db.prepare(
      "SELECT name, size, sha, uid, kind, version FROM objects WHERE res = ? AND ns = ? AND name > ? ORDER BY name LIMIT ?",
    );
    this.#object = db.prepare(
      "SELECT name, size, sha, uid, kind, version, off, blen, ioff FROM objects WHERE res = ? AND ns = ? AND name = ?",
    );
  }

  /**
   * Reads `entries` (a verifying reader: it throws on anything wrong, at the latest when it ends)
   * into a new index under `parent`. On any failure nothing is left behind.
   */
  static async build(
    manifest: PlainManifest,
    entries: AsyncIterable<ArchiveEntry>,
    parent: string,
  ): Promise<BrowseIndex> {
    const dir = await mkdtemp(path.join(parent, "snapshot-"));
    let db: DatabaseSync | undefined;
    let bodies: FileHandle | undefined;
    try {
      db = new DatabaseSync(path.join(dir, "index.sqlite"));
      // a scratch copy rebuilt from the archive on demand: durability buys nothing here
      db.exec(`PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -${CACHE_KIB};`);
      db.exec(`CREATE TABLE objects (
        res TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,
        ioff INTEGER NOT NULL, size INTEGER NOT NULL, sha TEXT NOT NULL, uid TEXT,
        kind TEXT NOT NULL, version TEXT NOT NULL, off INTEGER NOT NULL, blen INTEGER NOT NULL,
        PRIMARY KEY (res, ns, name)) WITHOUT ROWID`);
      const insert = db.prepare("INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      bodies = await open(path.join(dir, "bodies"), "w+", 0o600);
      let rows = 0;
      const writer = new BlockWriter(bodies, (row, off, blen) => {
        insert.run(...row, off, blen);
        if (++rows % ROWS_PER_TRANSACTION === 0) db!.exec("COMMIT; BEGIN");
      });
      db.exec("BEGIN");
      for await (const e of entries) {
        if (e.kind !== "object") continue;
        const r = e.ref;
        await writer.add(e.body, [
          resourceKey(r.group, r.plural),
          r.namespace ?? "",
          r.name,
          0,
          e.size,
          e.sha256,
          e.record.uid ?? null,
          e.record.resourceKind ?? "",
          r.version,
        ]);
      }
      await writer.flush();
      db.exec("COMMIT");
      return new BrowseIndex(manifest, dir, db, bodies);
    } catch (e) {
      db?.close();
      await bodies?.close();
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** The manifest's resources, by group then plural. */
  resources(): ManifestResource[] {
    return [...this.manifest.resources].sort((a, b) =>
      a.group === b.group ? cmp(a.plural, b.plural) : cmp(a.group, b.group),
    );
  }

  resource(group: string, plural: string): ManifestResource | undefined {
    return this.manifest.resources.find((r) => r.group === group && r.plural === plural);
  }

  /** Namespaces holding objects of a resource, with their counts, after `after`, `limit` at most. */
  namespaces(
    group: string,
    plural: string,
    after: string,
    limit: number,
  ): Page<{ namespace: string; count: number }> {
    const rows = this.#namespaces.all(resourceKey(group, plural), after, limit + 1) as {
      ns: string;
      n: number;
    }[];
    const items = rows.slice(0, limit).map((r) => ({ namespace: r.ns, count: r.n }));
    return { items, next: rows.length > limit ? items.at(-1)!.namespace : undefined };
  }

  /** Objects of a resource in one namespace ("" for cluster-scoped), by name, after `after`. */
  objects(group: string, plural: string, namespace: string, after: string, limit: number): Page<ObjectRow> {
    const rows = this.#objects.all(
      resourceKey(group, plural),
      namespace,
      after,
      limit + 1,
    ) as unknown as RawRow[];
    const items = rows.slice(0, limit).map(toRow);
    return { items, next: rows.length > limit ? items.at(-1)!.name : undefined };
  }

  /** One object's row and body, or undefined when the snapshot does not hold it. */
  async object(key: ObjectKey): Promise<(ObjectRow & { body: Buffer }) | undefined> {
    const row = this.#object.get(resourceKey(key.group, key.plural), key.namespace, key.name) as
      (RawRow & { off: number; blen: number; ioff: number }) | undefined;
    if (!row) return undefined;
    const block = Buffer.allocUnsafe(row.blen);
    const { bytesRead } = await this.#bodies.read(block, 0, row.blen, row.off);
    const inflated = bytesRead === row.blen ? await inflate(block).catch(() => undefined) : undefined;
    const body = inflated?.subarray(row.ioff, row.ioff + row.size);
    // the archive was verified when the copy was made; the copy is checked as it is read back
    if (!body || createHash("sha256").update(body).digest("hex") !== row.sha) {
      throw new CrdBackupError("STORAGE", `the local browse copy of ${key.name} is damaged`, {
        name: key.name,
      });
    }
    return { ...toRow(row), body };
  }

  /**
   * What differs from this state to `newer`, by resource, namespace and name, after `after`:
   * objects only here (removed), only there (added), or with other bytes (changed). One query
   * over both tables (the other attached for its duration), so memory holds one page.
   */
  changesTo(
    newer: BrowseIndex,
    after: ChangeKey | undefined,
    limit: number,
  ): { items: Change[]; next: ChangeKey | undefined } {
    this.#db.exec(`ATTACH DATABASE '${newer.#file().replaceAll("'", "''")}' AS newer`);
    try {
      const rows = this.#db
        .prepare(
          `SELECT res, ns, name, change FROM (
             SELECT a.res, a.ns, a.name, CASE WHEN b.sha IS NULL THEN 'removed' ELSE 'changed' END AS change
             FROM main.objects a LEFT JOIN newer.objects b ON b.res = a.res AND b.ns = a.ns AND b.name = a.name
             WHERE b.sha IS NULL OR b.sha != a.sha
             UNION ALL
             SELECT b.res, b.ns, b.name, 'added' FROM newer.objects b
             WHERE NOT EXISTS (SELECT 1 FROM main.objects a WHERE a.res = b.res AND a.ns = b.ns AND a.name = b.name))
           WHERE (res, ns, name) > (?, ?, ?) ORDER BY res, ns, name LIMIT ?`,
        )
        .all(after?.res ?? "", after?.ns ?? "", after?.name ?? "", limit + 1) as unknown as (ChangeKey & {
        change: Change["change"];
      })[];
      const items = rows
        .slice(0, limit)
        .map((r) => ({ res: r.res, ns: r.ns, name: r.name, change: r.change }));
      const last = items.at(-1);
      return {
        items,
        next: rows.length > limit && last ? { res: last.res, ns: last.ns, name: last.name } : undefined,
      };
    } finally {
      this.#db.exec("DETACH DATABASE newer");
    }
  }

  #file(): string {
    return path.join(this.#dir, "index.sqlite");
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
    await this.#bodies.close();
    await rm(this.#dir, { recursive: true, force: true });
  }
}

interface RawRow {
  name: string;
  size: number;
  sha: string;
  uid: string | null;
  kind: string;
  version: string;
}

function toRow(r: RawRow): ObjectRow {
  return {
    name: r.name,
    size: r.size,
    sha256: r.sha,
    uid: r.uid ?? undefined,
    kind: r.kind,
    version: r.version,
  };
}

/** `plural.group`, as the filters and the restore command name a resource. */
export function resourceKey(group: string, plural: string): string {
  return `${plural}.${group}`;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A scratch folder for indexes; the caller removes it. */
export function scratchDir(parent = os.tmpdir()): Promise<string> {
  return mkdtemp(path.join(parent, "crd-backup-ui-"));
}

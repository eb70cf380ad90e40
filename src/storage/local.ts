import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { CrdBackupError } from "../errors.ts";
import type { StorageBackend } from "./backend.ts";

const TMP_MARK = ".tmp-";

/**
 * A directory on a local or mounted file system. Writes go to a temp file beside the target,
 * are fsynced, then renamed (or hard-linked, for create-only), so a key is never half visible.
 */
export class LocalBackend implements StorageBackend {
  readonly location: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.location = `file://${this.root}`;
  }

  private file(key: string): string {
    const file = path.resolve(this.root, key);
    if (!file.startsWith(this.root + path.sep)) {
      throw new CrdBackupError("STORAGE", `storage key escapes ${this.location}: ${key}`, { key });
    }
    return file;
  }

  private async writeTemp(
    key: string,
    body: Readable | Buffer,
    signal?: AbortSignal,
  ): Promise<{ tmp: string; size: number }> {
    const target = this.file(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}${TMP_MARK}${randomBytes(6).toString("hex")}`;
    try {
      const out = createWriteStream(tmp, { flags: "wx" });
      if (Buffer.isBuffer(body)) {
        await pipeline(
          async function* () {
            yield body;
          },
          out,
          { signal },
        );
      } else {
        await pipeline(body, out, { signal });
      }
      const handle = await fs.open(tmp, "r");
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      return { tmp, size: (await fs.stat(tmp)).size };
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw this.wrap(e, "write", key);
    }
  }

  async write(
    key: string,
    body: Readable,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ size: number }> {
    const { tmp, size } = await this.writeTemp(key, body, options.signal);
    await fs.rename(tmp, this.file(key));
    return { size };
  }

  async createExclusive(key: string, data: Buffer, options: { signal?: AbortSignal } = {}): Promise<void> {
    const { tmp } = await this.writeTemp(key, data, options.signal);
    try {
      await fs.link(tmp, this.file(key)); // link() refuses an existing name: an atomic create-only
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") {
        throw new CrdBackupError("ALREADY_EXISTS", `${this.location}/${key} already exists`, { key });
      }
      throw this.wrap(e, "write", key);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  async read(key: string): Promise<Readable> {
    const file = this.file(key);
    try {
      await fs.access(file);
    } catch (e) {
      throw this.wrap(e, "read", key);
    }
    return createReadStream(file);
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    try {
      return { size: (await fs.stat(this.file(key))).size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw this.wrap(e, "stat", key);
    }
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    const keys: { key: string; size: number }[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
        throw this.wrap(e, "list", prefix);
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile() && !entry.name.includes(TMP_MARK)) {
          const key = path.relative(this.root, full).split(path.sep).join("/");
          if (key.startsWith(prefix)) keys.push({ key, size: (await fs.stat(full)).size });
        }
      }
    };
    // start at the deepest folder the prefix names, not at the root
    const base = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    await walk(base ? this.file(base) : this.root);
    keys.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* keys;
  }

  async remove(key: string): Promise<void> {
    const file = this.file(key);
    await fs.rm(file, { force: true });
    // drop directories the removal emptied, so a pruned snapshot leaves no trace
    for (
      let dir = path.dirname(file);
      dir !== this.root && dir.startsWith(this.root);
      dir = path.dirname(dir)
    ) {
      try {
        await fs.rmdir(dir);
      } catch {
        break;
      }
    }
  }

  async cleanupIncomplete(prefix: string, options: { olderThan?: Date } = {}): Promise<number> {
    let removed = 0;
    const walk = async (dir: string): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.name.includes(TMP_MARK) && path.relative(this.root, full).startsWith(prefix)) {
          if (options.olderThan) {
            const stat = await fs.stat(full).catch(() => undefined);
            if (!stat || stat.mtime >= options.olderThan) continue;
          }
          await fs.rm(full, { force: true });
          removed++;
        }
      }
    };
    await walk(this.root);
    return removed;
  }

  private wrap(e: unknown, op: string, key: string): CrdBackupError {
    if (e instanceof CrdBackupError) return e;
    const err = e as NodeJS.ErrnoException;
    if (err.name === "AbortError")
      return new CrdBackupError("ABORTED", `${op} ${this.location}/${key}: cancelled`, { key });
    if (err.code === "ENOENT")
      return new CrdBackupError("NOT_FOUND", `${this.location}/${key} does not exist`, { key });
    return new CrdBackupError(
      "STORAGE",
      `${op} ${this.location}/${key}: ${err.message}`,
      { key, op },
      { cause: e },
    );
  }
}

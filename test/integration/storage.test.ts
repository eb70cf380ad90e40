import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import { CrdBackupError } from "../../src/errors.ts";
import { readAll, type StorageBackend } from "../../src/storage/backend.ts";
import { BACKENDS } from "../support/storage.ts";

function chunks(
  total: number,
  failAfter?: number,
  onChunk?: (sent: number) => void,
): { stream: Readable; sha256: () => string } {
  const hash = createHash("sha256");
  let sent = 0;
  const stream = Readable.from(
    (function* () {
      while (sent < total) {
        if (failAfter !== undefined && sent >= failAfter) throw new Error("source failed mid-stream");
        onChunk?.(sent);
        const c = randomBytes(Math.min(256 * 1024, total - sent));
        sent += c.length;
        hash.update(c);
        yield c;
      }
    })(),
  );
  return { stream, sha256: () => hash.digest("hex") };
}

async function keys(b: StorageBackend, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const o of b.list(prefix)) out.push(o.key);
  return out;
}

describe.each(BACKENDS)("storage backend: %s", (_name, make) => {
  let b: StorageBackend;
  beforeAll(() => {
    b = make();
  });

  it("streams a 12 MiB value of unknown length and reads it back byte-identical", async () => {
    const src = chunks(12 * 1024 * 1024);
    const { size } = await b.write("snapshots/a/archive.tar.gz", src.stream);
    expect(size).toBe(12 * 1024 * 1024);
    const back = await readAll(await b.read("snapshots/a/archive.tar.gz"));
    expect(createHash("sha256").update(back).digest("hex")).toBe(src.sha256());
    expect(await b.stat("snapshots/a/archive.tar.gz")).toEqual({ size: 12 * 1024 * 1024 });
  });

  it("creates a key only once: a second create-only write is refused and the first value stays", async () => {
    await b.createExclusive("snapshots/a/manifest.json", Buffer.from('{"n":1}'));
    const err = await b.createExclusive("snapshots/a/manifest.json", Buffer.from('{"n":2}')).catch((e) => e);
    expect(err).toBeInstanceOf(CrdBackupError);
    expect((err as CrdBackupError).code).toBe("ALREADY_EXISTS");
    expect((await readAll(await b.read("snapshots/a/manifest.json"))).toString()).toBe('{"n":1}');
  });

  it("leaves nothing visible, and no multipart upload, when the source fails mid-write", async () => {
    const src = chunks(20 * 1024 * 1024, 11 * 1024 * 1024);
    await expect(b.write("snapshots/b/archive.tar.gz", src.stream)).rejects.toThrow();
    expect(await b.stat("snapshots/b/archive.tar.gz")).toBeUndefined();
    expect(await keys(b, "snapshots/b/")).toEqual([]);
    expect(await b.cleanupIncomplete("snapshots/b/")).toBe(0); // nothing left over to clean
  });

  it("leaves nothing visible when the write is aborted", async () => {
    const ac = new AbortController();
    // aborted from inside the write, once 4 MiB went out: a timer could fire after a fast write ended
    const src = chunks(30 * 1024 * 1024, undefined, (sent) => {
      if (sent >= 4 * 1024 * 1024) ac.abort();
    });
    await expect(b.write("snapshots/c/archive.tar.gz", src.stream, { signal: ac.signal })).rejects.toThrow();
    expect(await b.stat("snapshots/c/archive.tar.gz")).toBeUndefined();
    expect(await b.cleanupIncomplete("snapshots/")).toBeGreaterThanOrEqual(0);
    expect(await keys(b, "snapshots/c/")).toEqual([]);
  });

  it("lists keys under a prefix in order, reports absent keys, and removes", async () => {
    await b.createExclusive("snapshots/z/manifest.json", Buffer.from("{}"));
    expect(await keys(b, "snapshots/")).toEqual([
      "snapshots/a/archive.tar.gz",
      "snapshots/a/manifest.json",
      "snapshots/z/manifest.json",
    ]);
    const missing = await b.read("snapshots/nope/manifest.json").catch((e) => e);
    expect((missing as CrdBackupError).code).toBe("NOT_FOUND");
    await b.remove("snapshots/z/manifest.json");
    await b.remove("snapshots/z/manifest.json"); // absent: not an error
    expect(await keys(b, "snapshots/z/")).toEqual([]);
  });
});

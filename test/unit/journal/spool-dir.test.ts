/**
 * Issue 21: the recorder's spool is uploaded on start, so the default one (in the shared
 * temporary directory, under a predictable name) must be this user's alone, and a spool never
 * hands over what a symbolic link points to.
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { CLI_MAIN, cliNodeFlags } from "../../../cli/node-flags.ts";
import { CrdBackupError } from "../../../src/errors.ts";
import { defaultSpoolDir, ensurePrivateDir } from "../../../src/journal/record/spool-dir.ts";
import { Uploader } from "../../../src/journal/record/uploader.ts";
import { segmentKey } from "../../../src/journal/segment-key.ts";
import { JournalStats } from "../../../src/report/journal-metrics.ts";
import { silentLogger } from "../../../src/report/log.ts";
import type { StorageBackend } from "../../../src/storage/backend.ts";
import { LocalBackend } from "../../../src/storage/local.ts";

const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), p));
const isRoot = process.getuid?.() === 0;

async function refusal(dir: string): Promise<CrdBackupError> {
  const e = await ensurePrivateDir(dir).then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e, `${dir} should be refused`).toBeInstanceOf(CrdBackupError);
  const err = e as CrdBackupError;
  expect(err.code).toBe("CONFIG");
  expect(err.message).not.toMatch(/\n/);
  return err;
}

describe("the recorder's default spool directory", () => {
  it("is per user, in the temporary directory", () => {
    expect(defaultSpoolDir()).toBe(path.join(os.tmpdir(), `crd-backup-spool-${process.getuid!()}`));
  });

  it("is created with mode 0700 when absent (whatever the umask), and accepted as it is then", async () => {
    const dir = path.join(tmp("crd-backup-spool-test-"), "spool");
    const umask = process.umask(0);
    try {
      await expect(ensurePrivateDir(dir)).resolves.toBe(dir);
    } finally {
      process.umask(umask);
    }
    const info = lstatSync(dir);
    expect(info.isDirectory()).toBe(true);
    expect(info.mode & 0o777).toBe(0o700);
    expect(info.uid).toBe(process.getuid!());
    await expect(ensurePrivateDir(dir)).resolves.toBe(dir);
  });

  it("is refused when open to its group or to others", async () => {
    for (const mode of [0o755, 0o770, 0o701, 0o1777]) {
      const dir = path.join(tmp("crd-backup-spool-test-"), "spool");
      mkdirSync(dir);
      chmodSync(dir, mode);
      const err = await refusal(dir);
      expect(err.message).toBe(
        `spool directory ${dir} is open to its group or to others (mode 0${(mode & 0o777).toString(8)}); segments found in a spool are uploaded to the journal, so it must be a directory of this user's alone (mode 0700), or give --spool-dir`,
      );
    }
  });

  it("is refused when it is a symbolic link, even to a private directory of this user", async () => {
    const base = tmp("crd-backup-spool-test-");
    const target = path.join(base, "elsewhere");
    mkdirSync(target, { mode: 0o700 });
    const dir = path.join(base, "spool");
    symlinkSync(target, dir);
    expect((await refusal(dir)).message).toMatch(/^spool directory \S+ is a symbolic link; /);
    // a dangling link too: never created through
    const dangling = path.join(base, "dangling");
    symlinkSync(path.join(base, "nowhere"), dangling);
    expect((await refusal(dangling)).message).toMatch(/is a symbolic link/);
    expect(readdirSync(base).sort()).toEqual(["dangling", "elsewhere", "spool"]);
  });

  it("is refused when it is not a directory", async () => {
    const dir = path.join(tmp("crd-backup-spool-test-"), "spool");
    writeFileSync(dir, "");
    expect((await refusal(dir)).message).toMatch(/is not a directory/);
  });

  it.runIf(isRoot)(
    "is refused when another user owns it (chown for real: these tests run as root)",
    async () => {
      const dir = path.join(tmp("crd-backup-spool-test-"), "spool");
      mkdirSync(dir, { mode: 0o700 });
      chownSync(dir, 4242, 4242);
      expect((await refusal(dir)).message).toMatch(/is owned by uid 4242, not by this user \(uid 0\)/);
    },
  );

  it("the CLI refuses a bad default spool with one line and exit 1, before reaching the cluster or storage", () => {
    const tmpdir = tmp("crd-backup-tmpdir-");
    const spool = path.join(tmpdir, `crd-backup-spool-${process.getuid!()}`);
    mkdirSync(spool);
    chmodSync(spool, 0o777);
    const res = spawnSync(
      process.execPath,
      [...cliNodeFlags(), CLI_MAIN, "record", "--storage", path.join(tmpdir, "storage")],
      {
        env: {
          PATH: process.env["PATH"] ?? "",
          HOME: tmpdir,
          TMPDIR: tmpdir,
          KUBECONFIG: path.join(tmpdir, "none"),
        },
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    expect(res.status, res.stderr).toBe(1);
    const lines = res.stderr.trim().split("\n");
    expect(lines, res.stderr).toHaveLength(1);
    expect(lines[0]).toBe(
      `crd-backup: spool directory ${spool} is open to its group or to others (mode 0777); segments found in a spool are uploaded to the journal, so it must be a directory of this user's alone (mode 0700), or give --spool-dir`,
    );
    expect(readdirSync(tmpdir)).not.toContain("storage"); // refused before storage was opened
  }, 60_000);
});

describe("what an uploader takes over from its spool", () => {
  const key = segmentKey({
    cluster: "c-1",
    base: "20261203T050000Z-00000001",
    seq: 1,
    from: new Date("2026-12-03T05:00:00.000Z"),
    to: new Date("2026-12-03T05:00:05.000Z"),
    sha256: "a".repeat(64),
    gap: false,
  });

  it("never a symbolic link: what it points to is not uploaded", async () => {
    const dir = tmp("spool-");
    const secret = path.join(tmp("secret-"), "secret.txt");
    writeFileSync(secret, "not a segment: a file of someone else's");
    symlinkSync(secret, path.join(dir, encodeURIComponent(key)));
    const storage = new LocalBackend(tmp("crd-backup-journal-"));
    const uploader = new Uploader(storage, {
      dir,
      limit: 1 << 20,
      stats: new JournalStats(),
      log: silentLogger,
    });
    await uploader.init();
    expect(uploader.pending).toBe(0);
    await uploader.whenDrained();
    await expect(storage.stat(key)).resolves.toBeUndefined();
  });

  it("a regular file, as a killed recorder left it, is uploaded; spool files are written with mode 0600", async () => {
    const dir = path.join(tmp("spool-"), "new");
    const root = tmp("crd-backup-journal-");
    const local = new LocalBackend(root);
    const down = { on: true };
    const storage: StorageBackend = {
      location: local.location,
      write: (k, b, o) => local.write(k, b, o),
      createExclusive: async (k, d, o) => {
        if (down.on) throw new CrdBackupError("STORAGE", "connection refused");
        return local.createExclusive(k, d, o);
      },
      read: (k) => local.read(k),
      stat: (k) => local.stat(k),
      list: (p) => local.list(p),
      remove: (k) => local.remove(k),
      cleanupIncomplete: (p, o) => local.cleanupIncomplete(p, o),
    };
    const stats = new JournalStats();
    const uploader = new Uploader(storage, { dir, limit: 1 << 20, stats, log: silentLogger });
    await uploader.init();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const segment = { key, bytes: Buffer.from("segment bytes") } as Parameters<Uploader["submit"]>[0];
    expect(uploader.submit(segment, [])).toBe(true);
    await sleep(300); // the failed upload spools it
    expect(await uploader.drain(0)).toBe(1);
    const files = readdirSync(dir);
    expect(files).toEqual([encodeURIComponent(key)]);
    expect(statSync(path.join(dir, files[0]!)).mode & 0o777).toBe(0o600);
    down.on = false;
    const next = new Uploader(storage, { dir, limit: 1 << 20, stats: new JournalStats(), log: silentLogger });
    await next.init();
    await next.whenDrained();
    await expect(local.stat(key)).resolves.toEqual({ size: 13 });
  });
});

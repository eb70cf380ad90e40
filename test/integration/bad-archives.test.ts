/**
 * Bad archives through the real CLI: each is refused with one line, a non-zero exit, and not a
 * single write reaches the API server (every request restore makes goes through a recording
 * proxy). Archives are forged the careful way: the manifest is recomputed to match the tampered
 * archive, so each case is caught by the check meant for it, not by the archive's digest. Every
 * case runs against format version 3 (what snapshot writes) and version 1 (the same snapshot
 * re-packed as crd-backup 0.2 wrote it, which stays readable).
 */
import { createHash } from "node:crypto";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import {
  expectedArchive,
  parseManifest,
  plainManifest,
  serializeManifest,
  type Manifest,
} from "../../src/archive/manifest.ts";
import { verifyArchive } from "../../src/archive/reader.ts";
import { isCrdBackupError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { archiveKey, manifestKey } from "../../src/storage/layout.ts";
import { kubeconfigThrough, kubeProxy, type FaultProxy } from "../env/fault-proxy.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { pack, paxBomb, reindex, unpack, type RawEntry } from "../unit/archive/helpers.ts";

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** A version-3 archive and its manifest as version 1 writes them: index.jsonl, a hash on every entry, gzip. */
async function asVersion1(
  manifest: Manifest,
  archive: Buffer,
): Promise<{ manifest: Manifest; archive: Buffer }> {
  const entries = await unpack(archive);
  const header = entries[0]!;
  header.body = Buffer.from(header.body.toString().replace('"formatVersion":3', '"formatVersion":1'));
  entries.at(-1)!.name = "index.jsonl";
  reindex(entries);
  for (const e of entries) e.pax = { ...e.pax, "CRDBACKUP.sha256": sha256(e.body) };
  const v1 = await pack(entries, 1);
  const index = entries.at(-1)!.body;
  return {
    manifest: {
      ...manifest,
      formatVersion: 1,
      archive: { ...manifest.archive, key: "archive.tar.gz", size: v1.length, sha256: sha256(v1) },
      index: { ...manifest.index, sha256: sha256(index) },
    },
    archive: v1,
  };
}

/** index.sha256 for the content entries of a version-3 archive. */
const sums = (entries: RawEntry[]) =>
  Buffer.from(entries.map((e) => `${sha256(e.body)}  ${e.name}\n`).join(""));

describe.each([3, 1] as const)(
  "bad archives, format version %i: one line, non-zero exit, zero writes",
  (version) => {
    let admin: KubeClient;
    let fx: LoadedFixtures;
    let proxy: FaultProxy;
    let kubeconfig: string;
    const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-bad-"));
    let good: { manifest: Manifest; archive: Buffer };

    beforeAll(async () => {
      admin = await adminClient();
      fx = await loadFixtures(admin, {
        group: `${uniqueName("bad")}.fixtures.crd-backup.io`,
        namespaces: [uniqueName("bad")],
        widgetsPerNamespace: 3,
      });
      const res = await runCli(["snapshot", "--storage", dir, "--include-groups", fx.group, "-o", "json"]);
      expect(res.code, res.stderr).toBe(0);
      const id = (JSON.parse(res.stdout) as { id: string }).id;
      good = {
        manifest: plainManifest(parseManifest(readFileSync(path.join(dir, manifestKey(id)), "utf8"))),
        archive: readFileSync(path.join(dir, archiveKey(id))),
      };
      expect(good.manifest.formatVersion).toBe(3);
      if (version === 1) good = await asVersion1(good.manifest, good.archive);
      proxy = await kubeProxy(testEnv());
      kubeconfig = kubeconfigThrough(proxy, testEnv());
    });
    afterAll(async () => {
      await proxy?.close();
      admin.close();
    });

    /**
     * Stores `archive` in a storage of its own, under the real snapshot's id (the archive's header
     * names it), with a manifest recomputed to agree with it unless `keepDigest`.
     */
    function store(archive: Buffer, change: (m: Manifest) => void = () => {}, keepDigest = false): string {
      const where = mkdtempSync(path.join(dir, "case-"));
      const id = good.manifest.snapshotId;
      const m: Manifest = structuredClone(good.manifest);
      if (!keepDigest) m.archive = { ...m.archive, size: archive.length, sha256: sha256(archive) };
      change(m);
      mkdirSync(path.join(where, "snapshots", id), { recursive: true });
      writeFileSync(path.join(where, archiveKey(id, version)), archive);
      writeFileSync(path.join(where, manifestKey(id)), serializeManifest(m));
      return where;
    }

    /**
     * The good archive's entries re-packed after `change`, as a careful forger would: the index and
     * the manifest are redone to match (a change that breaks a per-entry sha256 has to do so itself).
     */
    async function forged(change: (entries: RawEntry[]) => void): Promise<string> {
      const entries = await unpack(good.archive);
      // the index first: a forger can only describe well-formed entries in it
      if (version === 1) {
        reindex(entries);
        for (const e of entries) e.pax = { ...e.pax, "CRDBACKUP.sha256": sha256(e.body) };
      } else entries.at(-1)!.body = sums(entries.slice(1, -1));
      change(entries);
      const archive = await pack(entries, version);
      return store(archive, (m) => (m.index = { ...m.index, sha256: sha256(entries.at(-1)!.body) }));
    }

    /** Version 1's per-entry hash record for a changed body; version 3 has none. */
    const rehash = (e: RawEntry) => {
      if (version === 1) e.pax = { ...e.pax, "CRDBACKUP.sha256": sha256(e.body) };
    };

    /** A widget: it has the fields the cases below change. */
    const objectEntry = (entries: RawEntry[]) => entries.find((e) => e.name.includes("/widgets/"))!;

    const cases: [string, () => Promise<string>, RegExp][] = [
      [
        "corrupt compressed data",
        async () => {
          const bytes = Buffer.from(good.archive);
          const mid = Math.floor(bytes.length / 2);
          for (let i = 40; i < 60; i++) bytes[mid + i] = bytes[mid + i]! ^ 0x5a;
          return store(bytes);
        },
        // damaged data may still decompress, to wrong bytes: then an entry's SHA-256 (version 1) or
        // the index (3) catches it before the stream's own checksum at its end would
        /gzip|zstd|deflate|invalid|checksum|header|does not match/i,
      ],
      [
        "a truncated archive",
        async () => store(good.archive.subarray(0, Math.floor(good.archive.length * 0.6))),
        /truncated|end|unexpected/i,
      ],
      [
        "an entry whose name climbs out (../)",
        () => forged((e) => e.splice(2, 0, { name: "../../etc/cron.d/evil", body: Buffer.from("{}") })),
        /"\.\.\/\.\.\/etc\/cron\.d\/evil" is not allowed/,
      ],
      [
        "an absolute entry name",
        () => forged((e) => e.splice(2, 0, { name: "/etc/passwd", body: Buffer.from("{}") })),
        /"\/etc\/passwd" is not allowed: the name is an absolute path/,
      ],
      [
        "an unknown formatVersion in the manifest",
        async () => {
          const where = store(good.archive, () => {}, true);
          const file = path.join(where, manifestKey(good.manifest.snapshotId));
          writeFileSync(
            file,
            readFileSync(file, "utf8").replace(`"formatVersion": ${version}`, '"formatVersion": 99'),
          );
          return where;
        },
        /format version 99/i,
      ],
      [
        "an unknown formatVersion in the archive",
        () =>
          forged((e) => {
            e[0]!.body = Buffer.from(
              e[0]!.body.toString().replace(`"formatVersion":${version}`, '"formatVersion":7'),
            );
            rehash(e[0]!);
          }),
        /format version 7/i,
      ],
      [
        "a checksum mismatch (archive changed, manifest not)",
        async () => {
          const entries = await unpack(good.archive);
          const obj = objectEntry(entries);
          const body = obj.body.toString();
          obj.body = Buffer.from(body.replace('"spec":{', '"spec":{"tampered":true,'));
          expect(obj.body.toString()).not.toBe(body);
          return store(await pack(entries, version), () => {}, true);
        },
        /sha256|size|differs|mismatch/i,
      ],
      [
        "a body that no longer matches its sha256 (version 1: its pax record; 3: index.sha256)",
        () =>
          forged((entries) => {
            const obj = objectEntry(entries);
            obj.body = Buffer.from(obj.body.toString().replace('"app":"demo"', '"app":"evil"'));
          }),
        /sha256/i,
      ],
      [
        "invalid JSON in an object (every checksum recomputed)",
        () =>
          forged((entries) => {
            const obj = objectEntry(entries);
            obj.body = Buffer.from(obj.body.toString().slice(0, -5));
            rehash(obj);
          }),
        /JSON|not an object|invalid/i,
      ],
      [
        "a valid compressed tar that is not a crd-backup archive",
        async () => store(await pack([{ name: "README.md", body: Buffer.from("# hello\n") }], version)),
        /not a crd-backup archive|header|grammar|first entry/i,
      ],
      [
        "a pax-header bomb (150 pax headers of 64 KiB in a row)",
        async () => store(paxBomb(150, 64 * 1024 - 32)),
        /not a valid tar stream: a pax extended header of \d+ bytes is over the limit of 8192/,
      ],
      [
        "pax headers piled up within the size limit (150 of 8 KiB in a row)",
        async () => store(paxBomb(150, 8 * 1024 - 32)),
        /not a valid tar stream: a pax extended header follows another one; only one is allowed per entry/,
      ],
      [
        "not gzip at all",
        async () => store(Buffer.from("PK\u0003\u0004 a zip file, not gzip")),
        /gzip|header|invalid|incorrect/i,
      ],
    ];

    it.each(cases)("restore refuses %s", async (_what, make, pattern) => {
      const storage = await make();
      const id = good.manifest.snapshotId;
      const target = uniqueName("never");
      proxy.clearRequests();
      const res = await runCli(
        [
          "restore",
          id,
          "--storage",
          storage,
          "--namespace-map",
          `${fx.namespaces[0]}=${target}`,
          "--restore-status",
        ],
        { env: { KUBECONFIG: kubeconfig } },
      );
      expect(res.code).toBe(1);
      const lines = res.stderr.trim().split("\n");
      expect(lines, res.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^crd-backup: /);
      expect(lines[0], lines[0]).toMatch(pattern);
      expect(lines[0]).not.toMatch(/\s+at\s+\S+:\d+/);
      // zero writes: the proxy saw every request, and none changed anything
      const writes = proxy.requests.filter((r) => r.method !== "GET");
      expect(writes.map((r) => `${r.method} ${r.path}`)).toEqual([]);
      // and verify says the same, with a non-zero exit
      const verify = await runCli(["verify", id, "--storage", storage]);
      expect(verify.code).not.toBe(0);
      expect(verify.stderr.trim().split("\n")).toHaveLength(1);
    });

    it("restore refuses the pax-header bomb within a time and a heap bound", async () => {
      // Before the fix: 72 s and 725 MB (a restore pod's memory limit). A heap capped at 128 MB
      // turns any such growth into a crash, and the bound on time leaves room for a loaded machine.
      for (const bytes of [64 * 1024 - 32, 8 * 1024 - 32]) {
        const storage = store(paxBomb(150, bytes));
        const started = performance.now();
        const res = await runCli(
          [
            "restore",
            good.manifest.snapshotId,
            "--storage",
            storage,
            "--namespace-map",
            `${fx.namespaces[0]}=${uniqueName("never")}`,
          ],
          { env: { KUBECONFIG: kubeconfig, NODE_OPTIONS: "--max-old-space-size=128" } },
        );
        const seconds = (performance.now() - started) / 1000;
        expect(res.code, res.stderr).toBe(1);
        expect(res.stderr.trim().split("\n")).toHaveLength(1);
        expect(res.stderr).toMatch(/^crd-backup: .*archive is not a valid tar stream: a pax extended header/);
        expect(seconds).toBeLessThan(15);
      }
    });

    it("a bounded fuzz of the archive reader over random mutations of a real archive: never a crash, only ARCHIVE_INVALID", async () => {
      // deterministic: a failure names its seed and can be replayed
      let seed = 20261122;
      const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
      const tar = version === 1 ? gunzipSync(good.archive) : zstdDecompressSync(good.archive);
      let refused = 0;
      let accepted = 0;
      for (let i = 0; i < 300; i++) {
        const start = seed;
        const layer = i % 2 === 0 ? Buffer.from(good.archive) : Buffer.from(tar);
        const n = 1 + Math.floor(random() * 4);
        let bytes = layer;
        for (let k = 0; k < n; k++) {
          const at = Math.floor(random() * bytes.length);
          const kind = Math.floor(random() * 4);
          if (kind === 0) bytes[at] = Math.floor(random() * 256);
          else if (kind === 1) bytes = bytes.subarray(0, at);
          else if (kind === 2)
            bytes = Buffer.concat([
              bytes.subarray(0, at),
              Buffer.from([Math.floor(random() * 256)]),
              bytes.subarray(at),
            ]);
          else bytes[at] = bytes[at]! ^ (1 << Math.floor(random() * 8));
        }
        const archive = i % 2 === 0 ? bytes : version === 1 ? gzipSync(bytes) : zstdCompressSync(bytes);
        const expected = {
          ...expectedArchive(good.manifest),
          size: archive.length,
          sha256: sha256(archive),
        };
        try {
          await verifyArchive([archive], expected);
          accepted++;
        } catch (e) {
          if (!isCrdBackupError(e) || e.code !== "ARCHIVE_INVALID" || /\n/.test(e.message)) {
            throw new Error(`fuzz case ${i} (seed ${start}) failed with ${String(e)}`, { cause: e });
          }
          refused++;
        }
      }
      // a mutation the format cannot notice (e.g. in tar padding) may pass; nearly all must not
      expect(refused).toBeGreaterThan(280);
      expect(refused + accepted).toBe(300);
    });
  },
);

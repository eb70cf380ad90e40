/**
 * Format version 3 (docs/format.md): zstd, ustar headers with a pax header only for a uid or a long
 * name, and the hashes in index.sha256. Version 1's own cases stay in security.test.ts and the
 * round-trip tests, which write version 1 on purpose.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { verifyArchive, type ArchiveTotals } from "../../../src/archive/index.ts";
import {
  SNAPSHOT_ID,
  crdBody,
  expectInvalid,
  namespaceBody,
  objectBody,
  pack,
  readAll,
  sha256,
  smallArchive,
  unpack,
  writeArchive,
  type RawEntry,
} from "./helpers.ts";

const expectation = (totals: ArchiveTotals) => ({ snapshotId: SNAPSHOT_ID, ...totals });
const verify = (bytes: Buffer, totals?: ArchiveTotals) =>
  verifyArchive([bytes], totals ? expectation(totals) : undefined);

/** index.sha256 for `entries` (header first, index last), as the writer makes it. */
function sums(entries: RawEntry[]): Buffer {
  return Buffer.from(entries.map((e) => `${sha256(e.body)}  ${e.name}\n`).join(""));
}

/** Re-pack as version 3 after `change`, the index rewritten to match, as a careful forger would. */
async function forge(bytes: Buffer, change: (entries: RawEntry[]) => void): Promise<Buffer> {
  const entries = await unpack(bytes);
  change(entries);
  entries[entries.length - 1]!.body = sums(entries.slice(1, -1));
  return pack(entries, 3);
}

describe("archive format version 3", () => {
  it("is written by default: zstd, index.sha256 last, hashes only there", async () => {
    const { bytes, totals } = await smallArchive(3);
    expect([...bytes.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]);
    const entries = await unpack(bytes);
    expect(entries.map((e) => e.name)).toEqual([
      "crd-backup-archive.json",
      "crds/widgets.example.com.json",
      "objects/example.com/v1/widgets/team-a/one.json",
      "objects/example.com/v1/widgets/team-a/two.json",
      "namespaces/team-a.json",
      "index.sha256",
    ]);
    expect(JSON.parse(entries[0]!.body.toString())).toMatchObject({ formatVersion: 3 });
    // a pax header only where there is a uid; no entry carries its hash
    expect(entries.map((e) => e.pax ?? {})).toEqual([
      {},
      {},
      { "CRDBACKUP.uid": "uid-one" },
      { "CRDBACKUP.uid": "uid-two" },
      {},
      {},
    ]);
    expect(entries.at(-1)!.body.toString()).toBe(sums(entries.slice(1, -1)).toString());
    const summary = await verify(bytes, totals);
    expect(summary).toMatchObject({ crds: 1, objects: 2, namespaces: 1, entries: 6 });
  });

  it("reads back every entry with the records version 1 gives, a long name and uids included", async () => {
    const long = {
      group: "example.com",
      version: "v1",
      plural: "widgets",
      namespace: "team-a",
      name: `w-${"x".repeat(120)}`,
    };
    const build = (version: 1 | 3) =>
      writeArchive(
        async (w) => {
          await w.addCrd("widgets.example.com", crdBody("widgets.example.com"), { uid: "crd-uid" });
          await w.addObject(long, objectBody(long, { spec: { n: 1 } }, ["owner-1"]), { uid: "u-long" });
          await w.addNamespace("team-a", namespaceBody("team-a"));
        },
        SNAPSHOT_ID,
        version,
      );
    const [v1, v3] = await Promise.all([build(1), build(3)]);
    const one = (await readAll(v1.bytes)).slice(1, -1);
    const three = (await readAll(v3.bytes)).slice(1, -1);
    expect(three).toEqual(one);
    expect(three[1]!.name.length).toBeGreaterThan(100); // carried by a pax path record
  });

  it("unpacks with zstd and tar, and sha256sum -c checks every body (docs/format.md)", async () => {
    const { bytes } = await smallArchive(3);
    const dir = await mkdtemp(join(tmpdir(), "crd-backup-v3-"));
    try {
      await writeFile(join(dir, "archive.tar.zst"), bytes);
      execFileSync(
        "sh",
        [
          "-c",
          "zstd -q -t archive.tar.zst && zstd -dc archive.tar.zst | tar -x --warning=no-unknown-keyword",
        ],
        { cwd: dir },
      );
      const out = execFileSync("sha256sum", ["-c", "index.sha256"], { cwd: dir }).toString();
      expect(out.trim().split("\n")).toHaveLength(4);
      expect(out).not.toMatch(/FAILED/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe("refuses, in one line", () => {
    let bytes: Buffer;
    let totals: ArchiveTotals;
    beforeEach(async () => ({ bytes, totals } = await smallArchive(3)));
    afterEach(() => undefined);

    it("a corrupt zstd frame, and a truncated one", async () => {
      const bad = Buffer.from(bytes);
      for (let i = 40; i < 60; i++) bad[i] = bad[i]! ^ 0xff;
      await expectInvalid(verify(bad), /not valid zstd data|bad tar header|does not match/);
      await expectInvalid(verify(bytes.subarray(0, bytes.length - 8)), /truncated|not valid zstd data/);
    });

    it("a body changed after the index was written (caught by the index, without the manifest)", async () => {
      const entries = await unpack(bytes);
      entries[2]!.body = objectBody(
        { group: "example.com", version: "v1", plural: "widgets", namespace: "team-a", name: "one" },
        { spec: { evil: true } },
      );
      await expectInvalid(verify(await pack(entries, 3)), /index\.sha256.*does not match the entries/);
    });

    it("a forged archive whose index was rewritten too (caught by the manifest's hashes)", async () => {
      const forged = await forge(bytes, (e) => {
        e[2]!.body = Buffer.from(e[2]!.body.toString().replace('"one"}', '"one","labels":{"x":"y"}}'));
      });
      await expectInvalid(verify(forged, totals), /the manifest says/);
    });

    it("a missing entry and an extra one", async () => {
      const entries = await unpack(bytes);
      await expectInvalid(
        verify(
          await pack(
            entries.filter((_, i) => i !== 3),
            3,
          ),
        ),
        /lists 4 entries but the archive has 3/,
      );
      const ref = {
        group: "example.com",
        version: "v1",
        plural: "widgets",
        namespace: "team-a",
        name: "three",
      };
      const extra = [
        ...entries.slice(0, 4),
        { name: "objects/example.com/v1/widgets/team-a/three.json", body: objectBody(ref), pax: {} },
        ...entries.slice(4),
      ];
      await expectInvalid(verify(await pack(extra, 3)), /lists 4 entries but the archive has 5/);
    });

    it("a tar header that lies about a size", async () => {
      const tarBytes = zstdDecompressSync(bytes);
      // the second member's header (the CRD) starts after the header entry's block and body block
      const at = 1024;
      expect(tarBytes.subarray(at, at + 5).toString()).toBe("crds/");
      tarBytes.write("00000000010", at + 124); // size field, checksum now wrong too
      await expectInvalid(verify(zstdCompressSync(tarBytes)), /bad tar header|header says/);
    });

    it("a version-1 header in zstd data, a version-1 index, and a hash record in a pax header", async () => {
      const entries = await unpack(bytes);
      const header = {
        ...entries[0]!,
        body: Buffer.from(
          JSON.stringify({ format: "crd-backup-archive", formatVersion: 1, snapshotId: SNAPSHOT_ID }),
        ),
      };
      await expectInvalid(
        verify(await pack([header, ...entries.slice(1)], 3)),
        /says format version 1, but the archive is zstd data/,
      );
      const renamed = entries.map((e, i) => (i === entries.length - 1 ? { ...e, name: "index.jsonl" } : e));
      await expectInvalid(
        verify(await pack(renamed, 3)),
        /"index\.jsonl".*not the index of format version 3/,
      );
      const hashed = entries.map((e, i) =>
        i === 1 ? { ...e, pax: { "CRDBACKUP.sha256": sha256(e.body) } } : e,
      );
      await expectInvalid(verify(await pack(hashed, 3)), /has a CRDBACKUP\.sha256 record; format version 3/);
    });
  });

  it("is smaller than version 1 on the same entries", async () => {
    const build = (version: 1 | 3) =>
      writeArchive(
        async (w) => {
          for (let i = 0; i < 500; i++) {
            const ref = {
              group: "example.com",
              version: "v1",
              plural: "widgets",
              namespace: "team-a",
              name: `w-${i}`,
            };
            await w.addObject(ref, objectBody(ref, { spec: { i, payload: "p".repeat(300) } }), {
              uid: `0b6e1c2a-5d3f-4e7a-9c8b-${String(i).padStart(12, "0")}`,
            });
          }
        },
        SNAPSHOT_ID,
        version,
      );
    const [v1, v3] = await Promise.all([build(1), build(3)]);
    expect(v3.bytes.length).toBeLessThan(v1.bytes.length * 0.7);
  });
});

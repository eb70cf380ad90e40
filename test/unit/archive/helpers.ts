/** Builders for archive tests: valid bodies, archives from the real writer, and hand-made tars. */
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import * as tar from "tar-stream";
import { expect } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import {
  ArchiveWriter,
  parseEntryName,
  readArchive,
  type ArchiveEntry,
  type ArchiveTotals,
  type ArchiveVersion,
  type ObjectRef,
} from "../../../src/archive/index.ts";
import { describeEntry, indexLine } from "../../../src/archive/records.ts";

export const SNAPSHOT_ID = "20261122T041500Z-1a2b3c4d";

export const sha256 = (data: Buffer | string): string => createHash("sha256").update(data).digest("hex");

export function crdBody(name: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name },
    }),
  );
}

export function namespaceBody(name: string): Buffer {
  return Buffer.from(JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name } }));
}

export function objectBody(
  ref: ObjectRef,
  extra: Record<string, unknown> = {},
  owners: string[] = [],
): Buffer {
  const metadata: Record<string, unknown> = { name: ref.name };
  if (ref.namespace !== undefined) metadata["namespace"] = ref.namespace;
  if (owners.length > 0)
    metadata["ownerReferences"] = owners.map((uid) => ({ kind: "Owner", name: "o", uid }));
  return Buffer.from(
    JSON.stringify({ apiVersion: `${ref.group}/${ref.version}`, kind: "Widget", metadata, ...extra }),
  );
}

export async function drain(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Run `build` against a real writer while consuming its stream, as an uploader would. */
export async function writeArchive(
  build: (writer: ArchiveWriter) => Promise<void>,
  snapshotId = SNAPSHOT_ID,
  formatVersion: ArchiveVersion = 1,
): Promise<{ bytes: Buffer; totals: ArchiveTotals }> {
  const writer = new ArchiveWriter(snapshotId, { mtime: new Date("2026-11-22T04:15:00Z"), formatVersion });
  const consumed = drain(writer.stream);
  await build(writer);
  const totals = await writer.finish();
  return { bytes: await consumed, totals };
}

/** A small valid archive: one CRD, two objects of one resource, one namespace. */
export function smallArchive(
  formatVersion: ArchiveVersion = 1,
): Promise<{ bytes: Buffer; totals: ArchiveTotals }> {
  return writeArchive(
    async (w) => {
      await w.addCrd("widgets.example.com", crdBody("widgets.example.com"));
      for (const name of ["one", "two"]) {
        const ref = { group: "example.com", version: "v1", plural: "widgets", namespace: "team-a", name };
        await w.addObject(ref, objectBody(ref), { uid: `uid-${name}` });
      }
      await w.addNamespace("team-a", namespaceBody("team-a"));
    },
    SNAPSHOT_ID,
    formatVersion,
  );
}

export async function readAll(
  bytes: Buffer,
  expected?: Parameters<typeof readArchive>[1],
): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [];
  for await (const entry of readArchive([bytes], expected)) entries.push(entry);
  return entries;
}

export interface RawEntry {
  name: string;
  body: Buffer;
  type?: "file" | "symlink" | "directory" | "link";
  linkname?: string;
  pax?: Record<string, string> | null;
}

/** Every entry of a .tar.gz or .tar.zst, unchecked, to be tampered with and re-packed. */
export async function unpack(gz: Buffer): Promise<RawEntry[]> {
  const extract = tar.extract();
  const entries: RawEntry[] = [];
  const done = (async () => {
    for await (const entry of extract as AsyncIterable<AsyncIterable<Buffer> & { header: tar.Header }>) {
      const pax = { ...((entry.header.pax ?? {}) as Record<string, string>) };
      delete pax["path"];
      entries.push({ name: entry.header.name, body: await drain(entry), pax });
    }
  })();
  extract.end(gz[0] === 0x1f ? gunzipSync(gz) : zstdDecompressSync(gz));
  await done;
  return entries;
}

/** Rewrite index.jsonl (the last entry) to match the other entries, as a careful forger would. */
export function reindex(entries: RawEntry[]): void {
  const lines = entries.slice(1, -1).map((e) => {
    const parsed = parseEntryName(e.name);
    if (parsed.kind !== "crd" && parsed.kind !== "namespace" && parsed.kind !== "object")
      throw new Error(e.name);
    return indexLine(describeEntry(e.name, parsed, e.body, sha256(e.body), e.pax?.["CRDBACKUP.uid"]));
  });
  entries[entries.length - 1]!.body = Buffer.from(lines.join(""));
}

/**
 * A .tar.gz (version 1) or .tar.zst (3) made by hand. In version 1 `pax: undefined` means "the
 * right CRDBACKUP.sha256", in 3 none; `null` means none.
 */
export async function pack(entries: RawEntry[], formatVersion: ArchiveVersion = 1): Promise<Buffer> {
  const p = tar.pack();
  const out = drain(p as unknown as AsyncIterable<Buffer>);
  for (const e of entries) {
    const type = e.type ?? "file";
    const pax = e.pax === undefined && formatVersion === 1 ? { "CRDBACKUP.sha256": sha256(e.body) } : e.pax;
    const header = {
      name: e.name,
      type,
      mtime: new Date(0),
      ...(pax ? { pax } : {}),
      ...(e.linkname ? { linkname: e.linkname } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      if (type === "file") p.entry(header, e.body, (err) => (err ? reject(err) : resolve()));
      else p.entry(header, (err) => (err ? reject(err) : resolve())).end(undefined);
    });
  }
  p.finalize();
  return formatVersion === 1 ? gzipSync(await out) : zstdCompressSync(await out);
}

/** The archive must be refused as ARCHIVE_INVALID with a one-line message matching `pattern`. */
export async function expectInvalid(work: Promise<unknown>, pattern: RegExp): Promise<CrdBackupError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected the archive to be refused").toBeInstanceOf(CrdBackupError);
  const e = err as CrdBackupError;
  expect(e.code).toBe("ARCHIVE_INVALID");
  expect(e.message).toMatch(pattern);
  expect(e.message).not.toMatch(/\n|\s+at\s/);
  return e;
}

const TAR_BLOCK = 512;
const tarPadding = (size: number): Buffer => Buffer.alloc((TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK);

/** A ustar header block made by hand, for tars no well-behaved writer makes. */
export function tarHeader(name: string, size: number, typeflag: string): Buffer {
  const block = Buffer.alloc(TAR_BLOCK);
  block.write(name, 0, 100, "utf8");
  block.write("0000644\0", 100);
  block.write("0000000\0", 108);
  block.write("0000000\0", 116);
  block.write(`${size.toString(8).padStart(11, "0")}\0`, 124);
  block.write("00000000000\0", 136);
  block.fill(0x20, 148, 156); // the checksum field counts as spaces while summing
  block.write(typeflag, 156);
  block.write("ustar\u000000", 257);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return block;
}

/** One pax record, `<len> key=value\n`, whose length counts its own digits. */
export function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(rest) + 1;
  while (String(length).length + Buffer.byteLength(rest) !== length) length++;
  return `${length}${rest}`;
}

/** A raw tar member: its header block, its data and the data's padding. */
export function tarMember(name: string, typeflag: string, data: Buffer): Buffer {
  return Buffer.concat([tarHeader(name, data.length, typeflag), data, tarPadding(data.length)]);
}

/** The two zero blocks that end a tar stream. */
export const TAR_END = Buffer.alloc(2 * TAR_BLOCK);

/**
 * The pax-header bomb of issue 21: `headers` pax 'x' headers in a row, each about `bytes` long
 * and full of distinct short keys, before a valid header entry. A reader that merges them keeps
 * every key and copies the growing set per header (150 × 64 KiB: 72 s and 725 MB).
 */
export function paxBomb(headers = 150, bytes = 64 * 1024 - 32): Buffer {
  const parts: Buffer[] = [];
  let key = 0;
  for (let h = 0; h < headers; h++) {
    let records = "";
    while (records.length < bytes - 16) records += paxRecord((key++).toString(36), "");
    parts.push(tarMember("PaxHeader", "x", Buffer.from(records)));
  }
  const body = Buffer.from(`{"format":"crd-backup-archive","formatVersion":1,"snapshotId":"${SNAPSHOT_ID}"}`);
  const pax = paxRecord("path", "crd-backup-archive.json") + paxRecord("CRDBACKUP.sha256", sha256(body));
  parts.push(tarMember("PaxHeader", "x", Buffer.from(pax)), tarMember("crd-backup-archive.json", "0", body));
  parts.push(TAR_END);
  return gzipSync(Buffer.concat(parts));
}

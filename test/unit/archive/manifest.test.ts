import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import {
  expectedArchive,
  parseManifest,
  plainManifest,
  serializeManifest,
  type Manifest,
} from "../../../src/archive/index.ts";

/** The example in docs/format.md, so the document cannot drift from the code. */
function documentedExample(): string {
  const doc = readFileSync(new URL("../../../docs/format.md", import.meta.url), "utf8");
  const section = doc.slice(doc.indexOf("## Manifest format"));
  const match = /```json\n([\s\S]*?)\n```/.exec(section);
  if (!match?.[1]) throw new Error("no manifest example in docs/format.md");
  return match[1];
}

function example(): Record<string, unknown> {
  return JSON.parse(documentedExample()) as Record<string, unknown>;
}

function refused(text: string, pattern: RegExp): void {
  let error: unknown;
  try {
    parseManifest(text);
  } catch (e) {
    error = e;
  }
  expect(error, "expected the manifest to be refused").toBeInstanceOf(CrdBackupError);
  expect((error as CrdBackupError).code).toBe("ARCHIVE_INVALID");
  expect((error as CrdBackupError).message).toMatch(pattern);
  expect((error as CrdBackupError).message).not.toContain("\n");
}

describe("manifest", () => {
  it("parses the documented example", () => {
    const manifest = plainManifest(parseManifest(documentedExample()));
    expect(manifest.snapshotId).toBe("20261122T041500Z-1a2b3c4d");
    expect(manifest.status).toBe("partial");
    expect(manifest.resources[1]?.consistent).toBe(false);
    expect(expectedArchive(manifest)).toEqual({
      snapshotId: manifest.snapshotId,
      sha256: manifest.archive.sha256,
      size: 48213,
      entries: 8,
      indexSha256: manifest.index.sha256,
      indexEntries: 6,
      counts: { crds: 2, namespaces: 1, objects: 3 },
    });
  });

  it("serialises to the same document, whatever the key order it was built in", () => {
    const manifest = parseManifest(documentedExample());
    const shuffled = Object.fromEntries(Object.entries(manifest).reverse()) as unknown as Manifest;
    const text = serializeManifest(shuffled);
    expect(text).toBe(`${JSON.stringify(JSON.parse(documentedExample()), null, 2)}\n`);
    expect(parseManifest(text)).toEqual(manifest);
  });

  it("keeps option values exactly, int64 included", () => {
    const doc = documentedExample().replace('"pageSize": 500', '"pageSize": 500, "big": 9223372036854775807');
    expect(serializeManifest(parseManifest(doc))).toContain('"big": 9223372036854775807');
  });

  it("refuses a newer format version before looking at anything else", () => {
    refused(
      JSON.stringify({
        formatVersion: 7,
        snapshotId: "20261122T041500Z-1a2b3c4d",
        something: "else entirely",
      }),
      /^snapshot 20261122T041500Z-1a2b3c4d: archive format version 7 is newer than this crd-backup understands \(3\); upgrade crd-backup$/,
    );
    refused(JSON.stringify({ ...example(), formatVersion: 0 }), /unsupported archive format version 0/);
    refused(JSON.stringify({ ...example(), formatVersion: "1" }), /unsupported archive format version "1"/);
    refused(JSON.stringify({ ...example(), formatVersion: undefined }), /formatVersion is missing/);
  });

  it("refuses text that is not a JSON object", () => {
    refused("{", /not valid JSON/);
    refused("[]", /not a JSON object/);
  });

  it("names the field that is wrong", () => {
    const m = example();
    const resources = m["resources"] as Record<string, unknown>[];
    refused(JSON.stringify({ ...m, snapshotId: "latest" }), /snapshotId must be a snapshot ID/);
    refused(JSON.stringify({ ...m, status: "done" }), /status must be "complete" or "partial"/);
    refused(JSON.stringify({ ...m, startedAt: "yesterday" }), /startedAt must be an RFC 3339 timestamp/);
    refused(
      JSON.stringify({ ...m, resources: [resources[0], { ...resources[1], count: -1 }] }),
      /resources\[1\]\.count must be a non-negative integer/,
    );
    refused(
      JSON.stringify({ ...m, archive: { ...(m["archive"] as object), sha256: "ABC" } }),
      /archive\.sha256 must be 64 lowercase hex digits/,
    );
    refused(
      JSON.stringify({ ...m, archive: { ...(m["archive"] as object), key: "../x" } }),
      /archive\.key must be/,
    );
  });

  it("refuses a server URL with credentials", () => {
    const m = example();
    const cluster = { ...(m["cluster"] as object), server: "https://admin:secret@10.0.0.1:6443" };
    refused(JSON.stringify({ ...m, cluster }), /cluster\.server must not contain credentials/);
    expect(() =>
      serializeManifest({ ...plainManifest(parseManifest(documentedExample())), cluster } as Manifest),
    ).toThrow(/credentials/);
  });

  it("refuses a manifest that breaks an invariant", () => {
    const m = example();
    refused(JSON.stringify({ ...m, counts: { crds: 2, namespaces: 1, objects: 4 } }), /counts\.objects is 4/);
    refused(
      JSON.stringify({ ...m, index: { ...(m["index"] as object), entries: 7 } }),
      /index\.entries is 7/,
    );
    refused(
      JSON.stringify({ ...m, archive: { ...(m["archive"] as object), entries: 6 } }),
      /archive\.entries/,
    );
    refused(JSON.stringify({ ...m, status: "complete" }), /"complete" but a resource has errors/);
  });
});

import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import {
  isSnapshotId,
  newSnapshotId,
  crdEntryName,
  namespaceEntryName,
  objectEntryName,
  parseEntryName,
} from "../../../src/archive/index.ts";

describe("snapshot IDs", () => {
  it("are UTC timestamps plus randomness, and sort by time", () => {
    const early = newSnapshotId(new Date("2026-11-22T04:15:00.999Z"));
    const late = newSnapshotId(new Date("2026-11-22T04:15:01.000Z"));
    expect(early).toMatch(/^20261122T041500Z-[0-9a-f]{8}$/);
    expect([late, early].sort()).toEqual([early, late]);
    expect(isSnapshotId(early)).toBe(true);
    expect(isSnapshotId("20261122T041500Z-1A2B3C4D")).toBe(false);
    expect(isSnapshotId("../20261122T041500Z-1a2b3c4d")).toBe(false);
  });

  it("sort by start time within a second too, and differ within a millisecond", () => {
    // one ID per millisecond of a second, many times over: byte order is always time order
    for (let round = 0; round < 20; round++) {
      const ids = Array.from({ length: 1000 }, (_, ms) =>
        newSnapshotId(new Date(Date.UTC(2026, 11, 2, 1, 50, 14, ms))),
      );
      expect([...ids].sort()).toEqual(ids);
      expect(ids.every((id) => isSnapshotId(id) && id.startsWith("20261202T015014Z-"))).toBe(true);
    }
    const same = new Date("2026-12-02T01:50:14.123Z");
    expect(new Set(Array.from({ length: 100 }, () => newSnapshotId(same))).size).toBe(100);
  });
});

describe("entry names", () => {
  it("builds the names of docs/format.md", () => {
    expect(crdEntryName("certificates.cert-manager.io")).toBe("crds/certificates.cert-manager.io.json");
    expect(namespaceEntryName("default")).toBe("namespaces/default.json");
    const ref = { group: "cert-manager.io", version: "v1", plural: "certificates", name: "web" };
    expect(objectEntryName({ ...ref, namespace: "default" })).toBe(
      "objects/cert-manager.io/v1/certificates/default/web.json",
    );
    expect(objectEntryName(ref)).toBe("objects/cert-manager.io/v1/certificates/_cluster/web.json");
  });

  it("parses what it builds, back to the same parts", () => {
    expect(parseEntryName("crd-backup-archive.json")).toEqual({ kind: "header" });
    expect(parseEntryName("index.jsonl")).toEqual({ kind: "index" });
    expect(parseEntryName("crds/widgets.example.com.json")).toEqual({
      kind: "crd",
      name: "widgets.example.com",
    });
    expect(parseEntryName("namespaces/team-a.json")).toEqual({ kind: "namespace", name: "team-a" });
    expect(parseEntryName("objects/example.com/v1alpha1/widgets/team-a/w-1.json")).toEqual({
      kind: "object",
      ref: { group: "example.com", version: "v1alpha1", plural: "widgets", namespace: "team-a", name: "w-1" },
    });
    expect(parseEntryName("objects/example.com/v1/widgets/_cluster/config.json.json")).toEqual({
      kind: "object",
      ref: { group: "example.com", version: "v1", plural: "widgets", name: "config.json" },
    });
  });

  it("refuses to build names for parts outside the grammar", () => {
    const ref = { group: "example.com", version: "v1", plural: "widgets", name: "ok" };
    for (const bad of [
      { ...ref, name: "../x" },
      { ...ref, name: "Upper" },
      { ...ref, namespace: "_cluster" },
      { ...ref, namespace: "a.b" },
      { ...ref, group: "" },
      { ...ref, plural: "a/b" },
    ]) {
      expect(() => objectEntryName(bad), JSON.stringify(bad)).toThrow(CrdBackupError);
    }
    expect(() => crdEntryName("x/../y")).toThrow(CrdBackupError);
    expect(() => namespaceEntryName("kube_system")).toThrow(CrdBackupError);
  });

  const refused: [string, RegExp][] = [
    ["", /empty/],
    ["../x", /"\.\."/],
    ["crds/../../etc/passwd", /"\.\."/],
    ["objects/example.com/v1/widgets/ns/..json", /"\.\."/],
    ["/etc/passwd", /absolute/],
    ["crds\\x.json", /backslash/],
    ["crds/a\u0000b.json", /control character/],
    ["crds/a\nb.json", /control character/],
    [`crds/${"a".repeat(1100)}.json`, /longer than 1024 bytes/],
    ["crds/", /grammar/],
    ["crds/x.json/", /grammar/],
    ["crds/x.JSON", /grammar/],
    ["crds/X.json", /grammar/],
    ["crds/.hidden.json", /grammar/],
    ["crds/x.json.", /grammar/],
    ["namespaces/a.b.json", /grammar/],
    ["namespaces/_cluster.json", /grammar/],
    ["objects/example.com/v1/widgets/ns/name", /grammar/],
    ["objects/example.com/v1/widgets/name.json", /grammar/],
    ["objects//v1/widgets/ns/n.json", /grammar/],
    ["objects/example.com/v1/widgets/ns/sub/n.json", /grammar/],
    ["objects/example.com/v1/widgets/a_b/n.json", /grammar/],
    ["./crds/x.json", /grammar/],
    ["other/x.json", /grammar/],
    ["crds/x.json\u2028", /grammar/],
  ];
  it.each(refused)("refuses the untrusted name %j", (name, reason) => {
    let error: unknown;
    try {
      parseEntryName(name);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CrdBackupError);
    expect((error as CrdBackupError).code).toBe("ARCHIVE_INVALID");
    expect((error as CrdBackupError).message).toMatch(reason);
    expect((error as CrdBackupError).message).not.toMatch(/[\n\u2028]/);
  });
});

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  type Dirent,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ArchiveWriter, ObjectRef } from "../../../src/archive/index.ts";
import { serializeManifest, type Manifest } from "../../../src/archive/manifest.ts";
import { CrdBackupError, SourceRefusedError, refusalSaying } from "../../../src/errors.ts";
import { exportSnapshot, type ExportOptions } from "../../../src/export/export.ts";
import { exportPath, safeComponent } from "../../../src/export/layout.ts";
import { LAST_APPLIED, cleanForApply } from "../../../src/export/manifest.ts";
import { parseJson, type JsonObject } from "../../../src/json/json.ts";
import { silentLogger } from "../../../src/report/log.ts";
import { openSource } from "../../../src/source/open.ts";
import { LocalBackend } from "../../../src/storage/local.ts";
import { archiveKey, manifestKey } from "../../../src/storage/layout.ts";
import { SNAPSHOT_ID, crdBody, namespaceBody, writeArchive } from "../archive/helpers.ts";
import { jsonText, readYaml } from "./read-yaml.ts";

const GROUP = "example.com";
const widget = (namespace: string | undefined, name: string): ObjectRef =>
  namespace === undefined
    ? { group: GROUP, version: "v1", plural: "policies", name }
    : { group: GROUP, version: "v1", plural: "widgets", namespace, name };

/** Object bodies as the API server's bytes could be: numbers a float64 would change, tricky strings. */
function body(ref: ObjectRef, extra = ""): Buffer {
  const ns = ref.namespace === undefined ? "" : `,"namespace":"${ref.namespace}"`;
  return Buffer.from(
    `{"apiVersion":"${ref.group}/${ref.version}","kind":"${ref.plural === "widgets" ? "Widget" : "Policy"}",` +
      `"metadata":{"name":"${ref.name}"${ns},"labels":{"on":"yes"},"annotations":{"${LAST_APPLIED}":"{}","keep":"1e3"},` +
      `"ownerReferences":[{"apiVersion":"v1","kind":"Owner","name":"o","uid":"u-1"}]},` +
      `"spec":{"big":9007199254740993,"min":-9223372036854775808,"exp":1.0e3,"ratio":0.1,"script":"a\\nb\\n","when":"2001-12-14"${extra}},` +
      `"status":{"observed":9223372036854775807}}`,
  );
}

const OBJECTS = [
  widget("team-a", "one"),
  widget("team-a", "two"),
  widget("team-b", "config.json"),
  widget(undefined, "global"),
];

/** A snapshot in a fresh local storage directory, archive and manifest, built with the real writer. */
async function storedSnapshot(
  build: (w: ArchiveWriter) => Promise<void> = async (w) => {
    await w.addCrd(`widgets.${GROUP}`, crdBody(`widgets.${GROUP}`));
    await w.addCrd(`policies.${GROUP}`, crdBody(`policies.${GROUP}`));
    for (const ref of OBJECTS) await w.addObject(ref, body(ref), { uid: `uid-${ref.name}` });
    await w.addNamespace("team-a", namespaceBody("team-a"));
    await w.addNamespace("team-b", Buffer.from('{"metadata":{"name":"team-b"}}'));
  },
): Promise<{ storage: LocalBackend; root: string }> {
  const root = mkdtempSync(path.join(os.tmpdir(), "crd-backup-export-store-"));
  const storage = new LocalBackend(root);
  const { bytes, totals } = await writeArchive(build);
  mkdirSync(path.dirname(path.join(root, archiveKey(SNAPSHOT_ID, 1))), { recursive: true });
  writeFileSync(path.join(root, archiveKey(SNAPSHOT_ID, 1)), bytes);
  const manifest: Manifest = {
    formatVersion: 1,
    toolVersion: "0.1.0",
    snapshotId: SNAPSHOT_ID,
    status: "complete",
    cluster: { uid: "c", server: "https://127.0.0.1:6443", serverVersion: "v1.36.4" },
    startedAt: "2026-11-22T04:15:00Z",
    finishedAt: "2026-11-22T04:15:01Z",
    options: {},
    resources: [
      {
        group: GROUP,
        version: "v1",
        plural: "widgets",
        kind: "Widget",
        namespaced: true,
        storageVersion: "v1",
        servedVersions: ["v1"],
        count: totals.counts.objects,
        bytes: 0,
        listResourceVersion: "1",
        consistent: true,
        errors: [],
      },
    ],
    namespaceErrors: [],
    counts: totals.counts,
    archive: { key: "archive.tar.gz", size: totals.size, sha256: totals.sha256, entries: totals.entries },
    index: { sha256: totals.indexSha256, entries: totals.indexEntries },
  };
  writeFileSync(path.join(root, manifestKey(SNAPSHOT_ID)), serializeManifest(manifest));
  return { storage, root };
}

const OPTIONS: ExportOptions = { format: "yaml", cleanForApply: false, force: false };

function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)))
    .sort();
}

function workDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), "crd-backup-export-"));
}

async function refusal(p: Promise<unknown>): Promise<CrdBackupError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CrdBackupError);
  return e as CrdBackupError;
}

describe("export layout", () => {
  it("puts CRDs, namespaces, namespaced and cluster-scoped objects in their places", () => {
    expect(exportPath({ kind: "crd", name: "widgets.example.com" }, "yaml")).toBe(
      "_crds/widgets.example.com.yaml",
    );
    expect(exportPath({ kind: "namespace", name: "team-a" }, "json")).toBe("_namespaces/team-a.json");
    expect(exportPath({ kind: "object", ref: widget("team-a", "one") }, "yaml")).toBe(
      "example.com/widgets/team-a/one.yaml",
    );
    expect(exportPath({ kind: "object", ref: widget(undefined, "global") }, "yaml")).toBe(
      "example.com/policies/global.yaml",
    );
  });

  it("refuses any path component that could leave the directory or is not a Kubernetes name", () => {
    for (const bad of [
      "..",
      ".",
      "",
      "a/b",
      "/abs",
      "a\\b",
      "a..b",
      "../x",
      "A",
      "a\u0000",
      "x".repeat(254),
      "-a",
      "a-",
    ])
      expect(() => safeComponent(bad, "object"), bad).toThrow(CrdBackupError);
    expect(() => safeComponent("a.b", "namespace")).toThrow(CrdBackupError);
    expect(() =>
      exportPath({ kind: "object", ref: { ...widget("team-a", "x"), name: "../../etc/passwd" } }, "yaml"),
    ).toThrow(/not a valid Kubernetes name/);
    expect(() => exportPath({ kind: "object", ref: { ...widget("..", "x") } }, "yaml")).toThrow(
      CrdBackupError,
    );
    expect(safeComponent("config.json", "object")).toBe("config.json");
  });
});

describe("cleanForApply", () => {
  it("drops status, server-owned metadata, ownerReferences and last-applied-configuration; keeps the rest", () => {
    const obj = parseJson(body(widget("team-a", "one")).toString()) as JsonObject;
    (obj["metadata"] as JsonObject)["resourceVersion"] = "42";
    const clean = cleanForApply(obj);
    expect(clean["status"]).toBeUndefined();
    expect(clean["metadata"]).toEqual({
      name: "one",
      namespace: "team-a",
      labels: { on: "yes" },
      annotations: { keep: "1e3" },
    });
    expect(jsonText(clean["spec"]!)).toBe(jsonText((obj["spec"] as JsonObject)!));
    expect((obj["metadata"] as JsonObject)["ownerReferences"]).toBeDefined(); // the input is not changed
    const onlyLastApplied = cleanForApply({ metadata: { name: "x", annotations: { [LAST_APPLIED]: "{}" } } });
    expect(onlyLastApplied["metadata"]).toEqual({ name: "x" });
  });
});

describe("exportSnapshot", () => {
  it("writes one YAML file per entry that reads back as exactly the archived object", async () => {
    const { storage } = await storedSnapshot();
    const to = path.join(workDir(), "out");
    const result = await exportSnapshot(storage, "latest", to, OPTIONS);
    expect(result).toMatchObject({
      snapshotId: SNAPSHOT_ID,
      status: "complete",
      to,
      counts: { crds: 2, namespaces: 2, objects: 4 },
    });
    expect(tree(to)).toEqual([
      "_crds/policies.example.com.yaml",
      "_crds/widgets.example.com.yaml",
      "_namespaces/team-a.yaml",
      "_namespaces/team-b.yaml",
      "example.com/policies/global.yaml",
      "example.com/widgets/team-a/one.yaml",
      "example.com/widgets/team-a/two.yaml",
      "example.com/widgets/team-b/config.json.yaml",
    ]);
    for (const ref of OBJECTS) {
      const text = readFileSync(path.join(to, exportPath({ kind: "object", ref }, "yaml")), "utf8");
      expect(jsonText(readYaml(text))).toBe(jsonText(parseJson(body(ref).toString())));
      expect(jsonText(readYaml(text, "1.1"))).toBe(jsonText(parseJson(body(ref).toString())));
      expect(text).toContain("big: 9007199254740993\n");
      expect(text).toContain("exp: 1.0e3\n");
      expect(text).toContain("observed: 9223372036854775807\n");
    }
    // a Namespace entry without apiVersion and kind still becomes a plain v1 Namespace manifest
    expect(readFileSync(path.join(to, "_namespaces/team-b.yaml"), "utf8")).toBe(
      "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-b\n",
    );
    // nothing is left next to the target
    expect(readdirSync(path.dirname(to))).toEqual(["out"]);
  });

  it("writes indented JSON with -o json, numbers exact; --clean-for-apply leaves out status and owners", async () => {
    const { storage } = await storedSnapshot();
    const to = path.join(workDir(), "json");
    await exportSnapshot(storage, SNAPSHOT_ID, to, { ...OPTIONS, format: "json" });
    const ref = OBJECTS[0]!;
    const text = readFileSync(path.join(to, "example.com/widgets/team-a/one.json"), "utf8");
    expect(text).toMatch(/^{\n {2}"apiVersion"/);
    expect(text.endsWith("}\n")).toBe(true);
    expect(jsonText(parseJson(text))).toBe(jsonText(parseJson(body(ref).toString())));
    expect(text).toContain('"min": -9223372036854775808');

    const clean = path.join(workDir(), "clean");
    await exportSnapshot(storage, SNAPSHOT_ID, clean, { ...OPTIONS, cleanForApply: true });
    const doc = readYaml(
      readFileSync(path.join(clean, "example.com/widgets/team-a/one.yaml"), "utf8"),
    ) as JsonObject;
    expect(doc["status"]).toBeUndefined();
    expect((doc["metadata"] as JsonObject)["ownerReferences"]).toBeUndefined();
    expect(jsonText(doc["spec"]!)).toContain('"big":9007199254740993');
  });

  it("refuses a non-empty directory unless --force, which replaces it whole; never a directory holding .git", async () => {
    const { storage } = await storedSnapshot();
    const to = path.join(workDir(), "out");
    mkdirSync(to);
    writeFileSync(path.join(to, "mine.txt"), "keep me");
    const e = await refusal(exportSnapshot(storage, "latest", to, OPTIONS));
    expect(e.code).toBe("USAGE");
    expect(e.message).toMatch(/is not empty; use --force/);
    expect(tree(to)).toEqual(["mine.txt"]);

    await exportSnapshot(storage, "latest", to, { ...OPTIONS, force: true });
    expect(tree(to)).not.toContain("mine.txt");
    expect(tree(to)).toHaveLength(8);
    expect(readdirSync(path.dirname(to))).toEqual(["out"]);

    mkdirSync(path.join(to, ".git"));
    expect(
      (await refusal(exportSnapshot(storage, "latest", to, { ...OPTIONS, force: true }))).message,
    ).toMatch(/\.git/);
    expect(existsSync(path.join(to, ".git"))).toBe(true);

    // an empty directory is fine without --force
    const empty = path.join(workDir(), "empty");
    mkdirSync(empty);
    await exportSnapshot(storage, "latest", empty, OPTIONS);
    expect(tree(empty)).toHaveLength(8);
  });

  it("writes nothing when the archive is tampered with, and names the snapshot in one line", async () => {
    const { storage, root } = await storedSnapshot();
    const archive = path.join(root, archiveKey(SNAPSHOT_ID, 1));
    const bytes = readFileSync(archive);
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0xff;
    writeFileSync(archive, bytes);
    const parent = workDir();
    const e = await refusal(exportSnapshot(storage, "latest", path.join(parent, "out"), OPTIONS));
    expect(e.code).toBe("ARCHIVE_INVALID");
    expect(e.message).toMatch(new RegExp(`^snapshot ${SNAPSHOT_ID}: .*; nothing was exported$`));
    expect(e.message).not.toContain("\n");
    expect(e.message).not.toContain("restored");
    expect(readdirSync(parent)).toEqual([]);

    // the refusal itself is typed and says no consequence: each command says its own
    const refused = (await refusal(openSource(storage, "latest"))) as SourceRefusedError;
    expect(refused).toBeInstanceOf(SourceRefusedError);
    expect(refused.refused).toEqual({ snapshot: SNAPSHOT_ID });
    expect(refused.context).toEqual({ id: SNAPSHOT_ID });
    expect(refused.message).toMatch(new RegExp(`^snapshot ${SNAPSHOT_ID}: archive `));
    expect(refused.message).not.toContain("nothing was");
    const said = refusalSaying(refused, "nothing was restored") as SourceRefusedError;
    expect(said.message).toBe(`${refused.message}; nothing was restored`);
    expect(said.refused).toEqual(refused.refused);
    const other = new CrdBackupError("ARCHIVE_INVALID", "archive entry x: bad");
    expect(refusalSaying(other, "nothing was restored")).toBe(other);
  });

  it("refuses two entries that would be the same file, leaving nothing behind", async () => {
    const ref = widget("team-a", "one");
    const { storage } = await storedSnapshot(async (w) => {
      await w.addObject(ref, body(ref));
      await w.addObject({ ...ref, version: "v2" }, body({ ...ref, version: "v2" }));
    });
    const parent = workDir();
    const e = await refusal(exportSnapshot(storage, "latest", path.join(parent, "out"), OPTIONS));
    expect(e.message).toMatch(/already written by another entry/);
    expect(readdirSync(parent)).toEqual([]);
  });

  it("stops when aborted while writing, leaving nothing behind", async () => {
    const { storage } = await storedSnapshot();
    const parent = workDir();
    const controller = new AbortController();
    // the verified snapshot is logged just before the tree is written: interrupt there
    const log = { ...silentLogger, info: () => controller.abort(new Error("interrupted")) };
    await expect(
      exportSnapshot(storage, "latest", path.join(parent, "out"), {
        ...OPTIONS,
        signal: controller.signal,
        log,
      }),
    ).rejects.toThrow(/interrupted/);
    expect(readdirSync(parent)).toEqual([]);
  });
});

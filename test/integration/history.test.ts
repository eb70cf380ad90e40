/**
 * `history` and `changes` (issue 23, items 1-2) on journals recorded by a real `crd-backup record`
 * from the real kube-apiserver: versions with what happened and their paths, across a base
 * rotation (two chains), --diff, --show, -o json with each version's object (int64 intact), the
 * change feed with its filters, an encrypted journal read with --identity, and bad input.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKey } from "../../src/crypto/keys.ts";
import type { JournalRecord } from "../../src/journal/segment-format.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { runCli, type CliResult } from "../support/cli.ts";
import { adminClient, createNamespace, uniqueName } from "../support/cluster.ts";
import {
  allRecords,
  createRaw,
  makeCrd,
  objPath,
  patch,
  readJournal,
  spoolDir,
  startRecorder,
  type JournalSegment,
  type RunningRecorder,
} from "../support/recorder.ts";
import { freshLocal } from "../support/storage.ts";

const BIG = "9007199254740993"; // 2^53 + 1: a float64 would round it

interface Version {
  type: "version";
  time: string;
  what: string;
  paths: string[];
  before?: boolean;
  source: { snapshot?: string; segment?: string };
  object: { spec?: { size?: number }; status?: { phase?: string } } | null;
}

/** The crd-backup error lines of a run: a refusal is exactly one. */
const errorLines = (r: CliResult) => r.stderr.split("\n").filter((l) => l.startsWith("crd-backup:"));

describe("history and changes on a recorded journal", () => {
  let admin: KubeClient;
  let group: string;
  let ns: string;
  let dir: string;
  let rec: RunningRecorder;
  const marks: Record<string, string> = {};

  beforeAll(async () => {
    admin = await adminClient();
    group = `${uniqueName("hist")}.fixtures.crd-backup.io`;
    ns = uniqueName("hist");
    await makeCrd(admin, group, "widgets", "Widget");
    await makeCrd(admin, group, "gadgets", "Gadget");
    await createNamespace(admin, ns);
    const storage = freshLocal();
    dir = storage.location.replace(/^file:\/\//, "");
    rec = startRecorder([
      "--storage",
      dir,
      "--include-groups",
      group,
      "--spool-dir",
      spoolDir(),
      "--flush-interval",
      "1s",
      "--base-interval",
      "15s",
    ]);
    /** Waits until a stored segment holds a record `match` picks. */
    const journaled = async (match: (r: JournalRecord) => boolean, what: string) => {
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(250)) {
        const chains = await readJournal(storage).catch(() => new Map<string, JournalSegment[]>());
        for (const segments of chains.values()) if (allRecords(segments).some(match)) return;
      }
      throw new Error(`${what} was not journaled; log:\n${rec.log()}`);
    };
    /** A time after the change at `rv` (or the one `match` picks) is journaled, before the next change. */
    const mark = async (label: string, rv: string | ((r: JournalRecord) => boolean)) => {
      await journaled(typeof rv === "string" ? (r) => r.op === "put" && r.rv === rv : rv, label);
      await sleep(300);
      marks[label] = new Date().toISOString();
      await sleep(300);
    };
    const w = (name: string) => objPath(group, "widgets", ns, name);
    const widget = (name: string, size: number) =>
      `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"${name}","labels":{"team":"${name === "w1" ? "a" : "b"}"}},"spec":{"size":${size},"big":${BIG}}}`;
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      await mark("start", (await createRaw(admin, objPath(group, "widgets", ns), widget("w1", 1))).rv);
      await mark("size1", (await patch(admin, w("w1"), { spec: { size: 2 } })).rv);
      const s = await admin.request({
        method: "PATCH",
        path: `${w("w1")}/status`,
        body: JSON.stringify({ status: { phase: "Ready" } }),
        contentType: "application/merge-patch+json",
      });
      await mark(
        "ready",
        (JSON.parse(s.text) as { metadata: { resourceVersion: string } }).metadata.resourceVersion,
      );
      await createRaw(admin, objPath(group, "widgets", ns), widget("w2", 7));
      await admin.request({ method: "DELETE", path: w("w2") });
      await mark("w2gone", (r) => r.op === "delete" && r.name === "w2");
      await mark("w2back", (await createRaw(admin, objPath(group, "widgets", ns), widget("w2", 8))).rv);
      // a new base starts a second chain; the last change lands in it
      await rec.waitFor(() => rec.count("chain closed") >= 1, "a base rotation", 60_000);
      await mark("size3", (await patch(admin, w("w1"), { spec: { size: 3 } })).rv);
      rec.child.kill("SIGTERM");
      expect((await rec.exited).code, rec.log()).toBe(0);
    } finally {
      rec.child.kill("SIGKILL");
    }
  });
  afterAll(() => admin?.close());

  const history = async (...args: string[]) => {
    const r = await runCli(["history", ...args, "--storage", dir]);
    expect(r.code, r.stderr).toBe(0);
    return r;
  };

  it("lists every version with what happened and the changed paths, across two chains", async () => {
    const r = await history(`widgets.${group}/w1`, "-n", ns, "-o", "json");
    const out = JSON.parse(r.stdout) as { resource: string; items: Version[] };
    expect(out.resource).toBe(`widgets.${group}`);
    const versions = out.items.filter((i) => i.type === "version");
    expect(versions.map((v) => [v.what, v.paths])).toEqual([
      ["created", []],
      ["updated", [".spec.size"]],
      ["status-only", [".status"]],
      ["updated", [".spec.size"]],
    ]);
    expect(versions.map((v) => v.object?.spec?.size)).toEqual([1, 2, 2, 3]);
    expect(versions[2]!.object?.status?.phase).toBe("Ready");
    // the last change was recorded in the second chain
    const chainOf = (v: Version) => v.source.segment!.split("/")[2];
    expect(chainOf(versions[3]!)).not.toBe(chainOf(versions[0]!));
    expect(r.stdout).toContain(`"big": ${BIG}`);
    // times: each version between the marks around it
    expect(versions[1]!.time > marks["start"]! && versions[1]!.time < marks["size1"]!).toBe(true);
    expect(versions[3]!.time > marks["w2back"]! && versions[3]!.time < marks["size3"]!).toBe(true);
  });

  it("takes the resource as kind, and --diff prints each change with its values", async () => {
    const r = await history(`Widget/w1`, "-n", ns, "--diff");
    const lines = r.stdout.trim().split("\n");
    expect(lines.filter((l) => /^\d{4}-/.test(l)).map((l) => l.split(/\s{2,}/)[1])).toEqual([
      "created",
      "updated",
      "status only",
      "updated",
    ]);
    expect(lines).toContain("    ~ .spec.size: 1 -> 2");
    expect(lines).toContain('    + .status: {"phase":"Ready"}');
    expect(lines).toContain("    ~ .spec.size: 2 -> 3");
  });

  it("a deleted and recreated object, and --since starting with the version in effect then", async () => {
    const r = await history(`widgets/w2`, "-n", ns, "--since", marks["size1"]!, "-o", "json");
    const versions = (JSON.parse(r.stdout) as { items: Version[] }).items.filter((i) => i.type === "version");
    expect(versions.map((v) => v.what)).toEqual(["created", "deleted", "recreated"]);
    expect(versions.map((v) => v.object?.spec?.size ?? null)).toEqual([7, null, 8]);
    const late = await history(`widgets/w1`, "-n", ns, "--since", marks["ready"]!, "-o", "json");
    const first = (JSON.parse(late.stdout) as { items: Version[] }).items[0]!;
    expect([first.what, first.before]).toEqual(["status-only", true]);
  });

  it("--show prints the object as it was then, as YAML or JSON", async () => {
    const yaml = await history(`widgets/w1`, "-n", ns, "--show", marks["size1"]!);
    expect(yaml.stdout).toMatch(/^ {2}size: 2$/m);
    expect(yaml.stdout).toMatch(/^ {2}big: 9007199254740993$/m);
    const json = await history(`widgets/w1`, "-n", ns, "--show", marks["size3"]!, "-o", "json");
    expect((JSON.parse(json.stdout) as { spec: { size: number } }).spec.size).toBe(3);
    const gone = await runCli([
      "history",
      `widgets/w2`,
      "-n",
      ns,
      "--show",
      marks["w2gone"]!,
      "--storage",
      dir,
    ]);
    expect(gone.code).toBe(1);
    expect(errorLines(gone)).toEqual([expect.stringMatching(/did not exist at .* \(deleted at /)]);
  });

  it("changes: grouped by resource and namespace, with counts, paths and the filters", async () => {
    const r = await runCli([
      "changes",
      "--since",
      marks["start"]!,
      "--until",
      marks["size3"]!,
      "--storage",
      dir,
      "-o",
      "json",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      totals: Record<string, number>;
      groups: {
        resource: string;
        namespace: string;
        objects: { name: string; change: string; statusOnly: boolean; events: number; paths: string[] }[];
      }[];
    };
    expect(out.groups.map((g) => [g.resource, g.namespace])).toEqual([[`widgets.${group}`, ns]]);
    expect(out.groups[0]!.objects).toEqual([
      { name: "w1", change: "updated", statusOnly: false, events: 3, paths: [".spec.size", ".status"] },
      { name: "w2", change: "created", statusOnly: false, events: 3, paths: [] },
    ]);
    expect(out.totals).toMatchObject({ created: 1, updated: 1 });
    const status = await runCli([
      "changes",
      "--since",
      marks["size1"]!,
      "--until",
      marks["ready"]!,
      "--storage",
      dir,
    ]);
    expect(status.stdout).toMatch(/status only\s+w1\s+\(1 event\)\s+\.status/);
    const labelled = await runCli([
      "changes",
      "--since",
      marks["start"]!,
      "--storage",
      dir,
      "-l",
      "team=b",
      "-o",
      "json",
    ]);
    expect((JSON.parse(labelled.stdout) as typeof out).groups[0]!.objects.map((o) => o.name)).toEqual(["w2"]);
    const excluded = await runCli([
      "changes",
      "--since",
      marks["start"]!,
      "--storage",
      dir,
      "--exclude-resources",
      "widgets",
      "-o",
      "json",
    ]);
    expect((JSON.parse(excluded.stdout) as typeof out).groups).toEqual([]);
  });

  it("changes reads the base once as it streams, and refuses a damaged one in one line, printing nothing", async () => {
    // w1's state before its change in the second chain is in that chain's base
    const args = ["changes", "--since", marks["w2back"]!, "--until", marks["size3"]!, "-o", "json"];
    const good = await runCli([...args, "--storage", dir]);
    expect(good.code, good.stderr).toBe(0);
    const objects = (
      JSON.parse(good.stdout) as { groups: { objects: { name: string; paths: string[] }[] }[] }
    ).groups[0]!.objects;
    expect(objects).toEqual([expect.objectContaining({ name: "w1", paths: [".spec.size"] })]);
    const copy = mkdtempSync(path.join(os.tmpdir(), "crd-backup-hist-damaged-"));
    cpSync(dir, copy, { recursive: true });
    const base = readdirSync(path.join(copy, "snapshots")).sort().at(-1)!;
    const archive = path.join(
      copy,
      "snapshots",
      base,
      readdirSync(path.join(copy, "snapshots", base)).find((f) => f.startsWith("archive"))!,
    );
    const bytes = readFileSync(archive);
    const at = bytes.length >> 1;
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(archive, bytes);
    const bad = await runCli([...args, "--storage", copy]);
    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stdout).toBe("");
    expect(errorLines(bad), bad.stderr).toEqual([expect.stringContaining(`snapshot ${base}`)]);
  });

  it("bad input: one line and exit 2 (usage) or 1", async () => {
    const cases: [string[], number, RegExp][] = [
      [["history", "sprockets/x", "-n", ns], 2, /unknown resource "sprockets"/],
      [["history", `widgets/nope`, "-n", ns], 1, /no version recorded/],
      [["history", `widgets/w1`], 2, /is namespaced: give -n/],
      [
        [
          "history",
          `widgets/w1`,
          "-n",
          ns,
          "--since",
          "2001-01-01T00:00:00Z",
          "--until",
          "2001-01-02T00:00:00Z",
        ],
        2,
        /outside everything recorded/,
      ],
      [["history", `widgets/w1`, "-n", ns, "--since", "yesterday"], 2, /neither an RFC 3339 time/],
      [
        ["changes", "--since", "2001-01-01T00:00:00Z", "--until", "2001-01-02T00:00:00Z"],
        2,
        /outside everything recorded/,
      ],
      [["changes"], 2, /--since/],
    ];
    for (const [args, code, message] of cases) {
      const r = await runCli([...args, "--storage", dir]);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(code);
      expect(r.stdout).toBe("");
      expect(r.stderr, args.join(" ")).toMatch(message);
      if (code === 1 || args[0] === "history") expect(errorLines(r), args.join(" ")).toHaveLength(1);
    }
  });
});

describe("history of an encrypted journal", () => {
  it("reads it with --identity, and refuses in one line without one or with the wrong one", async () => {
    const admin = await adminClient();
    const group = `${uniqueName("histenc")}.fixtures.crd-backup.io`;
    const ns = uniqueName("histenc");
    await makeCrd(admin, group, "widgets", "Widget");
    await createNamespace(admin, ns);
    const keyDir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-key-"));
    const [key, other] = [await generateKey(), await generateKey()];
    writeFileSync(path.join(keyDir, "key.txt"), key.file, { mode: 0o600 });
    writeFileSync(path.join(keyDir, "other.txt"), other.file, { mode: 0o600 });
    const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-histenc-"));
    const rec = startRecorder(
      ["--storage", dir, "--include-groups", group, "--spool-dir", spoolDir(), "--flush-interval", "1s"],
      { CRD_BACKUP_ENCRYPT_TO: key.recipient },
    );
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      const body = (size: number) =>
        `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"e1"},"spec":{"size":${size}}}`;
      await createRaw(admin, objPath(group, "widgets", ns), body(1));
      await patch(admin, objPath(group, "widgets", ns, "e1"), { spec: { size: 2 } });
      await sleep(2_500);
      rec.child.kill("SIGTERM");
      expect((await rec.exited).code, rec.log()).toBe(0);
    } finally {
      rec.child.kill("SIGKILL");
      admin.close();
    }
    const args = ["history", `widgets/e1`, "-n", ns, "--storage", dir];
    const ok = await runCli([...args, "--identity", path.join(keyDir, "key.txt"), "-o", "json"]);
    expect(ok.code, ok.stderr).toBe(0);
    const versions = (JSON.parse(ok.stdout) as { items: Version[] }).items;
    expect(versions.map((v) => [v.what, v.object?.spec?.size])).toEqual([
      ["created", 1],
      ["updated", 2],
    ]);
    for (const extra of [[], ["--identity", path.join(keyDir, "other.txt")]]) {
      const refused = await runCli([...args, ...extra]);
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stdout).toBe("");
      expect(errorLines(refused), refused.stderr).toEqual([expect.stringMatching(/encrypted/)]);
    }
  });
});

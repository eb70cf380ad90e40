/**
 * Picking objects by name (issue 23, item 3) against the real kube-apiserver: `--name GLOB` on
 * restore, export, diff and drill through the one archive-entry filter, and the short form
 * `restore <resource>/<name> -n NS --at T` through the one restore path (dry-run, plan, report),
 * from a journal recorded by a real `crd-backup record`.
 */
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { runCli } from "../support/cli.ts";
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
} from "../support/recorder.ts";
import { freshLocal } from "../support/storage.ts";

const tmp = (what: string) => mkdtempSync(path.join(os.tmpdir(), `crd-backup-name-${what}-`));

describe("--name and the short restore form", () => {
  let admin: KubeClient;
  let group: string;
  let ns: string;
  let dir: string;
  let snapshot: string;
  const get = async (name: string) => {
    try {
      const r = await admin.request({ path: objPath(group, "widgets", ns, name) });
      return JSON.parse(r.text) as { spec: { size: number }; metadata: { uid: string } };
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return undefined;
      throw e;
    }
  };
  const widget = (name: string, size: number) =>
    `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"${name}"},"spec":{"size":${size}}}`;

  beforeAll(async () => {
    admin = await adminClient();
    group = `${uniqueName("byname")}.fixtures.crd-backup.io`;
    ns = uniqueName("byname");
    await makeCrd(admin, group, "widgets", "Widget");
    await createNamespace(admin, ns);
    for (const [name, size] of [
      ["web-1", 1],
      ["web-2", 2],
      ["db-1", 3],
    ] as const)
      await createRaw(admin, objPath(group, "widgets", ns), widget(name, size));
    const storage = freshLocal();
    dir = storage.location.replace(/^file:\/\//, "");
    const res = await runCli(["snapshot", "--storage", dir, "--include-groups", group, "-o", "json"]);
    expect(res.code, res.stderr).toBe(0);
    snapshot = (JSON.parse(res.stdout) as { id: string }).id;
  });
  afterAll(() => admin?.close());

  it("export --name writes only the objects whose names match", async () => {
    const to = path.join(tmp("export"), "out");
    const r = await runCli(["export", snapshot, "--storage", dir, "--to", to, "--name", "web-*"]);
    expect(r.code, r.stderr).toBe(0);
    const files = readdirSync(path.join(to, group, "widgets", ns)).sort();
    expect(files).toEqual(["web-1.yaml", "web-2.yaml"]);
  });

  it("diff --name compares only the named objects, on both sides", async () => {
    await patch(admin, objPath(group, "widgets", ns, "db-1"), { spec: { size: 30 } });
    const all = await runCli(["diff", snapshot, "--storage", dir, "--include-groups", group]);
    expect(all.code, all.stderr).toBe(4);
    const named = await runCli([
      "diff",
      snapshot,
      "--storage",
      dir,
      "--include-groups",
      group,
      "--name",
      "web-1,web-2",
    ]);
    expect(named.code, named.stdout + named.stderr).toBe(0);
    const db = await runCli([
      "diff",
      snapshot,
      "--storage",
      dir,
      "--include-groups",
      group,
      "--name",
      "db-?",
      "-o",
      "json",
    ]);
    expect(db.code).toBe(4);
    const out = JSON.parse(db.stdout) as { resources: { changed: { object: string }[] }[] };
    expect(out.resources.flatMap((r) => r.changed.map((c) => c.object))).toEqual([`${ns}/db-1`]);
  });

  it("restore --name puts back only the named objects; drill --name checks only them", async () => {
    for (const name of ["web-2", "db-1"])
      await admin.request({ method: "DELETE", path: objPath(group, "widgets", ns, name) });
    const r = await runCli(["restore", snapshot, "--storage", dir, "--name", "web-*", "-o", "json"]);
    expect(r.code, r.stderr).toBe(0);
    expect((await get("web-2"))?.spec.size).toBe(2);
    expect(await get("db-1")).toBeUndefined();

    const report = path.join(tmp("drill"), "drill.json");
    const d = await runCli([
      "drill",
      snapshot,
      "--storage",
      dir,
      "--namespace-prefix",
      `${uniqueName("d")}-`,
      "--name",
      "db-1",
      "--report",
      report,
      "--cleanup",
    ]);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    const drilled = JSON.parse(readFileSync(report, "utf8")) as {
      objects: { expected: number; matched: number };
    };
    expect(drilled.objects).toMatchObject({ expected: 1, matched: 1 });
  });

  it("restore <resource>/<name> -n NS --at T: that one object as it was, through the one restore path", async () => {
    const journal = freshLocal();
    const jdir = journal.location.replace(/^file:\/\//, "");
    const rec = startRecorder([
      "--storage",
      jdir,
      "--include-groups",
      group,
      "--flush-interval",
      "1s",
      "--spool-dir",
      spoolDir(),
    ]);
    let at: string;
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      const { rv } = await patch(admin, objPath(group, "widgets", ns, "web-1"), { spec: { size: 10 } });
      for (
        let i = 0;
        !allRecords([...(await readJournal(journal)).values()].flat()).some(
          (x) => x.op === "put" && x.rv === rv,
        );
        i++
      ) {
        if (i > 200) throw new Error(`not journaled; log:\n${rec.log()}`);
        await sleep(250);
      }
      await sleep(300);
      at = new Date().toISOString();
      await sleep(300);
      await patch(admin, objPath(group, "widgets", ns, "web-1"), { spec: { size: 99 } });
      await patch(admin, objPath(group, "widgets", ns, "web-2"), { spec: { size: 98 } });
      await sleep(2_000);
      rec.child.kill("SIGTERM");
      expect((await rec.exited).code, rec.log()).toBe(0);
    } finally {
      rec.child.kill("SIGKILL");
    }
    const base = ["restore", "Widget/web-1", "-n", ns, "--at", at, "--storage", jdir];
    // dry-run: the plan, nothing written
    const dry = await runCli([...base, "--dry-run", "--existing", "update", "-o", "json"]);
    expect(dry.code, dry.stderr).toBe(0);
    const planned = JSON.parse(dry.stdout) as { entries: { name: string; action: string }[] };
    expect(planned.entries.filter((e) => e.name === "web-1").length).toBe(1);
    expect(planned.entries.some((e) => e.name === "web-2")).toBe(false);
    expect((await get("web-1"))?.spec.size).toBe(99);
    // conflicts as any restore: the default policy skips an existing object
    const skipped = await runCli(base);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect((await get("web-1"))?.spec.size).toBe(99);
    const updated = await runCli([...base, "--existing", "update"]);
    expect(updated.code, updated.stderr).toBe(0);
    expect((await get("web-1"))?.spec.size).toBe(10);
    expect((await get("web-2"))?.spec.size).toBe(98); // untouched

    const cases: [string[], number, RegExp][] = [
      [
        ["restore", "widgets/nope", "-n", ns, "--at", at, "--storage", jdir],
        1,
        /widgets\.\S+ \S+\/nope is not in the state at .*: nothing was restored/,
      ],
      [
        ["restore", "sprockets/x", "-n", ns, "--at", at, "--storage", jdir],
        2,
        /unknown resource "sprockets"/,
      ],
      [["restore", "widgets/web-1", "--at", at, "--storage", jdir], 2, /is namespaced: give -n/],
      [["restore", "widgets/web-1", "-n", ns, "--storage", jdir], 2, /say when, with --at/],
      [["restore", snapshot, "-n", ns, "--storage", dir], 2, /-n goes with the short form/],
    ];
    for (const [args, code, message] of cases) {
      const r = await runCli(args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(code);
      expect(
        r.stderr
          .trim()
          .split("\n")
          .filter((l) => l.startsWith("crd-backup:")),
        args.join(" "),
      ).toEqual([expect.stringMatching(message)]);
    }
  });
});

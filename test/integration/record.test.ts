import { mkdtempSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import type { JournalRecord, PutRecord } from "../../src/journal/segment-format.ts";
import { resolveSnapshot } from "../../src/storage/snapshots.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, createNamespace, uniqueName } from "../support/cluster.ts";
import {
  allRecords,
  createRaw,
  makeCrd,
  objectId,
  objPath,
  patch,
  readJournal,
  sha,
  snapshotEntries,
  spoolDir,
  startRecorder,
} from "../support/recorder.ts";
import { freshLocal } from "../support/storage.ts";

// `crd-backup record` against the real API server: every change, in order, with the bytes a
// snapshot stores.

/** The archive entry name a put record's object has in a snapshot. */
function entryName(r: PutRecord): string {
  if (r.kind === "crd") return `crds/${r.name}.json`;
  if (r.kind === "namespace") return `namespaces/${r.name}.json`;
  return `objects/${r.group}/${r.version}/${r.plural}/${r.namespace ?? "_cluster"}/${r.name}.json`;
}

describe("crd-backup record", () => {
  let admin: KubeClient;
  beforeAll(async () => {
    admin = await adminClient();
  });
  afterAll(() => admin.close());

  it("records creates, spec and status updates and deletes across CRDs and namespaces, a CRD created and one deleted, in order, with the bytes a snapshot stores; SIGTERM flushes the last change", async () => {
    const group = `${uniqueName("rec")}.fixtures.crd-backup.io`;
    const [ns1, ns2, ns3] = [uniqueName("rec"), uniqueName("rec"), uniqueName("rec")];
    await makeCrd(admin, group, "widgets", "Widget");
    await makeCrd(admin, group, "gadgets", "Gadget");
    await makeCrd(admin, group, "doomed", "Doomed");
    await createNamespace(admin, ns1);
    await createNamespace(admin, ns2);
    const w = (ns: string, name?: string) => objPath(group, "widgets", ns, name);
    await createRaw(
      admin,
      w(ns1),
      JSON.stringify({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w0" } }),
    );
    await createRaw(
      admin,
      objPath(group, "doomed", ns1),
      JSON.stringify({ apiVersion: `${group}/v1`, kind: "Doomed", metadata: { name: "d1" } }),
    );

    const storage = freshLocal();
    const dir = storage.location.replace(/^file:\/\//, "");
    const rec = startRecorder([
      "--storage",
      dir,
      "--include-groups",
      group,
      "--spool-dir",
      spoolDir(),
      "--metrics-addr",
      "127.0.0.1:0",
    ]);
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      const step = () => sleep(400); // one change at a time, so their order across watches is known

      // int64 beyond 2^53, and a float64's text that JSON.parse would change
      await createRaw(
        admin,
        w(ns1),
        `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"w1","labels":{"a":"1"}},"spec":{"big":9007199254740993,"small":-9223372036854775808,"f":1.0e3}}`,
      );
      await step();
      await patch(admin, w(ns1, "w1"), { spec: { color: "blue" } });
      await step();
      await patch(admin, `${w(ns1, "w1")}/status`, { status: { phase: "Ready" } });
      await step();
      await createRaw(
        admin,
        objPath(group, "gadgets", ns2),
        JSON.stringify({
          apiVersion: `${group}/v1`,
          kind: "Gadget",
          metadata: { name: "g1" },
          spec: { n: 1 },
        }),
      );
      await step();
      await admin.request({ method: "DELETE", path: w(ns1, "w0") });
      await step();
      // a CRD created while recording: listed and watched without a restart
      await makeCrd(admin, group, "sprockets", "Sprocket");
      await rec.waitFor(
        () => rec.lines.some((l) => String(l["resource"]).startsWith(`sprockets.${group}`)),
        "sprockets",
      );
      await step();
      await createRaw(
        admin,
        objPath(group, "sprockets", ns2),
        JSON.stringify({ apiVersion: `${group}/v1`, kind: "Sprocket", metadata: { name: "s1" } }),
      );
      await step();
      // a CRD deleted while recording: its instances' deletes, then its own
      await admin.request({
        method: "DELETE",
        path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/doomed.${group}`,
      });
      await rec.waitFor(
        () => rec.lines.some((l) => l.msg.startsWith("no longer watching")),
        "doomed's watch to end",
      );
      await step();
      await createNamespace(admin, ns3);
      await createRaw(
        admin,
        w(ns3),
        JSON.stringify({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w2" } }),
      );

      const metrics = await rec.metrics();
      expect(metrics).toMatch(/^crd_backup_journal_events_total [1-9]\d*$/m);
      expect(metrics).toMatch(/^crd_backup_journal_segments_total [1-9]\d*$/m);
      expect(metrics).toMatch(/^crd_backup_journal_gaps_total 0$/m);
      expect(metrics).toMatch(/^crd_backup_journal_lag_seconds \d/m);
      expect(metrics).toMatch(/^crd_backup_journal_last_flush_timestamp_seconds \d/m);
      expect(metrics).toMatch(/^crd_backup_journal_event_lag_seconds_count [1-9]\d*$/m);

      // the last change is at most 5 s (the default interval) old: SIGTERM must write it
      await sleep(300);
      rec.child.kill("SIGTERM");
      expect((await rec.exited).code, rec.log()).toBe(0);
    } finally {
      rec.child.kill("SIGKILL");
    }
    expect(rec.lines.at(-1)!.msg).toBe("recorder stopped");

    const chains = await readJournal(storage);
    expect(chains.size).toBe(1);
    const [base, segments] = [...chains][0]!;
    const records = allRecords(segments!);
    const ours = (r: JournalRecord) =>
      (r.op === "put" || r.op === "delete") &&
      ((r.kind === "object" && r.group === group) ||
        (r.kind === "crd" && r.name.endsWith(group)) ||
        r.kind === "namespace");
    const changes: string[] = [];
    for (const r of records) {
      if (r.op !== "put" && r.op !== "delete") continue;
      if (!ours(r) || (r.op === "put" && r.kind !== "object")) continue;
      changes.push(`${r.op} ${r.kind === "object" ? objectId(r) : `${r.kind}/${r.name}`}`);
    }
    // the API server deletes a deleted CRD's instances first, but tears its watches down as soon
    // as the CRD is gone: an instance's delete may not reach the recorder (replay drops objects
    // whose CRD is absent, so the state is right either way); when it does, it comes first
    const d1 = changes.indexOf(`delete doomed/${ns1}/d1`);
    if (d1 >= 0) {
      expect(d1).toBeLessThan(changes.indexOf(`delete crd/doomed.${group}`));
      changes.splice(d1, 1);
    }
    expect(changes, rec.log()).toEqual([
      `put widgets/${ns1}/w1`,
      `put widgets/${ns1}/w1`,
      `put widgets/${ns1}/w1`,
      `put gadgets/${ns2}/g1`,
      `delete widgets/${ns1}/w0`,
      `put sprockets/${ns2}/s1`,
      `delete crd/doomed.${group}`,
      `put widgets/${ns3}/w2`,
    ]);
    // the CRD created later: put, then its resource listed (resync) before its first object
    const at = (pred: (r: JournalRecord) => boolean) => records.findIndex(pred);
    const sprocketsCrd = at((r) => r.op === "put" && r.kind === "crd" && r.name === `sprockets.${group}`);
    const sprocketsBegin = at((r) => r.op === "resync" && r.phase === "begin" && r.plural === "sprockets");
    const sprocketsEnd = at((r) => r.op === "resync" && r.phase === "end" && r.plural === "sprockets");
    const s1 = at((r) => r.op === "put" && r.kind === "object" && r.name === "s1");
    expect(sprocketsCrd).toBeGreaterThanOrEqual(0);
    expect(sprocketsBegin).toBeGreaterThan(sprocketsCrd);
    expect(sprocketsEnd).toBeGreaterThan(sprocketsBegin);
    expect(s1).toBeGreaterThan(sprocketsBegin);
    expect(at((r) => r.op === "put" && r.kind === "namespace" && r.name === ns3)).toBeGreaterThan(
      sprocketsEnd,
    );

    // spec then status: three versions of w1, resourceVersions rising
    const w1 = records.filter((r): r is PutRecord & { seq: number } => r.op === "put" && r.name === "w1");
    const w1Bodies = w1.map((r) => JSON.parse(r.body.toString()) as { spec: object; status?: object });
    expect(w1Bodies[0]!.spec).not.toHaveProperty("color");
    expect(w1Bodies[0]).not.toHaveProperty("status");
    expect(w1Bodies.slice(1)).toMatchObject([
      { spec: { color: "blue" } },
      { spec: { color: "blue" }, status: { phase: "Ready" } },
    ]);
    expect(new Set(w1.map((r) => r.rv)).size).toBe(3);
    // lossless: int64 values beyond 2^53, as the API server sends them
    expect(w1[0]!.body.toString()).toContain('"big":9007199254740993,');
    expect(w1[0]!.body.toString()).toContain('"small":-9223372036854775808}');
    // server-owned metadata is gone, as in a snapshot
    expect(w1[0]!.body.toString()).not.toMatch(/resourceVersion|creationTimestamp|managedFields|"uid"/);

    // times: nondecreasing across the chain, each within its segment's window
    const times = records.map((r) => Date.parse(r.t));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(segments![0]!.key.from.toISOString()).toBe(
      (await resolveSnapshot(storage, base!)).manifest.finishedAt,
    );
    // the SIGTERM's final segment holds the last change
    const last = segments!.at(-1)!;
    expect(last.records.some((r) => r.op === "put" && r.name === "w2")).toBe(true);
    expect(Object.keys(last.trailer.rvs).sort()).toEqual(
      ["crds", "namespaces", `gadgets.${group}/v1`, `sprockets.${group}/v1`, `widgets.${group}/v1`].sort(),
    );

    // a snapshot now stores every object, CRD and namespace with the bytes the journal last put
    const snap = await runCli(["snapshot", "--storage", dir, "--include-groups", group, "-o", "json"]);
    expect(snap.code, snap.stderr).toBe(0);
    const id = (JSON.parse(snap.stdout) as { id: string }).id;
    const entries = await snapshotEntries(storage, id);
    const lastPut = new Map<string, string>();
    const deleted = new Set<string>();
    for (const r of records) {
      if (r.op === "put") {
        lastPut.set(entryName(r), sha(r.body));
        deleted.delete(entryName(r));
      } else if (r.op === "delete") deleted.add(entryName(r as unknown as PutRecord));
    }
    let compared = 0;
    for (const [name, digest] of entries) {
      if (name.startsWith("namespaces/") && ![ns1, ns2, ns3].some((n) => name === `namespaces/${n}.json`))
        continue;
      expect(lastPut.get(name), name).toBe(digest);
      compared++;
    }
    expect(compared).toBe(entries.size);
    // ...and nothing the journal holds as live is missing from it
    for (const name of lastPut.keys()) {
      if (deleted.has(name) || !name.includes(group)) continue;
      expect(entries.has(name), name).toBe(true);
    }

    // and the point-in-time side reads it: `export --at now` holds exactly the live objects
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), "crd-backup-at-")), "now");
    const exported = await runCli(["export", "--at", "now", "--storage", dir, "-o", "json", "--to", out]);
    expect(exported.code, exported.stderr).toBe(0);
    const files = readdirSync(path.join(out, group), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.relative(out, path.join(e.parentPath, e.name)))
      .sort();
    const objects = [...entries.keys()]
      .filter((n) => n.startsWith("objects/"))
      .map((n) => {
        const [, g, , plural, ns, file] = n.split("/");
        return `${g}/${plural}/${ns}/${file}`;
      })
      .sort();
    expect(files).toEqual(objects);
  });

  it("a new base every --base-interval starts a new chain; the old one ends after the new base finished, so their windows overlap, and no change falls between", async () => {
    const group = `${uniqueName("recbase")}.fixtures.crd-backup.io`;
    const ns = uniqueName("recbase");
    await makeCrd(admin, group, "widgets", "Widget");
    await createNamespace(admin, ns);
    const storage = freshLocal();
    const dir = storage.location.replace(/^file:\/\//, "");
    const rec = startRecorder([
      "--storage",
      dir,
      "--include-groups",
      group,
      "--spool-dir",
      spoolDir(),
      "--flush-interval",
      "1s",
      "--base-interval",
      "12s",
    ]);
    const names: string[] = [];
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      for (let i = 0; rec.count("chain closed") < 2; i++) {
        if (i > 200) throw new Error(`no second rotation; log:\n${rec.log()}`);
        await createRaw(
          admin,
          objPath(group, "widgets", ns),
          JSON.stringify({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: `w${i}` } }),
        );
        names.push(`w${i}`);
        await sleep(250);
      }
      await sleep(1_500);
      rec.child.kill("SIGTERM");
      expect((await rec.exited).code, rec.log()).toBe(0);
    } finally {
      rec.child.kill("SIGKILL");
    }
    const chains = [...(await readJournal(storage))].sort(([a], [b]) => (a < b ? -1 : 1));
    expect(chains.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < chains.length; i++) {
      const [base] = chains[i]!;
      const finishedAt = Date.parse((await resolveSnapshot(storage, base)).manifest.finishedAt);
      const previous = chains[i - 1]![1];
      expect(previous.at(-1)!.key.to.getTime()).toBeGreaterThanOrEqual(finishedAt);
      expect(chains[i]![1][0]!.key.from.getTime()).toBe(finishedAt);
    }
    // every change is in some chain; one made after a base finished is in that base's chain
    const recorded = new Set(
      chains.flatMap(([, segments]) =>
        allRecords(segments).flatMap((r) => (r.op === "put" && r.kind === "object" ? [r.name] : [])),
      ),
    );
    expect(names.filter((n) => !recorded.has(n))).toEqual([]);
    expect(chains.flatMap(([, segments]) => allRecords(segments)).filter((r) => r.op === "gap")).toEqual([]);
  });
});

import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import type { GapRecord, JournalRecord, PutRecord } from "../../src/journal/segment-format.ts";
import { compactEtcd } from "../env/compact.ts";
import { startReplica, startServer, stopServer } from "../env/environment.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, createNamespace, testEnv, uniqueName } from "../support/cluster.ts";
import { s3Backend } from "../support/faults.ts";
import {
  allRecords,
  createRaw,
  makeCrd,
  objectId,
  objPath,
  patch,
  readJournal,
  replayObjects,
  sha,
  snapshotEntries,
  spoolDir,
  startRecorder,
  type RunningRecorder,
} from "../support/recorder.ts";
import { freshLocal } from "../support/storage.ts";

// `crd-backup record` when things go wrong: killed, its watches expired, its storage gone.

/**
 * Creates widget-0, widget-1, ... every `everyMs` until stopped, once the recorder follows (what
 * exists before its base is in the base, not the journal); remembers when each was acknowledged.
 */
function writer(admin: KubeClient, group: string, ns: string, everyMs: number, rec: RunningRecorder) {
  const acked: { name: string; at: number; rv: string }[] = [];
  let stopped = false;
  const done = (async () => {
    await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
    for (let i = 0; !stopped; i++) {
      const name = `widget-${i}`;
      const { rv } = await createRaw(
        admin,
        objPath(group, "widgets", ns),
        JSON.stringify({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name }, spec: { i } }),
      );
      acked.push({ name, at: Date.now(), rv });
      await sleep(everyMs);
    }
  })();
  return {
    acked,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

const putNames = (records: JournalRecord[]) =>
  new Set(records.filter((r): r is PutRecord => r.op === "put" && r.kind === "object").map((r) => r.name));

const gaps = (records: JournalRecord[]) => records.filter((r): r is GapRecord => r.op === "gap");

async function stopRecorder(rec: RunningRecorder): Promise<void> {
  rec.child.kill("SIGTERM");
  expect((await rec.exited).code, rec.log()).toBe(0);
}

describe("crd-backup record under faults", () => {
  let admin: KubeClient;
  beforeAll(async () => {
    admin = await adminClient();
  });
  afterAll(() => admin.close());

  it("SIGKILL under continuous writes: a restart continues the chain (hash chain intact, a gap for the downtime), nothing is lost, and the recovery point is within the flush interval", async () => {
    const group = `${uniqueName("reckill")}.fixtures.crd-backup.io`;
    const ns = uniqueName("reckill");
    await makeCrd(admin, group, "widgets", "Widget");
    await createNamespace(admin, ns);
    const storage = freshLocal();
    const dir = storage.location.replace(/^file:\/\//, "");
    const spool = spoolDir();
    const args = ["--storage", dir, "--include-groups", group, "--spool-dir", spool]; // --flush-interval 5s

    const first = startRecorder(args);
    let second: RunningRecorder | undefined;
    const writes = writer(admin, group, ns, 100, first);
    let killedAt: number;
    let restartedAt: number;
    try {
      await first.waitFor(() => first.count("following every resource") > 0, "the recorder to follow");
      await sleep(7_500); // at least one flush, and the kill lands inside an interval
      first.child.kill("SIGKILL");
      killedAt = Date.now();
      expect((await first.exited).signal).toBe("SIGKILL");
      await sleep(3_000); // writes go on while no recorder runs
      restartedAt = Date.now();
      second = startRecorder(args);
      await second.waitFor(() => second!.count("continuing the chain") > 0, "the chain to be continued");
      await second.waitFor(() => second!.count("gap recorded") > 0, "the downtime's gap");
      await sleep(2_000);
    } finally {
      await writes.stop();
      first.child.kill("SIGKILL");
    }
    await sleep(500);
    await stopRecorder(second!);

    const chains = await readJournal(storage); // throws on a broken hash chain
    expect(chains.size).toBe(1);
    const segments = [...chains.values()][0]!;
    const records = allRecords(segments);
    // the downtime: one gap, from the last segment the killed recorder stored to after the restart
    const beforeKill = segments.filter((s) => s.key.to.getTime() <= killedAt!);
    const lastBefore = beforeKill.at(-1)!;
    const [gap, ...more] = gaps(records);
    expect(more).toEqual([]);
    expect(gap).toMatchObject({ from: lastBefore.key.to.toISOString(), resources: ["*"] });
    expect(Date.parse(gap!.to)).toBeGreaterThan(restartedAt!);
    expect(segments[beforeKill.length]!.key.from).toEqual(lastBefore.key.to);
    expect(segments[beforeKill.length]!.key.gap || segments.some((s) => s.key.gap)).toBe(true);

    // nothing lost: the resumed watches delivered what the unflushed interval and the downtime held
    const recorded = putNames(records);
    expect(writes.acked.filter((w) => !recorded.has(w.name)).map((w) => w.name)).toEqual([]);

    // the recovery point: how old the newest durable write was when the recorder died
    const durable = putNames(beforeKill.flatMap((s) => s.records));
    const ackedBeforeKill = writes.acked.filter((w) => w.at <= killedAt!);
    const lastDurable = ackedBeforeKill.filter((w) => durable.has(w.name)).at(-1)!;
    const lost = ackedBeforeKill.filter((w) => w.at > lastDurable.at);
    const rpo = (killedAt! - lastDurable.at) / 1000;
    console.log(
      `recovery point at SIGKILL: ${rpo.toFixed(2)} s (flush interval 5 s); ${lost.length} of ${ackedBeforeKill.length} writes not yet durable`,
    );
    expect(rpo).toBeLessThanOrEqual(5 + 2.5);
  });

  it("watches expired by compaction while the API server was away: re-listed, a gap recorded, and the final state right", async () => {
    const replica = await startReplica(testEnv(), "kube-apiserver");
    const group = `${uniqueName("rec410")}.fixtures.crd-backup.io`;
    const ns = uniqueName("rec410");
    await makeCrd(admin, group, "widgets", "Widget");
    await createNamespace(admin, ns);
    const w = (name?: string) => objPath(group, "widgets", ns, name);
    for (const name of ["o1", "o2", "o3"]) {
      await createRaw(
        admin,
        w(),
        JSON.stringify({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name } }),
      );
    }
    const storage = freshLocal();
    const dir = storage.location.replace(/^file:\/\//, "");
    const rec = startRecorder(
      ["--storage", dir, "--include-groups", group, "--spool-dir", spoolDir(), "--flush-interval", "1s"],
      { KUBECONFIG: replica.kubeconfig },
    );
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      await patch(admin, w("o1"), { spec: { v: 1 } });
      await sleep(1_500);
      await stopServer(replica, "kube-apiserver");
      const stoppedAt = Date.now(); // before the first change the recorder cannot see
      // meanwhile, through the other API server: changes, then etcd forgets the history
      await patch(admin, w("o2"), { spec: { v: 2 } });
      await patch(admin, w("o2"), { spec: { v: 3 } });
      await admin.request({ method: "DELETE", path: w("o3") });
      await createRaw(
        admin,
        w(),
        JSON.stringify({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "o4" } }),
      );
      await compactEtcd(testEnv().etcdUrl);
      await startServer(replica, "kube-apiserver");
      await rec.waitFor(
        () =>
          rec.lines.some(
            (l) => l.msg === "gap recorded" && String(l["resources"]).includes(`widgets.${group}`),
          ),
        "the widgets' gap",
        120_000,
      );
      await patch(admin, w("o4"), { spec: { v: 4 } });
      await sleep(1_500);
      await stopRecorder(rec);

      const segments = [...(await readJournal(storage)).values()][0]!;
      const records = allRecords(segments);
      const gap = gaps(records).find((g) => g.resources.includes(`widgets.${group}`))!;
      expect(gap.reason).toMatch(/410 Gone/);
      expect(Date.parse(gap.from)).toBeLessThanOrEqual(stoppedAt);
      expect(segments.some((s) => s.key.gap)).toBe(true);
      const resync = records.findIndex(
        (r) => r.op === "resync" && r.phase === "begin" && r.group === group && Date.parse(r.t) > stoppedAt,
      );
      expect(resync).toBeGreaterThan(0);
      expect(records.indexOf(gap as (typeof records)[number])).toBeGreaterThan(resync);

      // the final state: what a snapshot now stores, object for object, byte for byte
      const state = replayObjects(records, group, new Map());
      expect([...state.keys()].sort()).toEqual(
        ["o1", "o2", "o4"].map((n) => objectId({ plural: "widgets", namespace: ns, name: n })),
      );
      const snap = await runCli(["snapshot", "--storage", dir, "--include-groups", group, "-o", "json"]);
      expect(snap.code, snap.stderr).toBe(0);
      const entries = await snapshotEntries(storage, (JSON.parse(snap.stdout) as { id: string }).id);
      for (const [key, body] of state) {
        const [, , name] = key.split("/");
        expect(entries.get(`objects/${group}/v1/widgets/${ns}/${name}.json`), key).toBe(sha(body));
      }
    } finally {
      rec.child.kill("SIGKILL");
      await stopServer(replica, "kube-apiserver").catch(() => undefined);
    }
  });

  it("MinIO stopped for 30 s while changes go on: segments wait in the spool, lag is reported, nothing is lost, and they are uploaded once it is back", async () => {
    const replica = await startReplica(testEnv(), "minio");
    const group = `${uniqueName("recs3")}.fixtures.crd-backup.io`;
    const ns = uniqueName("recs3");
    await makeCrd(admin, group, "widgets", "Widget");
    await createNamespace(admin, ns);
    const prefix = uniqueName("recs3");
    const rec = startRecorder([
      "--storage",
      `s3://${replica.s3.bucket}/${prefix}`,
      "--s3-endpoint",
      replica.s3.endpoint,
      "--include-groups",
      group,
      "--spool-dir",
      spoolDir(),
      "--flush-interval",
      "1s",
      "--metrics-addr",
      "127.0.0.1:0",
    ]);
    const metric = async (name: string) => {
      const m = new RegExp(`^${name} (\\S+)$`, "m").exec(await rec.metrics());
      return m ? Number(m[1]) : NaN;
    };
    const writes = writer(admin, group, ns, 250, rec);
    let maxLag = 0;
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      await sleep(3_000);
      await stopServer(replica, "minio");
      const stoppedAt = Date.now();
      while (Date.now() - stoppedAt < 30_000) {
        await sleep(2_000);
        maxLag = Math.max(maxLag, await metric("crd_backup_journal_lag_seconds"));
      }
      expect(await metric("crd_backup_journal_spool_bytes")).toBeGreaterThan(0);
      expect(maxLag).toBeGreaterThan(20);
      await startServer(replica, "minio");
      const back = Date.now();
      while ((await metric("crd_backup_journal_spool_bytes")) > 0) {
        if (Date.now() - back > 60_000) throw new Error(`the spool did not drain; log:\n${rec.log()}`);
        await sleep(500);
      }
      console.log(
        `MinIO down 30 s: journal lag peaked at ${maxLag.toFixed(1)} s; spool drained ${((Date.now() - back) / 1000).toFixed(1)} s after MinIO was back`,
      );
      await sleep(2_000);
      expect(await metric("crd_backup_journal_lag_seconds")).toBeLessThan(5);
    } finally {
      await writes.stop();
    }
    try {
      await sleep(1_500);
      await stopRecorder(rec);
      const storage = s3Backend(replica.s3, prefix);
      const chains = await readJournal(storage);
      storage.close();
      expect(chains.size).toBe(1);
      const records = allRecords([...chains.values()][0]!);
      expect(gaps(records)).toEqual([]);
      const recorded = putNames(records);
      expect(writes.acked.length).toBeGreaterThan(100);
      expect(writes.acked.filter((w) => !recorded.has(w.name)).map((w) => w.name)).toEqual([]);
      expect(rec.lines.some((l) => l.msg === "storage unreachable: segments wait in the spool")).toBe(true);
    } finally {
      rec.child.kill("SIGKILL");
      await stopServer(replica, "minio").catch(() => undefined);
    }
  });

  it("a spool too small for the outage: recording stops when it is full, and once storage is back everything is listed again, with a gap, and the chain goes on", async () => {
    const replica = await startReplica(testEnv(), "minio");
    const group = `${uniqueName("recfull")}.fixtures.crd-backup.io`;
    const ns = uniqueName("recfull");
    await makeCrd(admin, group, "widgets", "Widget");
    await createNamespace(admin, ns);
    const prefix = uniqueName("recfull");
    const rec = startRecorder([
      "--storage",
      `s3://${replica.s3.bucket}/${prefix}`,
      "--s3-endpoint",
      replica.s3.endpoint,
      "--include-groups",
      group,
      "--spool-dir",
      spoolDir(),
      "--spool-size",
      "3Ki",
      "--flush-interval",
      "1s",
    ]);
    const writes = writer(admin, group, ns, 200, rec);
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      await sleep(2_000);
      await stopServer(replica, "minio");
      const stoppedAt = Date.now();
      await rec.waitFor(
        () => rec.count("spool full: recording stops until storage is back") > 0,
        "the spool to fill",
      );
      await sleep(2_000);
      await startServer(replica, "minio");
      await rec.waitFor(() => rec.count("gap recorded") > 0, "the overflow's gap");
      await sleep(2_000);
      await writes.stop();
      await sleep(1_500);
      await stopRecorder(rec);

      const storage = s3Backend(replica.s3, prefix);
      const chains = await readJournal(storage); // one chain, unbroken
      storage.close();
      expect(chains.size).toBe(1);
      const records = allRecords([...chains.values()][0]!);
      const [gap, ...more] = gaps(records);
      expect(more).toEqual([]);
      expect(gap).toMatchObject({ resources: ["*"], reason: expect.stringMatching(/spool overflowed/) });
      expect(Date.parse(gap!.from)).toBeGreaterThan(stoppedAt - 5_000);
      // everything listed again before the gap closed
      const relist = records.findIndex((r) => r.op === "resync" && r.phase === "end" && r.group === group);
      expect(relist).toBeGreaterThanOrEqual(0);
      expect(records.indexOf(gap as (typeof records)[number])).toBeGreaterThan(relist);
      // nothing lost in the end: every write is in the journal, live or in the re-list
      const recorded = putNames(records);
      expect(writes.acked.filter((w) => !recorded.has(w.name)).map((w) => w.name)).toEqual([]);
      const state = replayObjects(records, group, new Map());
      expect(state.size).toBe(writes.acked.length);
    } finally {
      await writes.stop();
      rec.child.kill("SIGKILL");
      await stopServer(replica, "minio").catch(() => undefined);
    }
  });
});

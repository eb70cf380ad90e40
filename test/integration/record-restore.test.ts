/**
 * Continuous backup end to end (issue 13): a real `crd-backup record` follows the cluster while
 * the test creates, updates (spec and status) and deletes objects across several CRDs and
 * namespaces, creates a CRD and deletes one; then `restore --at T` into a second, empty cluster
 * must give exactly the state the source had at T, for several T. And a recorder killed with
 * SIGKILL under continuous writes loses only the changes of its last flush interval.
 */
import { mkdtempSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { JOURNAL_PREFIX } from "../../src/journal/segment-key.ts";
import { parseJson, type JsonObject } from "../../src/json/json.ts";
import { startEnvironment, stopEnvironment, type EnvironmentInfo } from "../env/environment.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, clientFor, createNamespace, uniqueName } from "../support/cluster.ts";
import { liveState, type LiveState } from "../support/compare.ts";
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
} from "../support/recorder.ts";
import { freshLocal } from "../support/storage.ts";

const BIG = "9007199254740993"; // 2^53 + 1: a float64 would round it
const CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const KINDS: Record<string, string> = {
  widgets: "Widget",
  gadgets: "Gadget",
  doomed: "Doomed",
  sprockets: "Sprocket",
};
const pluralOf = (kind: string) => Object.entries(KINDS).find(([, k]) => k === kind)![0];

/** What a cluster holds of the test's group: CRDs, the namespaces holding objects (with their labels), objects. */
interface ClusterState {
  crds: string[];
  namespaces: Map<string, Record<string, string>>;
  objects: LiveState;
}

async function exists(client: KubeClient, pathname: string): Promise<boolean> {
  try {
    await client.request({ path: pathname });
    return true;
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 404) return false;
    throw e;
  }
}

async function groupCrds(client: KubeClient, group: string): Promise<string[]> {
  const list = parseJson((await client.request({ path: CRDS })).text) as { items: JsonObject[] };
  return list.items
    .filter((c) => (c["spec"] as JsonObject)["group"] === group)
    .map((c) => String((c["metadata"] as JsonObject)["name"]))
    .sort();
}

async function deleteCrd(client: KubeClient, name: string): Promise<void> {
  await client.request({ method: "DELETE", path: `${CRDS}/${name}` });
  for (let i = 0; await exists(client, `${CRDS}/${name}`); i++) {
    if (i > 300) throw new Error(`CRD ${name} not deleted`);
    await sleep(200);
  }
}

/** Namespace labels, without the one the API server sets to the name. */
async function namespaceLabels(client: KubeClient, ns: string): Promise<Record<string, string>> {
  const body = parseJson((await client.request({ path: `/api/v1/namespaces/${ns}` })).text) as JsonObject;
  const labels = { ...((body["metadata"] as JsonObject)["labels"] as Record<string, string> | undefined) };
  delete labels["kubernetes.io/metadata.name"];
  return labels;
}

/** The state of `group` in `client`, in namespaces `names` (reported as `back(name)`). */
async function clusterState(
  client: KubeClient,
  group: string,
  names: string[],
  back: (s: string) => string = (s) => s,
): Promise<ClusterState> {
  const crds = await groupCrds(client, group);
  const raw = await liveState(
    client,
    group,
    crds.map((c) => [c.split(".")[0]!, "v1"]),
    { withStatus: true, namespaces: names },
  );
  const objects: LiveState = { forms: new Map(), uids: new Map(), owners: new Map() };
  for (const [k, v] of raw.forms) objects.forms.set(back(k), back(v));
  for (const [k, v] of raw.uids) objects.uids.set(back(k), v);
  for (const [k, v] of raw.owners) objects.owners.set(back(k), v);
  const holding = new Set([...raw.forms.keys()].map((k) => k.split(" ")[1]!.split("/")[0]!));
  const namespaces = new Map<string, Record<string, string>>();
  for (const ns of [...holding].sort()) namespaces.set(back(ns), await namespaceLabels(client, ns));
  return { crds, namespaces, objects };
}

describe("record, then restore --at", () => {
  let admin: KubeClient;
  let target: EnvironmentInfo | undefined;
  let targetAdmin: KubeClient | undefined;
  let targetStarting: Promise<EnvironmentInfo> | undefined;

  beforeAll(async () => {
    admin = await adminClient();
  });
  afterAll(async () => {
    admin?.close();
    targetAdmin?.close();
    if (!target && targetStarting) target = await targetStarting.catch(() => undefined);
    if (target) await stopEnvironment(target);
  });

  it("restore --at T into an empty cluster gives exactly the state at T: objects, status, namespaces, CRDs created and deleted meanwhile, owners relinked", async () => {
    // the second cluster starts while the first is recorded
    const started = Date.now();
    targetStarting = startEnvironment({ log: () => {} });
    targetStarting
      .then(() => console.log(`target cluster started in ${(Date.now() - started) / 1000} s`))
      .catch(() => {});

    const group = `${uniqueName("rr")}.fixtures.crd-backup.io`;
    const [ns1, ns2, ns3] = [uniqueName("rr1"), uniqueName("rr2"), uniqueName("rr3")];
    const mine = [ns1, ns2, ns3];
    for (const plural of ["widgets", "gadgets", "doomed"])
      await makeCrd(admin, group, plural, KINDS[plural]!);
    await admin.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: JSON.stringify({
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: ns1, labels: { team: "one" } },
      }),
    });
    await createNamespace(admin, ns2);

    const at = (plural: string, ns: string, name?: string) => objPath(group, plural, ns, name);
    /** The resourceVersions each phase's writes returned (phase 0: before the recorder). */
    const phases: Set<string>[] = [new Set()];
    const track = async (p: Promise<{ rv: string }>) => {
      const { rv } = await p;
      phases.at(-1)!.add(rv);
      return rv;
    };
    const create = async (plural: string, ns: string, name: string, rest = "", owner?: string) => {
      let refs = "";
      if (owner) {
        const o = parseJson((await admin.request({ path: at("widgets", ns, owner) })).text) as JsonObject;
        const uid = String((o["metadata"] as JsonObject)["uid"]);
        refs = `,"ownerReferences":[{"apiVersion":"${group}/v1","kind":"Widget","name":"${owner}","uid":"${uid}"}]`;
      }
      return track(
        createRaw(
          admin,
          at(plural, ns),
          `{"apiVersion":"${group}/v1","kind":"${KINDS[plural]}","metadata":{"name":"${name}"${refs}}${rest}}`,
        ),
      );
    };
    const update = (pathname: string, body: object) => track(patch(admin, pathname, body));
    const status = (plural: string, ns: string, name: string, s: object) =>
      update(`${at(plural, ns, name)}/status`, { status: s });

    // the base: what exists when the recorder starts
    await create("widgets", ns1, "owner", `,"spec":{"size":1}`);
    await status("widgets", ns1, "owner", { phase: "Ready", observed: 1 });
    await create("widgets", ns1, "w1", `,"spec":{"size":2,"big":${BIG}}`);
    await create("widgets", ns2, "w2", `,"spec":{"size":3}`);
    await create("gadgets", ns1, "g1", `,"spec":{"n":1}`, "owner");
    await create("doomed", ns2, "d1", `,"spec":{"n":1}`);

    const storage = freshLocal();
    const dir = storage.location.replace(/^file:\/\//, "");
    const rec = startRecorder([
      "--storage",
      dir,
      "--include-groups",
      group,
      "--flush-interval",
      "1s",
      "--spool-dir",
      spoolDir(),
    ]);
    const expected: [string, ClusterState][] = [];
    const times: number[] = [];
    /** Waits until a put record of resourceVersion `rv` is in a stored segment. */
    const journaled = async (rv: string) => {
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(250)) {
        const chains = await readJournal(storage).catch(() => new Map<string, JournalSegment[]>());
        for (const segments of chains.values())
          if (allRecords(segments).some((r) => r.op === "put" && r.rv === rv)) return;
      }
      throw new Error(`the change at resourceVersion ${rv} was not journaled; log:\n${rec.log()}`);
    };
    /**
     * Record times are receipt times: T is taken once the phase's last change is journaled, and a
     * moment after (the journal is checked at the end for every change being on its side of T).
     */
    const mark = async (label: string, last: string) => {
      await journaled(last);
      await sleep(500);
      times.push(Date.now());
      expected.push([
        label === "now" ? "now" : new Date(times.at(-1)!).toISOString(),
        await clusterState(admin, group, mine),
      ]);
      await sleep(200);
      phases.push(new Set());
    };
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      phases.push(new Set());

      // phase 1: spec and status updates, creates (one owned), a delete, across namespaces
      await update(at("widgets", ns1, "w1"), { spec: { color: "blue" } });
      await status("widgets", ns1, "w1", { phase: "Pending" });
      await create("widgets", ns2, "w3", `,"spec":{"size":4}`);
      await create("gadgets", ns2, "g2", `,"spec":{"n":2}`, "w3");
      await admin.request({ method: "DELETE", path: at("widgets", ns2, "w2") });
      await mark("t1", await create("doomed", ns1, "d2", `,"spec":{"n":2}`));

      // phase 2: a CRD created while recording, a new namespace with objects (one owned, with
      // status), a namespace's labels changed, a spec update
      await makeCrd(admin, group, "sprockets", KINDS["sprockets"]!);
      await rec.waitFor(
        () => rec.lines.some((l) => String(l["resource"]).startsWith(`sprockets.${group}`)),
        "sprockets to be followed",
      );
      await admin.request({
        method: "POST",
        path: "/api/v1/namespaces",
        body: JSON.stringify({
          apiVersion: "v1",
          kind: "Namespace",
          metadata: { name: ns3, labels: { team: "three" } },
        }),
      });
      await create("widgets", ns3, "w4", `,"spec":{"size":5}`);
      await create("sprockets", ns3, "s1", `,"spec":{"teeth":12}`, "w4");
      await status("sprockets", ns3, "s1", { phase: "Turning" });
      await update(`/api/v1/namespaces/${ns1}`, { metadata: { labels: { team: "uno" } } });
      await mark("t2", await update(at("widgets", ns2, "w3"), { spec: { size: 40 } }));

      // phase 3: a CRD deleted while recording (its objects go with it), a delete, a status update, a create
      await admin.request({ method: "DELETE", path: `${CRDS}/doomed.${group}` });
      for (let i = 0; await exists(admin, `${CRDS}/doomed.${group}`); i++) {
        if (i > 300) throw new Error("doomed CRD not deleted");
        await sleep(200);
      }
      await admin.request({ method: "DELETE", path: at("gadgets", ns1, "g1") });
      await status("widgets", ns1, "w1", { phase: "Done" });
      await mark("t3", await create("widgets", ns2, "w5", `,"spec":{"size":6}`));

      // phase 4: the last changes, then SIGTERM (which writes them)
      await update(at("sprockets", ns3, "s1"), { spec: { teeth: 14 } });
      await admin.request({ method: "DELETE", path: at("widgets", ns2, "w5") });
      await mark("now", await create("widgets", ns1, "w6", `,"spec":{"size":7}`));
      rec.child.kill("SIGTERM");
      expect((await rec.exited).code, rec.log()).toBe(0);
    } finally {
      rec.child.kill("SIGKILL");
    }

    // every change was received in its phase: on the right side of each T
    const first = new Map<string, number>();
    for (const segments of (await readJournal(storage)).values())
      for (const r of allRecords(segments))
        if (r.op === "put" && !first.has(r.rv)) first.set(r.rv, Date.parse(r.t));
    for (const [k, rvs] of phases.entries()) {
      if (k === 0) continue;
      for (const rv of rvs) {
        const t = first.get(rv);
        expect(t, `phase ${k}'s change at resourceVersion ${rv} is journaled`).toBeDefined();
        if (k > 1) expect(t!, `phase ${k}'s change at ${rv}`).toBeGreaterThan(times[k - 2]!);
        expect(t!, `phase ${k}'s change at ${rv} received before its T`).toBeLessThanOrEqual(times[k - 1]!);
      }
    }

    // the phases' states differ from each other, so each T is a real test
    const e = new Map(expected);
    expect(new Set(expected.map(([, s]) => JSON.stringify([...s.objects.forms]))).size).toBe(4);
    expect(expected[0]![1].crds).toEqual([`doomed.${group}`, `gadgets.${group}`, `widgets.${group}`]);
    expect(expected[1]![1].crds).toContain(`sprockets.${group}`);
    expect(expected[2]![1].crds).not.toContain(`doomed.${group}`);
    expect(e.get("now")!.objects.owners.get(`sprockets ${ns3}/s1`)).toHaveLength(1);

    const waitStart = Date.now();
    target = await targetStarting;
    targetAdmin = await clientFor(target.kubeconfig);
    console.log(`waited ${(Date.now() - waitStart) / 1000} s for the target cluster`);

    for (const [T, want] of expected) {
      // the target is emptied of the group between points: its CRDs deleted (their objects go
      // with them); namespaces cannot be deleted without a controller-manager, so each point is
      // restored into fresh ones
      for (const crd of await groupCrds(targetAdmin, group)) await deleteCrd(targetAdmin, crd);
      const tag = uniqueName("t");
      const mapped = mine.map((ns) => `${tag}-${ns}`);
      const back = (s: string) => mapped.reduce((acc, m, i) => acc.replaceAll(m, mine[i]!), s);
      const t0 = Date.now();
      const res = await runCli([
        "restore",
        "--at",
        T,
        "--storage",
        dir,
        "--kubeconfig",
        target.kubeconfig,
        "--restore-status",
        ...mine.flatMap((ns, i) => ["--namespace-map", `${ns}=${mapped[i]}`]),
      ]);
      expect(res.code, `${T}: ${res.stderr}`).toBe(0);
      expect(res.stderr, T).not.toMatch(/error/i);
      console.log(`restore --at ${T}: ${(Date.now() - t0) / 1000} s: ${res.stdout.trim().split("\n")[0]}`);
      const got = await clusterState(targetAdmin, group, mapped, back);
      expect(got.crds, T).toEqual(want.crds);
      expect([...got.objects.forms.keys()].sort(), T).toEqual([...want.objects.forms.keys()].sort());
      expect(got.objects.forms, T).toEqual(want.objects.forms);
      expect(got.namespaces, T).toEqual(want.namespaces);
      // owners relinked: each reference names the restored owner's uid, not the source's
      let refs = 0;
      for (const [key, owners] of got.objects.owners) {
        const ns = key.split(" ")[1]!.split("/")[0]!;
        expect(owners.length, `${T} ${key}`).toBe(want.objects.owners.get(key)!.length);
        for (const [kind, name, uid] of owners) {
          refs++;
          expect(uid, `${T} ${key}`).toBe(got.objects.uids.get(`${pluralOf(kind)} ${ns}/${name}`));
          expect(uid, `${T} ${key}`).not.toBe(want.objects.uids.get(`${pluralOf(kind)} ${ns}/${name}`));
        }
      }
      expect(refs, T).toBeGreaterThan(0);
    }
    // int64 beyond 2^53 byte for byte
    expect(e.get("now")!.objects.forms.get(`widgets ${ns1}/w1`)).toContain(`"big":${BIG}`);
  }, 240_000);

  it("SIGKILL under continuous writes: restore --at now lacks only the changes of the last flush interval", async () => {
    const group = `${uniqueName("rk")}.fixtures.crd-backup.io`;
    const ns = uniqueName("rk");
    await makeCrd(admin, group, "ticks", "Tick");
    await createNamespace(admin, ns);
    const storage = freshLocal();
    const dir = storage.location.replace(/^file:\/\//, "");
    // the default flush interval, 5 s
    const FLUSH_MS = 5000;
    const rec = startRecorder(["--storage", dir, "--include-groups", group, "--spool-dir", spoolDir()]);
    const writes: { name: string; acked: number }[] = [];
    let killedAt = 0;
    let flushedAt: number | undefined;
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      let stop = false;
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          const name = `tick-${String(i).padStart(5, "0")}`;
          const next = Date.now() + 100;
          await createRaw(
            admin,
            objPath(group, "ticks", ns),
            `{"apiVersion":"${group}/v1","kind":"Tick","metadata":{"name":"${name}"},"spec":{"i":${i}}}`,
          );
          writes.push({ name, acked: Date.now() });
          await sleep(Math.max(0, next - Date.now()));
        }
      })();
      // the worst moment: just before a flush, most of an interval after the last one
      const segmentCount = async () => {
        let n = 0;
        for await (const _ of storage.list(JOURNAL_PREFIX)) n++;
        return n;
      };
      await sleep(6000);
      const before = await segmentCount();
      while ((await segmentCount()) === before) await sleep(50);
      flushedAt = Date.now();
      await sleep(FLUSH_MS - 400);
      killedAt = Date.now();
      rec.child.kill("SIGKILL");
      await sleep(300); // writes go on past the kill
      stop = true;
      await writer;
      expect((await rec.exited).signal).toBe("SIGKILL");
    } finally {
      rec.child.kill("SIGKILL");
    }

    const out = path.join(mkdtempSync(path.join(os.tmpdir(), "rk-export-")), "out");
    const exp = await runCli(["export", "--at", "now", "--storage", dir, "--to", out]);
    expect(exp.code, exp.stderr).toBe(0);
    const present = new Set(
      readdirSync(path.join(out, group, "ticks", ns)).map((f) => f.replace(/\.(json|ya?ml)$/, "")),
    );
    const list = await runCli(["list", "--storage", dir, "-o", "json"]);
    expect(list.code, list.stderr).toBe(0);
    const journal = (JSON.parse(list.stdout) as { journal?: { to: string } }[]).find(
      (s) => s.journal,
    )!.journal!;
    const windowEnd = Date.parse(journal.to);

    const before = writes.filter((w) => w.acked <= killedAt);
    const missing = before.filter((w) => !present.has(w.name));
    const kept = before.filter((w) => present.has(w.name));
    const lastWrite = before.at(-1)!.acked;
    const newestKept = kept.at(-1)?.acked ?? 0;
    const rpo = (lastWrite - newestKept) / 1000;
    console.log(
      `SIGKILL under ${before.length} writes (~10/s): ${kept.length} restorable, ${missing.length} lost; ` +
        `recovery point ${rpo.toFixed(2)} s (last write before the kill to the newest restorable write; ` +
        `last write to the journal's end: ${((lastWrite - windowEnd) / 1000).toFixed(2)} s; ` +
        `killed ${((killedAt - (flushedAt ?? NaN)) / 1000).toFixed(2)} s after a segment appeared; flush interval ${FLUSH_MS / 1000} s)`,
    );
    expect(kept.length).toBeGreaterThan(0);
    // what is restorable is a prefix of the writes: nothing after a lost one survives
    expect(kept.every((w, i) => w === before[i])).toBe(true);
    // and what is lost is only the last flush interval's: written (acknowledged by the API server)
    // at most one interval before the kill, give or take the event's way to the recorder and the
    // segment's write (SLACK_MS)
    const SLACK_MS = 1000;
    for (const w of missing) expect(killedAt - w.acked, w.name).toBeLessThanOrEqual(FLUSH_MS + SLACK_MS);
    expect(rpo).toBeLessThanOrEqual((FLUSH_MS + SLACK_MS) / 1000);
  }, 120_000);
});

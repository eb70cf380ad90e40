/**
 * restore --sync (issue 24, item 1) against the real kube-apiserver: a state is applied, a
 * snapshot taken and a recorder notes T; then objects are created (an owner with dependents, one
 * with a finalizer), changed (spec, an added field, status) and deleted (an owner with its
 * dependent). `restore --sync` from the snapshot, and `--sync --at T`, each give exactly the state;
 * --dry-run lists the same deletes and changes nothing; a second run reports everything unchanged;
 * objects outside the filters (another namespace, another resource) are untouched.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { parseJson, type JsonObject } from "../../src/json/json.ts";
import type { ReportEntry, RestoreReportDocument } from "../../src/restore/report.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, createNamespace, uniqueName } from "../support/cluster.ts";
import { liveState, type LiveState } from "../support/compare.ts";
import {
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

const KINDS: Record<string, string> = { widgets: "Widget", gadgets: "Gadget", others: "Other" };
const HOLD = "sync.crd-backup.io/hold";

describe("restore --sync", () => {
  let admin: KubeClient;
  const group = `${uniqueName("sy")}.fixtures.crd-backup.io`;
  const [nsA, nsB, nsOut] = [uniqueName("sya"), uniqueName("syb"), uniqueName("syo")];
  const storage = freshLocal();
  const dir = storage.location.replace(/^file:\/\//, "");
  let snapshotId: string;
  let T: string;
  /** The synced resources in the synced namespaces, as they were at the snapshot and at T. */
  let want: LiveState;

  const at = (plural: string, ns: string, name?: string) => objPath(group, plural, ns, name);
  const uidOf = async (plural: string, ns: string, name: string) => {
    const o = parseJson((await admin.request({ path: at(plural, ns, name) })).text) as JsonObject;
    return String((o["metadata"] as JsonObject)["uid"]);
  };
  const create = async (plural: string, ns: string, name: string, rest = "", owner?: string, meta = "") => {
    const refs = owner
      ? `,"ownerReferences":[{"apiVersion":"${group}/v1","kind":"Widget","name":"${owner}","uid":"${await uidOf("widgets", ns, owner)}"}]`
      : "";
    return createRaw(
      admin,
      at(plural, ns),
      `{"apiVersion":"${group}/v1","kind":"${KINDS[plural]}","metadata":{"name":"${name}"${refs}${meta}}${rest}}`,
    );
  };
  const status = (plural: string, ns: string, name: string, s: object) =>
    patch(admin, `${at(plural, ns, name)}/status`, { status: s });
  const remove = (plural: string, ns: string, name: string) =>
    admin.request({ method: "DELETE", path: at(plural, ns, name) });
  const synced = () =>
    liveState(
      admin,
      group,
      [
        ["widgets", "v1"],
        ["gadgets", "v1"],
      ],
      { withStatus: true, namespaces: [nsA, nsB] },
    );
  const outside = () =>
    liveState(
      admin,
      group,
      [
        ["widgets", "v1"],
        ["gadgets", "v1"],
        ["others", "v1"],
      ],
      { withStatus: true, namespaces: [nsOut, nsA] },
    ).then((s) => [...s.forms].filter(([k]) => k.includes(nsOut) || k.startsWith("others")));
  /** The flags every sync here takes: two namespaces, not the `others` resource. */
  const scope = [
    "--storage",
    dir,
    "--include-namespaces",
    `${nsA},${nsB}`,
    "--exclude-resources",
    "others",
    "--restore-status",
  ];

  /**
   * Everything a bad change might do, with names tagged so each run makes new ones: what a sync
   * must delete (in the order it must), and what it must leave (outside its filters).
   */
  const diverge = async (tag: string) => {
    await patch(admin, at("widgets", nsA, "w1"), { spec: { size: 99, [`added${tag}`]: true } });
    await status("widgets", nsB, "w2", { phase: "Broken", [`extra${tag}`]: 1 });
    await remove("widgets", nsA, "w3");
    // an owner and its dependent both gone (as the garbage collector would do)
    await remove("gadgets", nsA, "g1");
    await remove("widgets", nsA, "own");
    await create("widgets", nsA, `x${tag}`, `,"spec":{"size":5}`);
    await create("widgets", nsB, `eo${tag}`, `,"spec":{"size":6}`);
    await create("gadgets", nsB, `eg1${tag}`, `,"spec":{"n":1}`, `eo${tag}`);
    await create("gadgets", nsB, `eg2${tag}`, `,"spec":{"n":2}`, `eo${tag}`);
    await create("widgets", nsA, `fin${tag}`, `,"spec":{"size":7}`, undefined, `,"finalizers":["${HOLD}"]`);
    // outside the sync's filters: another namespace, another resource
    await create("widgets", nsOut, `out${tag}`, `,"spec":{"size":8}`);
    await create("others", nsA, `o${tag}`, `,"spec":{"n":3}`);
    return {
      deletes: [
        `${nsA}/x${tag}`,
        `${nsB}/eo${tag}`,
        `${nsB}/eg1${tag}`,
        `${nsB}/eg2${tag}`,
        `${nsA}/fin${tag}`,
      ],
      held: `${nsA}/fin${tag}`,
    };
  };

  /** The finalizer's controller, done: the held object goes. */
  const release = async (ns: string, name: string) => {
    await patch(admin, at("widgets", ns, name), { metadata: { finalizers: null } });
    for (let i = 0; ; i++) {
      try {
        await admin.request({ path: at("widgets", ns, name) });
      } catch (e) {
        if (e instanceof KubeApiError && e.status === 404) return;
        throw e;
      }
      if (i > 100) throw new Error(`${ns}/${name} not gone`);
      await sleep(100);
    }
  };

  const json = (stdout: string) => JSON.parse(stdout) as RestoreReportDocument;
  const keyOf = (e: ReportEntry) => `${e.namespace}/${e.name}`;
  const withOutcome = (doc: RestoreReportDocument, ...outcomes: string[]) =>
    doc.entries.filter((e) => outcomes.includes(e.outcome));

  /** The state equals `want`, but for the held object, which is terminating. */
  const expectSynced = async (held: string) => {
    const got = await synced();
    const heldKey = `widgets ${held}`;
    expect(got.forms.has(heldKey), "the held object waits on its finalizer").toBe(true);
    got.forms.delete(heldKey);
    expect([...got.forms.keys()].sort()).toEqual([...want.forms.keys()].sort());
    expect(got.forms).toEqual(want.forms);
    // the recreated dependent names its recreated owner
    expect(got.owners.get(`gadgets ${nsA}/g1`)).toEqual([
      ["Widget", "own", got.uids.get(`widgets ${nsA}/own`)],
    ]);
  };

  beforeAll(async () => {
    admin = await adminClient();
    for (const plural of Object.keys(KINDS)) await makeCrd(admin, group, plural, KINDS[plural]!);
    for (const ns of [nsA, nsB, nsOut]) await createNamespace(admin, ns);
    await create("widgets", nsA, "own", `,"spec":{"size":1}`);
    await status("widgets", nsA, "own", { phase: "Ready" });
    await create("gadgets", nsA, "g1", `,"spec":{"n":1}`, "own");
    await create("widgets", nsA, "w1", `,"spec":{"size":2,"big":9007199254740993}`);
    await create("widgets", nsB, "w2", `,"spec":{"size":3}`);
    await status("widgets", nsB, "w2", { phase: "Ready", observed: 1 });
    await create("widgets", nsA, "w3", `,"spec":{"size":4}`);
    await create("gadgets", nsB, "g2", `,"spec":{"n":2}`);
    await create("widgets", nsOut, "keep", `,"spec":{"size":9}`);
    await create("others", nsA, "o1", `,"spec":{"n":1}`);
    want = await synced();

    const snap = await runCli(["snapshot", "--storage", dir, "--include-groups", group, "-o", "json"]);
    expect(snap.code, snap.stderr).toBe(0);
    snapshotId = (JSON.parse(snap.stdout) as { id: string }).id;

    // the same state recorded: T once a stored segment's window reaches past it
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
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      const t = Date.now();
      T = new Date(t).toISOString();
      for (let covered = false; !covered; await sleep(250)) {
        const chains = await readJournal(storage).catch(() => new Map<string, JournalSegment[]>());
        covered = [...chains.values()].some((segments) => segments.some((s) => s.key.to.getTime() > t));
      }
      rec.child.kill("SIGTERM");
      expect((await rec.exited).code, rec.log()).toBe(0);
    } finally {
      rec.child.kill("SIGKILL");
    }
  });
  afterAll(() => admin?.close());

  it("from a snapshot: --dry-run lists the deletes and changes nothing; the sync gives exactly the state, dependents deleted before owners, the held object terminating; a second sync changes nothing", async () => {
    const { deletes, held } = await diverge("a");
    const before = await synced();
    const out = await outside();

    const dry = await runCli(["restore", snapshotId, "--sync", "--dry-run", "-o", "json", ...scope]);
    expect(dry.code, dry.stderr + dry.stdout).toBe(0);
    const planned = json(dry.stdout);
    expect(withOutcome(planned, "would-delete").map(keyOf).sort()).toEqual([...deletes].sort());
    expect(withOutcome(planned, "would-create").map(keyOf).sort()).toEqual(
      [`${nsA}/g1`, `${nsA}/own`, `${nsA}/w3`].sort(),
    );
    expect(withOutcome(planned, "would-update").map(keyOf).sort()).toEqual([`${nsA}/w1`, `${nsB}/w2`].sort());
    expect(withOutcome(planned, "would-delete").find((e) => keyOf(e) === held)?.reason).toContain(HOLD);
    expect((await synced()).forms).toEqual(before.forms);

    const res = await runCli(["restore", snapshotId, "--sync", "-o", "json", ...scope]);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    const done = json(res.stdout);
    expect(withOutcome(done, "deleted", "terminating").map(keyOf).sort()).toEqual([...deletes].sort());
    expect(withOutcome(done, "created").map(keyOf).sort()).toEqual(
      [`${nsA}/g1`, `${nsA}/own`, `${nsA}/w3`].sort(),
    );
    expect(withOutcome(done, "updated").map(keyOf).sort()).toEqual([`${nsA}/w1`, `${nsB}/w2`].sort());
    const terminating = withOutcome(done, "terminating");
    expect(terminating.map(keyOf)).toEqual([held]);
    expect(terminating[0]!.reason).toBe(`waiting on finalizer ${HOLD}`);
    // dependents before their owner
    const order = done.entries.map(keyOf);
    expect(order.indexOf(`${nsB}/eg1a`)).toBeLessThan(order.indexOf(`${nsB}/eoa`));
    expect(order.indexOf(`${nsB}/eg2a`)).toBeLessThan(order.indexOf(`${nsB}/eoa`));
    expect(withOutcome(done, "failed", "conflict", "skipped")).toEqual([]);

    await expectSynced(held);
    expect(await outside()).toEqual(out);

    await release(nsA, "fina");
    const again = await runCli(["restore", snapshotId, "--sync", "-o", "json", ...scope]);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    const second = json(again.stdout);
    expect(second.entries.filter((e) => e.kind === "object").length).toBe(want.forms.size);
    expect(second.entries.filter((e) => e.outcome !== "unchanged")).toEqual([]);
    expect((await synced()).forms).toEqual(want.forms);
  });

  it("--sync --at T gives exactly the state at T, and says which finalizer holds an object; a second run changes nothing", async () => {
    const { held } = await diverge("b");
    const out = await outside();
    const res = await runCli(["restore", "--at", T, "--sync", ...scope]);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    expect(res.stdout).toMatch(
      /created 3, updated 2, unchanged \d+, skipped 0, failed 0, conflicts 0, deleted 4, terminating 1/,
    );
    expect(res.stdout).toContain(`terminating: widgets.${group} ${held}: waiting on finalizer ${HOLD}`);
    await expectSynced(held);
    expect(await outside()).toEqual(out);

    await release(nsA, "finb");
    const again = await runCli(["restore", "--at", T, "--sync", "-o", "json", ...scope]);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect(json(again.stdout).entries.filter((e) => e.outcome !== "unchanged")).toEqual([]);
  });

  it("deletes only where the source looked: a snapshot of one namespace deletes nothing in another; CRDs only with --sync-crds", async () => {
    const g = `${uniqueName("syc")}.fixtures.crd-backup.io`;
    const [nsP, nsQ] = [uniqueName("syp"), uniqueName("syq")];
    await makeCrd(admin, g, "widgets", "Widget");
    for (const ns of [nsP, nsQ]) await createNamespace(admin, ns);
    const make = (ns: string, name: string, plural = "widgets", kind = "Widget") =>
      createRaw(
        admin,
        objPath(g, plural, ns),
        `{"apiVersion":"${g}/v1","kind":"${kind}","metadata":{"name":"${name}"}}`,
      );
    await make(nsP, "p1");
    await make(nsQ, "q1");
    const snapshot = async (...more: string[]) => {
      const res = await runCli(["snapshot", "--storage", dir, "--include-groups", g, ...more, "-o", "json"]);
      expect(res.code, res.stderr).toBe(0);
      return (JSON.parse(res.stdout) as { id: string }).id;
    };
    const onlyP = await snapshot("--include-namespaces", nsP);
    const whole = await snapshot();
    await make(nsP, "p2");
    await make(nsQ, "q2");

    // the restore selects every namespace, the source only nsP: q2 is not the source's to judge
    const res = await runCli([
      "restore",
      onlyP,
      "--sync",
      "--storage",
      dir,
      "--include-groups",
      g,
      "-o",
      "json",
    ]);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    expect(withOutcome(json(res.stdout), "deleted").map(keyOf)).toEqual([`${nsP}/p2`]);
    const names = async () => {
      const s = await liveState(admin, g, [["widgets", "v1"]], { withStatus: false });
      return [...s.forms.keys()].sort();
    };
    expect(await names()).toEqual([`widgets ${nsP}/p1`, `widgets ${nsQ}/q1`, `widgets ${nsQ}/q2`]);

    // a CRD made since the snapshot: left without --sync-crds, deleted (its objects with it) with it
    await makeCrd(admin, g, "extras", "Extra");
    await make(nsP, "e1", "extras", "Extra");
    const crdOf = (doc: RestoreReportDocument) =>
      doc.entries.filter((e) => e.kind === "crd" && e.name === `extras.${g}`);
    const plain = await runCli([
      "restore",
      whole,
      "--sync",
      "--storage",
      dir,
      "--include-groups",
      g,
      "-o",
      "json",
    ]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(crdOf(json(plain.stdout))).toEqual([]);
    expect(withOutcome(json(plain.stdout), "deleted").map(keyOf)).toEqual([`${nsQ}/q2`]);
    const args = [
      "restore",
      whole,
      "--sync",
      "--sync-crds",
      "--storage",
      dir,
      "--include-groups",
      g,
      "-o",
      "json",
    ];
    const dry = await runCli([...args, "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(crdOf(json(dry.stdout)).map((e) => e.outcome)).toEqual(["would-delete"]);
    await admin.request({ path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/extras.${g}` });
    const res2 = await runCli(args);
    expect(res2.code, res2.stderr).toBe(0);
    expect(crdOf(json(res2.stdout)).map((e) => e.outcome)).toEqual(["deleted"]);
    await expect(
      admin.request({ path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/extras.${g}` }),
    ).rejects.toMatchObject({ status: 404 });
    expect(await names()).toEqual([`widgets ${nsP}/p1`, `widgets ${nsQ}/q1`]);
  });

  it("refuses flags that contradict --sync, in one line, and writes nothing", async () => {
    const existing = await runCli(["restore", snapshotId, "--sync", "--existing", "skip", "--storage", dir]);
    expect(existing.code).toBe(2);
    expect(existing.stderr.trim().split("\n")).toHaveLength(1);
    expect(existing.stderr).toMatch(/--existing/);
    const crds = await runCli(["restore", snapshotId, "--sync-crds", "--storage", dir]);
    expect(crds.code).toBe(2);
    expect(crds.stderr).toMatch(/--sync-crds/);
    const partial = await runCli(["restore", snapshotId, "--sync", "--sync-crds", ...scope]);
    expect(partial.code).toBe(2);
    expect(partial.stderr).toMatch(/--sync-crds deletes whole CRDs/);
  });
});

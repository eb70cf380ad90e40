/**
 * restore --sync decides inside its source's verification pass (restore/plan-pass.ts): an object
 * whose text is its live object's is unchanged at once; one whose text differs is decided after
 * the pass on its live object read again, by a GET each, or past 256 in one resource by one LIST of
 * it. Both ways against the real kube-apiserver: what changed is updated, the rest left unchanged,
 * and the state is the snapshot's.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import type { RestoreReportDocument } from "../../src/restore/report.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, createNamespace, mapConcurrent, uniqueName } from "../support/cluster.ts";
import { liveState } from "../support/compare.ts";
import { createRaw, makeCrd, objPath, patch } from "../support/recorder.ts";
import { freshLocal } from "../support/storage.ts";

/** More than the 256 objects of one resource that are read again one by one. */
const MANY = 300;
const FEW = 5;

describe("restore --sync: objects whose text differs", () => {
  let admin: KubeClient;
  const group = `${uniqueName("sc")}.fixtures.crd-backup.io`;
  const ns = uniqueName("sca");
  const dir = freshLocal().location.replace(/^file:\/\//, "");
  let snapshotId: string;
  const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  const state = () =>
    liveState(
      admin,
      group,
      [
        ["items", "v1"],
        ["fews", "v1"],
      ],
      { withStatus: false, namespaces: [ns] },
    );
  const sync = async () => {
    const res = await runCli(["restore", snapshotId, "--sync", "--storage", dir, "-o", "json"]);
    expect(res.code, res.stderr).toBe(0);
    return (JSON.parse(res.stdout) as RestoreReportDocument).counts;
  };

  beforeAll(async () => {
    admin = await adminClient();
    await makeCrd(admin, group, "items", "Item");
    await makeCrd(admin, group, "fews", "Few");
    await createNamespace(admin, ns);
    const create = (plural: string, kind: string, name: string) =>
      createRaw(
        admin,
        objPath(group, plural, ns, name),
        `{"apiVersion":"${group}/v1","kind":"${kind}","metadata":{"name":"${name}"},"spec":{"size":1,"big":9007199254740993}}`,
      );
    await mapConcurrent(names("i", MANY), 16, (n) => create("items", "Item", n));
    await mapConcurrent(names("f", FEW), 4, (n) => create("fews", "Few", n));
    const snap = await runCli(["snapshot", "--storage", dir, "--include-groups", group, "-o", "json"]);
    expect(snap.code, snap.stderr).toBe(0);
    snapshotId = (JSON.parse(snap.stdout) as { id: string }).id;
  }, 120_000);

  it("are updated whether read again by one LIST (past 256 in a resource) or a GET each; the rest stay unchanged; a second sync changes nothing", async () => {
    const want = await state();
    expect(want.forms.size).toBe(MANY + FEW);
    // every item changed (one LIST reads them again), two of the few (a GET each)
    await mapConcurrent(names("i", MANY), 16, (n) =>
      patch(admin, objPath(group, "items", ns, n), { spec: { size: 2 } }),
    );
    for (const n of ["f0", "f3"])
      await patch(admin, objPath(group, "fews", ns, n), { spec: { extra: true } });
    // unchanged: the other three, and the two CRDs
    expect(await sync()).toMatchObject({ updated: MANY + 2, unchanged: FEW - 2 + 2 });
    expect((await state()).forms).toEqual(want.forms);
    expect(await sync()).toMatchObject({ updated: 0, unchanged: MANY + FEW + 2 });
  }, 120_000);
});

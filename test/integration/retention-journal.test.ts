/**
 * Retention never breaks a journal (issue 21, item 1), tried as a user would: a recorder running,
 * snapshots taken after its base, `prune --keep-last 2`, and `restore --at now` still gives the
 * live state exactly. Before the fix prune removed the recorder's base with its whole chain.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import { listSegments } from "../../src/journal/chains.ts";
import { listSnapshots } from "../../src/storage/snapshots.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, createNamespace, uniqueName } from "../support/cluster.ts";
import { liveState } from "../support/compare.ts";
import { createRaw, makeCrd, objPath, patch, spoolDir, startRecorder } from "../support/recorder.ts";
import { freshLocal } from "../support/storage.ts";

describe("retention and a running recorder", () => {
  let admin: KubeClient;
  beforeAll(async () => {
    admin = await adminClient();
  });
  afterAll(() => admin.close());

  it("prune --keep-last 2 after three snapshots keeps the recorder's chain and base: restore --at now is exact", async () => {
    const group = `${uniqueName("ret")}.fixtures.crd-backup.io`;
    const [ns, copy] = [uniqueName("ret"), uniqueName("ret-copy")];
    await makeCrd(admin, group, "widgets", "Widget");
    await createNamespace(admin, ns);
    const w = (name?: string) => objPath(group, "widgets", ns, name);
    const widget = (name: string, spec: string) =>
      `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"${name}","labels":{"app":"x"}},"spec":${spec}}`;
    await createRaw(admin, w(), widget("w1", `{"big":9007199254740993,"n":1}`));

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
    ]);
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      const base = (await listSnapshots(storage)).at(-1)!.id;

      // three snapshots after the base, with changes between them that only the journal holds in full
      for (let i = 2; i <= 4; i++) {
        await createRaw(admin, w(), widget(`w${i}`, `{"n":${i}}`));
        await patch(admin, w("w1"), { spec: { n: i } });
        const snap = await runCli(["snapshot", "--storage", dir, "--include-groups", group]);
        expect(snap.code, snap.stderr).toBe(0);
      }
      await admin.request({ method: "DELETE", path: w("w2") });
      await patch(admin, `${w("w3")}/status`, { status: { phase: "Ready" } });
      const lastChange = Date.now();
      // the journal has recorded past the last change
      for (let i = 0; ; i++) {
        const segments = (await listSegments(storage)).values().next().value ?? [];
        if (segments.some((s) => s.to.getTime() > lastChange + 1000)) break;
        if (i > 100) throw new Error(`no segment past the last change; log:\n${rec.log()}`);
        await sleep(300);
      }

      const dry = await runCli(["prune", "--storage", dir, "--keep-last", "2", "--dry-run"]);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toMatch(new RegExp(`keep ${base} \\(journal\\)`));
      expect(dry.stdout).toMatch(
        new RegExp(`keep the journal of ${base} \\(\\d+ segments, .*\\): newest chain`),
      );
      expect(dry.stdout).not.toContain("would remove the journal");
      const list = await runCli(["list", "--storage", dir]);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).toMatch(new RegExp(`${base}.*kept: newest chain`));
      const listPolicy = await runCli(["list", "--storage", dir, "--keep-last", "2"]);
      expect(listPolicy.stdout).toMatch(new RegExp(`${base} .*keep \\(journal\\)`));
      expect(listPolicy.stdout).toMatch(/prune removes it/); // the oldest of the three snapshots

      const pruned = await runCli(["prune", "--storage", dir, "--keep-last", "2", "-o", "json"]);
      expect(pruned.code, pruned.stderr).toBe(0);
      const report = JSON.parse(pruned.stdout) as {
        clusters: { remove: { id: string }[] }[];
        journal: unknown[];
        chains: { base: string; reasons: string[] }[];
      };
      expect(report.clusters[0]!.remove).toHaveLength(1);
      expect(report.journal).toEqual([]);
      expect(report.chains.map((c) => c.base)).toEqual([base]);
      expect((await listSnapshots(storage)).map((s) => s.id)).toContain(base);

      const restore = await runCli([
        "restore",
        "--at",
        "now",
        "--storage",
        dir,
        "--namespace-map",
        `${ns}=${copy}`,
        "--restore-status",
      ]);
      expect(restore.code, restore.stderr + restore.stdout).toBe(0);
      const resources: [string, string][] = [["widgets", "v1"]];
      const rename = (s: Map<string, string>, from: string) =>
        new Map(
          [...s].map(([k, v]) => [
            k.replace(`/${from}/`, "/NS/").replace(` ${from}/`, " NS/"),
            v.replaceAll(`"${from}"`, '"NS"'),
          ]),
        );
      const source = await liveState(admin, group, resources, { withStatus: true, namespaces: [ns] });
      const restored = await liveState(admin, group, resources, { withStatus: true, namespaces: [copy] });
      expect(source.forms.size).toBe(3);
      expect(rename(restored.forms, copy)).toEqual(rename(source.forms, ns));
      expect([...restored.forms.values()].join()).toContain("9007199254740993");
    } finally {
      rec.child.kill("SIGTERM");
      await rec.exited;
    }
  }, 240_000);
});

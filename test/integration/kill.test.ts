/**
 * SIGTERM and SIGKILL in the middle of a snapshot or a restore. A snapshot killed at any point is
 * never listed and never restorable; a restore killed half-way converges when run again.
 * Runs are slowed with --qps so the signal lands mid-run, after work has visibly started.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI_MAIN, cliNodeFlags } from "../../cli/node-flags.ts";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { runCli, envVars } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { liveState } from "../support/compare.ts";
import { openUploads } from "../support/faults.ts";
import { freshLocal } from "../support/storage.ts";

/** Starts the CLI; resolves `started` at the first stderr line matching `when`. */
function launch(args: string[], when: RegExp) {
  const child = spawn(process.execPath, [...cliNodeFlags(), CLI_MAIN, ...args], {
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp", ...envVars() },
  });
  let stderr = "";
  let stdout = "";
  let resolveStarted: (line: string) => void;
  const started = new Promise<string>((r) => (resolveStarted = r));
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
    const line = stderr.split("\n").find((l) => when.test(l));
    if (line) resolveStarted(line);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  return { child, started, exited, output: () => ({ stdout, stderr }) };
}

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

describe("killed mid-run", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("kill")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("kill-a"), uniqueName("kill-b")],
      widgetsPerNamespace: 8,
    });
  });
  afterAll(() => admin.close());

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    for (const where of ["s3", "local"] as const) {
      it(`a snapshot to ${where === "s3" ? "MinIO" : "a local directory"} stopped by ${signal}: never listed, never restorable; a re-run succeeds`, async () => {
        const local = where === "local" ? freshLocal().location.replace(/^file:\/\//, "") : undefined;
        const prefix = uniqueName("kill");
        const storage = local ?? `s3://${testEnv().s3.bucket}/${prefix}`;
        const run = launch(
          ["snapshot", "--storage", storage, "--include-groups", fx.group, "--qps", "3", "--burst", "1"],
          /"msg":"snapshot started"/,
        );
        const id = (JSON.parse(await run.started) as { id: string }).id;
        await new Promise((r) => setTimeout(r, 700));
        run.child.kill(signal);
        const exit = await run.exited;
        if (signal === "SIGKILL") expect(exit.signal).toBe("SIGKILL");
        else {
          expect(exit.code).toBe(1);
          const lines = run.output().stderr.trim().split("\n");
          expect(lines.at(-1)).toMatch(/^crd-backup: interrupted: /);
        }

        const list = await runCli(["list", "--storage", storage, "-o", "json"]);
        expect(list.code).toBe(0);
        expect(JSON.parse(list.stdout)).toEqual([]);
        const restore = await runCli(["restore", id, "--storage", storage, "--dry-run"]);
        expect(restore.code).toBe(1);
        expect(restore.stderr).toMatch(/does not exist \(or is incomplete\)/);
        const latest = await runCli(["restore", "latest", "--storage", storage, "--dry-run"]);
        expect(latest.code).toBe(1);
        expect(latest.stderr).toMatch(/no complete snapshot/);
        if (local) {
          // a graceful stop leaves nothing at all; a kill only temp files, which nothing lists
          const left = files(local);
          if (signal === "SIGTERM") expect(left).toEqual([]);
          else expect(left.every((f) => f.includes(".tmp-"))).toBe(true);
        } else if (signal === "SIGTERM") {
          expect(await openUploads(testEnv().s3, [`${prefix}/snapshots/${id}/archive.tar.zst`])).toEqual([]);
        }

        const again = await runCli([
          "snapshot",
          "--storage",
          storage,
          "--include-groups",
          fx.group,
          "-o",
          "json",
        ]);
        expect(again.code, again.stderr).toBe(0);
        const after = JSON.parse(
          (await runCli(["list", "--storage", storage, "-o", "json"])).stdout,
        ) as unknown[];
        expect(after).toHaveLength(1);
      });
    }
  }

  it("a restore killed half-way (SIGKILL) and run again converges to exactly the snapshot, status included with --existing update", async () => {
    const storage = freshLocal().location.replace(/^file:\/\//, "");
    const snap = await runCli(["snapshot", "--storage", storage, "--include-groups", fx.group, "-o", "json"]);
    expect(snap.code, snap.stderr).toBe(0);
    const id = (JSON.parse(snap.stdout) as { id: string }).id;
    const targets = fx.namespaces.map((ns) => `${uniqueName("k")}-${ns.slice(-8)}`);
    const map = fx.namespaces.flatMap((ns, i) => ["--namespace-map", `${ns}=${targets[i]}`]);
    const args = [
      "restore",
      id,
      "--storage",
      storage,
      ...map,
      "--restore-status",
      "--include-resources",
      "widgets,gadgets",
    ];

    const run = launch(
      [...args, "--qps", "4", "--burst", "1", "--concurrency", "2"],
      /"msg":"restore planned"/,
    );
    await run.started;
    // wait until some objects exist, then kill
    const deadline = Date.now() + 30_000;
    const count = async () =>
      (await liveState(admin, fx.group, [["widgets", "v1"]], { withStatus: false, namespaces: targets }))
        .forms.size;
    while ((await count()) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    run.child.kill("SIGKILL");
    await run.exited;
    const partway = await count();
    expect(partway).toBeGreaterThan(0);
    expect(partway).toBeLessThan(fx.counts.widgets);

    const again = await runCli([...args, "--existing", "update", "-o", "json"]);
    expect(again.code, again.stderr).toBe(0);
    const report = JSON.parse(again.stdout) as { counts: Record<string, number> };
    expect(report.counts["created"]).toBeGreaterThan(0);
    expect(report.counts["failed"]).toBe(0);

    // exactly the source's state: same objects, same content (namespace mapped), status included
    const resources: [string, string][] = [
      ["widgets", "v1"],
      ["gadgets", "v2"],
    ];
    const src = await liveState(admin, fx.group, resources, { withStatus: true, namespaces: fx.namespaces });
    const dst = await liveState(admin, fx.group, resources, { withStatus: true, namespaces: targets });
    const mapped = new Map(
      [...src.forms].map(([k, v]) => {
        let key = k;
        let value = v;
        fx.namespaces.forEach((ns, i) => {
          key = key.replace(` ${ns}/`, ` ${targets[i]}/`);
          value = value.split(`"namespace":"${ns}"`).join(`"namespace":"${targets[i]}"`);
        });
        return [key, value];
      }),
    );
    expect(dst.forms).toEqual(mapped);
    // and a third run finds nothing to do
    const third = await runCli([...args, "-o", "json"]);
    const counts = (JSON.parse(third.stdout) as { counts: Record<string, number> }).counts;
    expect(counts["created"]).toBe(0);
    expect(counts["skipped"]).toBe(0);
  });
});

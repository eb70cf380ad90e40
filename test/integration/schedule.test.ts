import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI_MAIN, cliNodeFlags } from "../../cli/node-flags.ts";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { listSnapshots } from "../../src/storage/snapshots.ts";
import { envVars } from "../support/cli.ts";
import { adminClient, uniqueName } from "../support/cluster.ts";
import { freshLocal } from "../support/storage.ts";

interface LogLine {
  time: string;
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** Every file under dir, relative: what a stopped run may have left behind. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe("crd-backup schedule", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("sched")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("sched")],
      widgetsPerNamespace: 3,
    });
  });
  afterAll(() => admin.close());

  it("snapshots every tick without overlap, prunes after each, serves /metrics, and stops cleanly on SIGTERM mid-snapshot", async () => {
    const storage = freshLocal();
    const dir = storage.location.replace(/^file:\/\//, "");
    // --qps 2 makes each snapshot take a few seconds: longer than the 1 s between ticks
    const child = spawn(
      process.execPath,
      [
        ...cliNodeFlags(),
        CLI_MAIN,
        "schedule",
        "--cron",
        "* * * * * *",
        "--storage",
        dir,
        "--include-groups",
        fx.group,
        "--qps",
        "2",
        "--burst",
        "1",
        "--keep-last",
        "1",
        "--metrics-addr",
        "127.0.0.1:0",
      ],
      { env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp", ...envVars() } },
    );
    const lines: LogLine[] = [];
    let stdout = "";
    let buffered = "";
    const waiters: (() => void)[] = [];
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => {
      buffered += c.toString();
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith("{")) lines.push(JSON.parse(line) as LogLine);
        else lines.push({ time: new Date().toISOString(), level: "text", msg: line });
        for (const w of waiters.splice(0)) w();
      }
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    const waitFor = async (pred: () => boolean, what: string, ms = 60_000) => {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > deadline)
          throw new Error(
            `timed out waiting for ${what}; log:\n${lines.map((l) => JSON.stringify(l)).join("\n")}`,
          );
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 500);
        });
      }
    };
    const count = (msg: string) => lines.filter((l) => l.msg === msg).length;

    try {
      await waitFor(() => count("scheduled run finished") >= 2, "two snapshots");
      const url = String(lines.find((l) => l.msg === "serving metrics")!["url"]);
      const metrics = await (await fetch(url)).text();
      expect(metrics).toMatch(/^crd_backup_snapshot_runs_total\{outcome="success"\} [2-9]$/m);
      expect(metrics).toMatch(/^crd_backup_snapshot_last_success_timestamp_seconds \d/m);
      expect(metrics).toMatch(/^crd_backup_snapshot_skipped_total [1-9]\d*$/m);
      expect(metrics).toMatch(/^crd_backup_prune_removed_snapshots 1$/m);

      // SIGTERM while a snapshot is in flight
      await waitFor(
        () => count("scheduled run started") > count("scheduled run finished"),
        "a snapshot in flight",
      );
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }

    // never two runs at once: every start comes after the previous finish
    const runs = lines.filter((l) => l.msg === "scheduled run started" || l.msg === "scheduled run finished");
    runs.forEach((l, i) =>
      expect(l.msg).toBe(i % 2 === 0 ? "scheduled run started" : "scheduled run finished"),
    );
    expect(runs.at(-1)!.msg).toBe("scheduled run started"); // the one SIGTERM abandoned
    expect(count("scheduled snapshot skipped: the previous one is still running")).toBeGreaterThan(0);
    expect(count("snapshot in flight abandoned: nothing of it is visible")).toBe(1);
    expect(lines.at(-1)!.msg).toBe("schedule stopped");
    expect(stdout).toBe("");

    // --keep-last 1 after each run: one snapshot, the last finished one; nothing else left behind
    const finished = lines
      .filter((l) => l.msg === "scheduled run finished")
      .map((l) => String(l["snapshot"]));
    const left = await listSnapshots(storage);
    expect(left.map((s) => s.id)).toEqual([finished.at(-1)]);
    expect(files(dir)).toEqual([
      `snapshots/${finished.at(-1)}/archive.tar.zst`,
      `snapshots/${finished.at(-1)}/manifest.json`,
    ]);
  });

  it("refuses a bad cron expression or time zone with one line, exit 2", async () => {
    for (const args of [
      ["--cron", "every day"],
      ["--cron", "0 3 * * *", "--timezone", "Mars/Olympus"],
    ]) {
      const child = spawn(process.execPath, [...cliNodeFlags(), CLI_MAIN, "schedule", ...args], {
        env: { PATH: process.env["PATH"] ?? "", ...envVars() },
      });
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
      expect(code).toBe(2);
      expect(stderr.trim().split("\n")).toHaveLength(1);
      expect(stderr).toMatch(
        args.includes("--timezone") ? /--timezone "Mars\/Olympus"/ : /--cron "every day"/,
      );
    }
  });
});

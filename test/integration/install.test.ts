import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleCli, type BundleResult } from "../../cli/bundle.ts";
import { uniqueName } from "../support/cluster.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command found on PATH by name, as a shell (or kubectl, for plugins) would. */
function runOnPath(bin: string, name: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(name, args, {
      // the bundle's shebang runs `node` from PATH: this test's Node 24 first
      env: { PATH: `${bin}:${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: os.tmpdir() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

// What `npm install` puts on PATH: package.json's bin entries, linked to the bundled CLI.
describe("the installed commands: crd-backup and the kubectl plugin kubectl-crd_backup", () => {
  // two levels below the repository, like dist/cli/main.js, so it finds package.json the same way
  const dir = path.join(ROOT, ".testenv", uniqueName("install"));
  const bin = mkdtempSync(path.join(os.tmpdir(), "crd-backup-bin-"));
  let bundle: BundleResult;
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
    bin: Record<string, string>;
  };

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    bundle = await bundleCli(path.join(dir, "main.js"));
    chmodSync(path.join(dir, "main.js"), 0o755);
    // as npm links bins: a symlink per bin name to the one file
    for (const name of Object.keys(pkg.bin)) symlinkSync(path.join(dir, "main.js"), path.join(bin, name));
  }, 120_000);
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(bin, { recursive: true, force: true });
  });

  it("package.json installs both names, from the same bundle", () => {
    expect(pkg.bin).toEqual({ "crd-backup": "dist/cli/main.js", "kubectl-crd_backup": "dist/cli/main.js" });
  });

  it("as kubectl-crd_backup (what `kubectl crd-backup` runs) it prints its help as `kubectl crd-backup`", async () => {
    const help = await runOnPath(bin, "kubectl-crd_backup", ["--help"]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: kubectl crd-backup \[options\] \[command\]/);
    expect(help.stdout).toMatch(/^\s+snapshot \[options\]/m);
    const sub = await runOnPath(bin, "kubectl-crd_backup", ["snapshot", "--help"]);
    expect(sub.stdout).toMatch(/^Usage: kubectl crd-backup snapshot \[options\]/);
    const wrong = await runOnPath(bin, "kubectl-crd_backup", ["list", "--no-such-flag"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("(run kubectl crd-backup list --help for usage)");
    // and it works as the CLI does: an empty storage location lists no snapshots
    const storage = mkdtempSync(path.join(os.tmpdir(), "crd-backup-plugin-"));
    const list = await runOnPath(bin, "kubectl-crd_backup", ["list", "--storage", storage, "-o", "json"]);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([]);
  });

  it("as crd-backup it names itself crd-backup", async () => {
    const help = await runOnPath(bin, "crd-backup", ["--help"]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: crd-backup \[options\] \[command\]/);
  });

  it("THIRD-PARTY-LICENSES.txt beside the bundle lists every package a bundled module comes from, with its licence text", () => {
    const text = readFileSync(path.join(dir, "THIRD-PARTY-LICENSES.txt"), "utf8");
    // the packages, from the bundle's own module list: the directory after the last node_modules
    const fromModules = new Set(
      bundle.moduleIds.flatMap((id) => {
        const m = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(id.replace(/\\/g, "/"));
        return m ? [m[1]!] : [];
      }),
    );
    expect(fromModules.size).toBeGreaterThan(20);
    for (const dep of [
      "@aws-sdk/client-s3",
      "@kubernetes/client-node",
      "commander",
      "cron",
      "age-encryption",
    ])
      expect(fromModules, dep).toContain(dep);

    const sections = text.split(/^-{80}\n/m).slice(1);
    const listed = sections.map((s) => {
      const [header, license] = s.split("\n");
      const body = s.split("\n").slice(3).join("\n").trim();
      return { name: header!.replace(/@[^@]+$/, ""), license: license!.replace(/^License: /, ""), body };
    });
    expect(new Set(listed.map((l) => l.name))).toEqual(fromModules);
    for (const l of listed) {
      expect(l.license, l.name).toMatch(/\S/);
      // the text itself, or where to find the same licence's text in this file
      if (l.body.startsWith("(the package ships no licence file"))
        expect(l.body, l.name).toMatch(new RegExp(`declares ${l.license.replace(/[.+]/g, "\\$&")}`));
      else expect(l.body.length, l.name).toBeGreaterThan(100);
    }
    const mit = listed.find((l) => l.name === "commander")!;
    expect(mit.license).toBe("MIT");
    expect(mit.body).toMatch(/Permission is hereby granted, free of charge/);
  });
});

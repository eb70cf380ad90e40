/**
 * `crd-backup import velero` against backups written by a real Velero (v1.18, built from the Go
 * module proxy by test/env/build-velero.sh), run outside the cluster against the test
 * kube-apiserver, writing to the test MinIO through the velero-plugin-for-aws.
 */
import { execFileSync } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIG_INTS, loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import type { RestoreReportDocument } from "../../src/restore/report.ts";
import { readAll, type StorageBackend } from "../../src/storage/backend.ts";
import { S3Backend } from "../../src/storage/s3.ts";
import { runCli, type CliResult } from "../support/cli.ts";
import { allowedSigners, sshKeygen, sshVerify, tempDir } from "../support/ssh-keygen.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { liveState, type LiveState } from "../support/compare.ts";
import { deleteFixtures } from "../support/fixtures.ts";
import { freshLocal, freshS3 } from "../support/storage.ts";
import { startVelero, type VeleroServer } from "../support/velero.ts";

const RESOURCES: [string, string][] = [
  ["widgets", "v1"],
  ["clusterpolicies", "v1alpha1"],
  ["gadgets", "v2"],
];
const CONFIGMAPS = 3;

interface ImportJson {
  backup: string;
  id: string;
  imported: boolean;
  counts?: { objects: number; crds: number; namespaces: number };
  skipped: Record<string, number>;
}

function ownersRelinked(state: LiveState): void {
  for (const [key, refs] of state.owners) {
    for (const [kind, name, uid] of refs) {
      const plural = kind === "Widget" ? "widgets" : kind === "ClusterPolicy" ? "clusterpolicies" : "gadgets";
      const ns = kind === "ClusterPolicy" ? "" : key.split(" ")[1]!.split("/")[0];
      expect(uid, `${key} -> ${kind} ${name}`).toBe(state.uids.get(`${plural} ${ns}/${name}`));
    }
  }
}

/** Every key in a location, with its size: what "nothing written" is checked against. */
async function keys(storage: StorageBackend): Promise<string[]> {
  const found: string[] = [];
  for await (const { key, size } of storage.list("")) found.push(`${key} ${size}`);
  return found.sort();
}

const importVelero = (...args: string[]): Promise<CliResult> => runCli(["import", "velero", ...args]);

function oneLineFailure(res: CliResult): void {
  expect(res.code, res.stdout).not.toBe(0);
  expect(res.stderr.trim().split("\n"), res.stderr).toHaveLength(1);
}

describe("crd-backup import velero, from backups a real Velero wrote", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  let velero: VeleroServer;
  let before: LiveState;
  let from: string;
  const crsOnly = uniqueName("crs");
  const withConfigMaps = uniqueName("mixed");
  const work = mkdtempSync(path.join(os.tmpdir(), "crd-backup-velero-test-"));
  const env = testEnv();
  const veleroLocation = (prefix = velero.prefix): StorageBackend =>
    new S3Backend({
      bucket: env.s3.bucket,
      prefix,
      endpoint: env.s3.endpoint,
      region: env.s3.region,
      partSize: 5 * 1024 * 1024,
      credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
    });

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("vi")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("vi-a"), uniqueName("vi-b")],
      widgetsPerNamespace: 8,
    });
    for (const ns of fx.namespaces)
      for (let i = 0; i < CONFIGMAPS; i++)
        await admin.request({
          method: "POST",
          path: `/api/v1/namespaces/${ns}/configmaps`,
          body: JSON.stringify({
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: { name: `cm-${i}` },
            data: { i: `${i}` },
          }),
        });
    // the first run builds Velero (minutes, see ensureVelero); later runs find it cached
    velero = await startVelero(admin, {
      kubeconfig: env.kubeconfig,
      s3: env.s3,
      namespace: uniqueName("velero"),
      prefix: uniqueName("velero"),
    });
    from = `s3://${velero.bucket}/${velero.prefix}`;
    // Velero adds the CRD of every custom resource it backs up when CRDs are neither included nor
    // excluded; naming them would back up every CRD of the shared test cluster
    const spec = {
      includedNamespaces: fx.namespaces,
      includedResources: fx.crdNames,
      includeClusterResources: true,
    };
    await velero.backup(crsOnly, spec);
    await velero.backup(withConfigMaps, { ...spec, includedResources: [...fx.crdNames, "configmaps"] });
    before = await liveState(admin, fx.group, RESOURCES, { withStatus: true });
  }, 1_800_000);
  afterAll(async () => {
    await velero?.stop();
    admin?.close();
  });

  it("imports a backup from Velero's location, and restore brings back every object exactly after the originals are gone", async () => {
    const storage = path.join(work, "round-trip");
    const imp = await importVelero("--from", from, "--backup", crsOnly, "--storage", storage, "-o", "json");
    // the default log level reports progress on stderr; nothing may be a warning or an error
    expect(imp.stderr).not.toMatch(/"level":"(warn|error)"/);
    expect(imp.code).toBe(0);
    const [result] = JSON.parse(imp.stdout) as ImportJson[];
    const objects = fx.counts.widgets + fx.counts.gadgets + fx.counts.clusterpolicies;
    expect(result).toMatchObject({ backup: crsOnly, imported: true, skipped: {} });
    expect(result!.counts).toMatchObject({
      objects,
      crds: fx.crdNames.length,
      namespaces: fx.namespaces.length,
    });

    await deleteFixtures(admin, fx);
    const reportFile = path.join(work, "report.json");
    const res = await runCli([
      "restore",
      result!.id,
      "--storage",
      storage,
      "--restore-status",
      "--report",
      reportFile,
    ]);
    expect(res.stderr).not.toMatch(/error/i);
    expect(res.code).toBe(0);
    const report = JSON.parse(readFileSync(reportFile, "utf8")) as RestoreReportDocument;
    expect(report.counts.failed).toBe(0);
    expect(report.counts.created).toBe(objects + fx.crdNames.length);

    const after = await liveState(admin, fx.group, RESOURCES, { withStatus: true });
    expect(after.forms.size).toBe(objects);
    for (const [key, form] of before.forms) expect(after.forms.get(key), key).toBe(form);
    for (const [key, uid] of before.uids) expect(after.uids.get(key)).not.toBe(uid);
    ownersRelinked(after);
    const widget = [...after.forms].find(([k]) => k.endsWith("/widget-0001"))![1];
    expect(widget).toContain(BIG_INTS[1]);
    expect(widget).toContain('"phase":"Ready"');
  });

  it("skips what is not a custom resource and counts it by kind", async () => {
    const storage = path.join(work, "mixed");
    const imp = await importVelero("--from", from, "--backup", withConfigMaps, "--storage", storage);
    expect(imp.code).toBe(0);
    expect(imp.stdout).toContain(`skipped: ConfigMap ${CONFIGMAPS * fx.namespaces.length}`);
    const json = await importVelero(
      "--from",
      from,
      "--backup",
      withConfigMaps,
      "--storage",
      storage,
      "-o",
      "json",
    );
    expect(JSON.parse(json.stdout)).toMatchObject([{ imported: false }]);
    const inspect = await runCli(["inspect", "latest", "--storage", storage, "-o", "json"]);
    expect(inspect.code).toBe(0);
    const manifest = JSON.parse(inspect.stdout) as { options: { importedFrom: { skipped: object } } };
    expect(manifest.options.importedFrom.skipped).toEqual({ ConfigMap: CONFIGMAPS * fx.namespaces.length });
  });

  it("--all imports each backup not yet imported, oldest first; a second --all imports nothing", async () => {
    const storage = path.join(work, "all");
    const first = await importVelero("--from", from, "--all", "--storage", storage, "-o", "json");
    expect(first.code).toBe(0);
    const imported = JSON.parse(first.stdout) as ImportJson[];
    expect(imported.map((r) => [r.backup, r.imported])).toEqual([
      [crsOnly, true],
      [withConfigMaps, true],
    ]);
    const again = await importVelero("--from", from, "--all", "--storage", storage, "-o", "json");
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as ImportJson[]).map((r) => [r.id, r.imported])).toEqual(
      imported.map((r) => [r.id, false]),
    );
    const list = await runCli(["list", "--storage", storage, "-o", "json"]);
    expect(list.code).toBe(0);
    for (const r of imported) expect(list.stdout).toContain(r.id);
  });

  it("--all leaves a Failed backup in the location and imports the rest; --backup on it fails in one line", async () => {
    // a location holding the real backup beside a copy Velero recorded as Failed (Velero uploads
    // failed backups too, and backups still Finalizing): a scheduled --all must not stop on them
    const copy = veleroLocation(`${velero.prefix}-failed`);
    const real = veleroLocation(velero.prefix);
    const failed = uniqueName("failed");
    for (const file of ["velero-backup.json", `${crsOnly}.tar.gz`])
      await copy.write(`backups/${crsOnly}/${file}`, await real.read(`backups/${crsOnly}/${file}`));
    const meta = JSON.parse(
      (await readAll(await real.read(`backups/${crsOnly}/velero-backup.json`))).toString("utf8"),
    ) as { metadata: { name: string }; status: { phase: string } };
    meta.metadata.name = failed;
    meta.status.phase = "Failed";
    await copy.write(`backups/${failed}/velero-backup.json`, Readable.from([JSON.stringify(meta)]));
    const copyFrom = `s3://${velero.bucket}/${velero.prefix}-failed`;

    const storage = freshLocal();
    const all = await importVelero("--from", copyFrom, "--all", "--storage", storage.location);
    expect(all.stderr).not.toMatch(/"level":"(warn|error)"/);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain(`Velero backup ${crsOnly} imported as snapshot`);
    expect(all.stdout).toContain(`Velero backup ${failed} is Failed: not imported`);
    const json = await importVelero("--from", copyFrom, "--all", "--storage", storage.location, "-o", "json");
    expect(JSON.parse(json.stdout)).toMatchObject([
      { backup: crsOnly, imported: false },
      { backup: failed, imported: false, phase: "Failed" },
    ]);

    const untouched = freshLocal();
    const one = await importVelero("--from", copyFrom, "--backup", failed, "--storage", untouched.location);
    oneLineFailure(one);
    expect(one.stderr).toMatch(/is Failed: only finished backups are imported/);
    expect(await keys(untouched)).toEqual([]);
  });

  describe("a downloaded tarball", () => {
    let tarball: string;
    beforeAll(async () => {
      tarball = path.join(work, `${crsOnly}.tar.gz`);
      const source = veleroLocation();
      await pipeline(
        Readable.from(await source.read(`backups/${crsOnly}/${crsOnly}.tar.gz`)),
        createWriteStream(tarball),
      );
    });

    it("--from-file imports it; list, verify and inspect work on the snapshot", async () => {
      const storage = freshLocal().location;
      const imp = await importVelero("--from-file", tarball, "--storage", storage, "-o", "json");
      expect(imp.code).toBe(0);
      const [result] = JSON.parse(imp.stdout) as ImportJson[];
      expect(result!.counts!.objects).toBe(fx.counts.widgets + fx.counts.gadgets + fx.counts.clusterpolicies);
      const list = await runCli(["list", "--storage", storage]);
      expect(list.code).toBe(0);
      expect(list.stdout).toContain(result!.id);
      const verify = await runCli(["verify", result!.id, "--storage", storage]);
      expect(verify.stderr).toBe("");
      expect(verify.code).toBe(0);
      const inspect = await runCli(["inspect", result!.id, "--storage", storage]);
      expect(inspect.code).toBe(0);
      expect(inspect.stdout).toContain(`widgets.${fx.group}`);
    });

    it("--sign-key signs the imported snapshot: ssh-keygen accepts it, verify --trusted-signers reports the key", async () => {
      const storage = freshLocal().location;
      const dir = await tempDir();
      const key = await sshKeygen(dir, "importer");
      const trusted = await allowedSigners(dir, "importer@example.com", key);
      const imp = await importVelero(
        "--from-file",
        tarball,
        "--storage",
        storage,
        "--sign-key",
        key.file,
        "-o",
        "json",
      );
      expect(imp.code, imp.stderr).toBe(0);
      const [result] = JSON.parse(imp.stdout) as ImportJson[];
      const manifest = path.join(storage.replace(/^file:\/\//, ""), "snapshots", result!.id, "manifest.json");
      const judged = await sshVerify(
        trusted,
        "importer@example.com",
        readFileSync(`${manifest}.sig`, "utf8"),
        readFileSync(manifest),
      );
      expect(judged.code, judged.out).toBe(0);
      const verify = await runCli(["verify", result!.id, "--storage", storage, "--trusted-signers", trusted]);
      expect(verify.code, verify.stderr).toBe(0);
      expect(verify.stdout).toContain(key.fingerprint);
    });

    it("a truncated copy fails in one line and writes nothing", async () => {
      const storage = freshLocal();
      const cut = path.join(work, "truncated.tar.gz");
      writeFileSync(cut, readFileSync(tarball).subarray(0, Math.floor(statSync(tarball).size / 2)));
      const res = await importVelero("--from-file", cut, "--storage", storage.location);
      oneLineFailure(res);
      expect(res.stderr).toMatch(/truncated/);
      expect(await keys(storage)).toEqual([]);
    });

    it("an unknown metadata/version, re-packed, fails in one line and writes nothing", async () => {
      const storage = freshLocal();
      const dir = mkdtempSync(path.join(work, "repack-"));
      execFileSync("tar", ["-xzf", tarball, "-C", dir]);
      writeFileSync(path.join(dir, "metadata", "version"), "2.0.0\n");
      const repacked = path.join(work, "future.tar.gz");
      // pax headers for long names, as Go's archive/tar (Velero's writer) makes them
      execFileSync("tar", ["--format=pax", "-czf", repacked, "-C", dir, "metadata", "resources"]);
      const res = await importVelero("--from-file", repacked, "--storage", storage.location);
      oneLineFailure(res);
      expect(res.stderr).toMatch(/unknown backup format version "2\.0\.0"/);
      expect(await keys(storage)).toEqual([]);
    });

    it("an item whose path climbs out of the tree, re-packed, fails in one line and writes nothing", async () => {
      const storage = freshLocal();
      const dir = mkdtempSync(path.join(work, "escape-"));
      execFileSync("tar", ["-xzf", tarball, "-C", dir]);
      const escaping = path.join(work, "escaping.tar.gz");
      // GNU tar stores the transformed name as given (it strips a leading ../ only on extraction)
      execFileSync("tar", [
        "--format=pax",
        "-czf",
        escaping,
        "-C",
        dir,
        "--transform",
        "s,^resources/widgets[.][^/]*/v1-preferredversion/namespaces/[^/]*/widget-0001[.]json$,resources/../../widget-0001.json,",
        "metadata",
        "resources",
      ]);
      const res = await importVelero("--from-file", escaping, "--storage", storage.location);
      oneLineFailure(res);
      expect(res.stderr).toContain('tarball entry "resources/../../widget-0001.json" is not allowed');
      expect(await keys(storage)).toEqual([]);
    });
  });

  it("a backup name the location does not have fails in one line and writes nothing", async () => {
    const storage = freshS3();
    const res = await importVelero(
      "--from",
      from,
      "--backup",
      "no-such-backup",
      "--storage",
      storage.location,
    );
    oneLineFailure(res);
    expect(res.stderr).toMatch(/no-such-backup.*does not exist/);
    expect(await keys(storage)).toEqual([]);
  });
});

import { mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleCli, type BundleResult } from "../../cli/bundle.ts";
import { readArchive } from "../../src/archive/reader.ts";
import { expectedArchive, plainManifest } from "../../src/archive/manifest.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { S3Backend } from "../../src/storage/s3.ts";
import { openArchive, resolveSnapshot } from "../../src/storage/snapshots.ts";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { allowedSigners, sshKeygen, tempDir } from "../support/ssh-keygen.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

// `npx crd-backup` and the image run the bundle of the CLI, not the sources the other tests run:
// it must do the same work, S3 SDK (a chunk loaded on demand) and kubeconfig handling included.
describe("the bundled CLI (dist/cli/main.js)", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  let built: BundleResult;
  // two levels below the repository, like dist/cli/main.js, so it finds package.json the same way
  const dir = path.join(ROOT, ".testenv", uniqueName("bundle"));
  const bundle = path.join(dir, "main.js");
  const prefix = uniqueName("bundle");
  const storageUrl = () => `s3://${testEnv().s3.bucket}/${prefix}`;

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    admin = await adminClient();
    [fx, built] = await Promise.all([
      loadFixtures(admin, {
        group: `${uniqueName("bundle")}.fixtures.crd-backup.io`,
        namespaces: [uniqueName("bundle-a")],
        widgetsPerNamespace: 5,
        largeObject: false,
      }),
      bundleCli(bundle),
    ]);
  }, 120_000);
  afterAll(() => {
    admin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs on its own: no import of a package, only of Node's modules and its own chunks", () => {
    expect(built.files[0]).toBe(bundle);
    // the program is a chunk of its own, so that the entry's compile cache covers it
    expect(readFileSync(bundle, "utf8").length).toBeLessThan(4096);
    const imports = built.files.flatMap((file) => [
      ...readFileSync(file, "utf8").matchAll(
        /^import .* from "([^"]+)";$|\(?\bawait \(?import\("([^"]+)"\)/gm,
      ),
    ]);
    const targets = imports.map((m) => (m[1] ?? m[2])!);
    expect(targets.length).toBeGreaterThan(0);
    const local = targets.filter((t) => t.startsWith("./")).map((t) => path.join(dir, t));
    expect(local.filter((f) => !built.files.includes(f))).toEqual([]);
    const outside = targets.filter(
      (t) => !t.startsWith("./") && !t.startsWith("node:") && !/^[a-z_]+$/.test(t),
    );
    expect(outside).toEqual([]);
  });

  it("reports the package's version", async () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
    const res = await runCli(["--version"], { main: bundle });
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toBe(pkg.version);
  });

  it("takes the same snapshot as the sources, to MinIO, and verifies it", async () => {
    const args = ["snapshot", "--storage", storageUrl(), "--include-groups", fx.group, "-o", "json"];
    const bundled = await runCli(args, { main: bundle });
    expect(bundled.stderr).not.toContain("Error:");
    expect(bundled.code).toBe(0);
    const fromSources = await runCli(args);
    expect(fromSources.code).toBe(0);

    const { s3 } = testEnv();
    const storage = new S3Backend({
      bucket: s3.bucket,
      prefix,
      endpoint: s3.endpoint,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const checksums = async (out: string) => {
      const { id, manifest: stored } = await resolveSnapshot(storage, (JSON.parse(out) as { id: string }).id);
      const manifest = plainManifest(stored);
      const sums = new Map<string, string>();
      for await (const entry of readArchive(
        await openArchive(storage, id, manifest.formatVersion),
        expectedArchive(manifest),
      ))
        if (entry.kind !== "header" && entry.kind !== "index") sums.set(entry.name, entry.sha256);
      return { id, sums, manifest };
    };
    const a = await checksums(bundled.stdout);
    const b = await checksums(fromSources.stdout);
    const { clusterpolicies, widgets, gadgets } = fx.counts;
    expect(a.manifest.counts.objects).toBe(clusterpolicies + widgets + gadgets);
    expect(a.manifest.counts.crds).toBe(fx.crdNames.length);
    expect(a.sums).toEqual(b.sums);

    const verify = await runCli(["verify", a.id, "--storage", storageUrl()], { main: bundle });
    expect(verify.code).toBe(0);
    const dryRun = await runCli(["restore", a.id, "--storage", storageUrl(), "--dry-run", "-o", "json"], {
      main: bundle,
    });
    expect(dryRun.stderr).not.toContain("Error:");
    expect(dryRun.code).toBe(0);
  });

  it("signs with --sign-key and checks --trusted-signers (the key parser is bundled too)", async () => {
    const keys = await tempDir();
    const key = await sshKeygen(keys, "bundle");
    const trusted = await allowedSigners(keys, "bundle@example.com", key);
    const args = ["snapshot", "--storage", storageUrl(), "--include-groups", fx.group, "-o", "json"];
    const signed = await runCli([...args, "--sign-key", key.file], { main: bundle });
    expect(signed.code, signed.stderr).toBe(0);
    expect((JSON.parse(signed.stdout) as { signedBy: string }).signedBy).toBe(key.fingerprint);
    const id = (JSON.parse(signed.stdout) as { id: string }).id;
    const verify = await runCli(["verify", id, "--storage", storageUrl(), "--trusted-signers", trusted], {
      main: bundle,
    });
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`signed by ${key.fingerprint} (trusted as bundle@example.com)`);
  });
});

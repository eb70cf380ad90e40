import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readArchive } from "../../src/archive/reader.ts";
import { expectedArchive, plainManifest } from "../../src/archive/manifest.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { parseJson, stringifyJson, isJsonObject } from "../../src/json/json.ts";
import { cleanObject } from "../../src/objects/clean.ts";
import { cleanObjectText } from "../../src/objects/clean-text.ts";
import { S3Backend } from "../../src/storage/s3.ts";
import { openArchive, resolveSnapshot } from "../../src/storage/snapshots.ts";
import { BIG_INTS, loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { kubeconfigForIdentity } from "../env/identity.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";

describe("crd-backup snapshot", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  const prefix = uniqueName("snap");
  let storageUrl: string;

  beforeAll(async () => {
    admin = await adminClient();
    storageUrl = `s3://${testEnv().s3.bucket}/${prefix}`;
    fx = await loadFixtures(admin, {
      group: `${uniqueName("snap")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("snap-a"), uniqueName("snap-b"), uniqueName("snap-c")],
      widgetsPerNamespace: 20,
      largeObject: true,
    });
  });
  afterAll(() => admin.close());

  function backend(): S3Backend {
    const { s3 } = testEnv();
    return new S3Backend({
      bucket: s3.bucket,
      prefix,
      endpoint: s3.endpoint,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
  }

  it("captures every CRD, object and namespace losslessly, paging through small pages, to MinIO", async () => {
    const res = await runCli([
      "snapshot",
      "--storage",
      storageUrl,
      "--include-groups",
      fx.group,
      "--page-size",
      "7",
      "-o",
      "json",
    ]);
    expect(res.stderr).not.toContain("Error:");
    expect(res.code).toBe(0);
    // stderr is not a terminal here: structured log lines only, nothing a library printed on its own
    for (const line of res.stderr.trim().split("\n")) {
      expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    }
    const out = JSON.parse(res.stdout) as {
      id: string;
      status: string;
      counts: { crds: number; namespaces: number; objects: number };
    };
    expect(out.status).toBe("complete");
    const total = fx.counts.widgets + fx.counts.gadgets + fx.counts.clusterpolicies;
    expect(out.counts).toEqual({ crds: 3, namespaces: 3, objects: total });

    // every object in the archive is byte-identical to what the API server serves, less server-owned fields
    const storage = backend();
    const { id, manifest: stored } = await resolveSnapshot(storage, out.id);
    const manifest = plainManifest(stored);
    let objects = 0;
    let crds = 0;
    const namespaces: string[] = [];
    for await (const entry of readArchive(
      await openArchive(storage, id, manifest.formatVersion),
      expectedArchive(manifest),
    )) {
      if (entry.kind === "object") {
        const { group, version, plural, namespace, name } = entry.ref;
        const path = namespace
          ? `/apis/${group}/${version}/namespaces/${namespace}/${plural}/${name}`
          : `/apis/${group}/${version}/${plural}/${name}`;
        const served = (await admin.request({ path })).body;
        const live = parseJson(served.toString("utf8"));
        if (!isJsonObject(live)) throw new Error("not an object");
        const { object, uid } = cleanObject(live);
        // byte for byte what the server serves, less server-owned fields...
        expect(entry.body.equals(cleanObjectText(served, 0).body.toBuffer())).toBe(true);
        // ...and, by an independent lossless parse, the same values
        expect(stringifyJson(parseJson(entry.body.toString("utf8")))).toBe(stringifyJson(object));
        expect(entry.record.uid).toBe(uid);
        objects++;
      } else if (entry.kind === "crd") {
        const live = parseJson(
          (
            await admin.request({
              path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${entry.record.name}`,
            })
          ).text,
        );
        if (!isJsonObject(live)) throw new Error("not an object");
        expect(entry.body.toString("utf8")).toBe(
          stringifyJson(cleanObject(live, { dropStatus: true }).object),
        );
        crds++;
      } else if (entry.kind === "namespace") {
        namespaces.push(entry.record.name);
        expect(JSON.parse(entry.body.toString())).toMatchObject({
          metadata: { labels: { team: "fixtures" } },
        });
      }
    }
    expect(objects).toBe(total);
    expect(crds).toBe(3);
    expect(namespaces.sort()).toEqual([...fx.namespaces].sort());
  });

  it("keeps int64 values beyond 2^53, unicode, status, owners, finalizers and schema keywords exactly", async () => {
    const res = await runCli([
      "snapshot",
      "--storage",
      storageUrl,
      "--include-groups",
      fx.group,
      "-o",
      "json",
    ]);
    expect(res.code).toBe(0);
    const storage = backend();
    const { id, manifest: stored } = await resolveSnapshot(
      storage,
      (JSON.parse(res.stdout) as { id: string }).id,
    );
    const manifest = plainManifest(stored);
    const bodies = new Map<string, string>();
    for await (const entry of readArchive(
      await openArchive(storage, id, manifest.formatVersion),
      expectedArchive(manifest),
    )) {
      if (entry.kind === "object" || entry.kind === "crd")
        bodies.set(entry.name, entry.body.toString("utf8"));
    }
    const widget = [...bodies].find(([k]) => k.endsWith("/widget-0001.json"))![1];
    const w = JSON.parse(widget) as Record<string, Record<string, unknown>>;
    expect(widget).toContain(`"counter":${BIG_INTS[1]}`);
    expect(widget).toContain(`"observed":${BIG_INTS[1]}`);
    expect(widget).toContain("Grüße, 世界 ✓ — emoji 🚀");
    expect(w["metadata"]!["finalizers"]).toEqual(["example.com/cleanup"]);
    expect(w["metadata"]!["ownerReferences"]).toHaveLength(1);
    expect(w["status"]!["phase"]).toBe("Ready");
    for (const field of ["uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"]) {
      expect(w["metadata"]).not.toHaveProperty(field);
    }
    const policy = [...bodies].find(([k]) => k.includes("/clusterpolicies/_cluster/"))![1];
    expect(policy).toContain(`"limit":${BIG_INTS[2]}`);
    const gadget = [...bodies].find(([k]) => k.includes("/gadgets/"))![1];
    expect(gadget).toContain(`"weight":${BIG_INTS[0]}`);
    const large = [...bodies].find(([k]) => k.endsWith("/widget-large.json"))![1];
    expect(large.length).toBeGreaterThan(1_400_000);
    const crd = bodies.get(`crds/widgets.${fx.group}.json`)!;
    for (const keyword of [
      '"x-kubernetes-int-or-string":true',
      '"default":"small"',
      '"enum":["small","medium","large"]',
      '"x-kubernetes-preserve-unknown-fields":true',
      '"x-kubernetes-validations"',
      '"x-kubernetes-list-type":"set"',
      '"x-kubernetes-map-type":"atomic"',
    ]) {
      expect(crd).toContain(keyword);
    }
    expect(JSON.parse(crd)).not.toHaveProperty("status");
  });

  it("lists, inspects and verifies the snapshot; -o json has the documented shapes", async () => {
    const list = await runCli(["list", "--storage", storageUrl, "-o", "json"]);
    expect(list.code).toBe(0);
    const snapshots = JSON.parse(list.stdout) as { id: string; status: string }[];
    expect(snapshots.length).toBeGreaterThanOrEqual(2);
    expect(snapshots.map((s) => s.id)).toEqual([...snapshots.map((s) => s.id)].sort());

    const inspect = await runCli(["inspect", "latest", "--storage", storageUrl, "-o", "json"]);
    expect(inspect.code).toBe(0);
    const info = JSON.parse(inspect.stdout) as {
      id: string;
      resources: {
        group: string;
        version: string;
        resource: string;
        namespaced: boolean;
        count: number;
        servedVersions: string[];
      }[];
    };
    expect(info.id).toBe(snapshots.at(-1)!.id);
    const byResource = Object.fromEntries(info.resources.map((r) => [r.resource, r]));
    expect(byResource["widgets"]).toMatchObject({
      group: fx.group,
      version: "v1",
      namespaced: true,
      count: fx.counts.widgets,
      servedVersions: ["v1", "v1beta1"],
    });
    expect(byResource["clusterpolicies"]).toMatchObject({ version: "v1alpha1", namespaced: false, count: 1 });
    expect(byResource["gadgets"]).toMatchObject({
      version: "v2",
      namespaced: true,
      count: fx.counts.gadgets,
    });

    const verify = await runCli(["verify", info.id, "--storage", storageUrl]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(new RegExp(`^snapshot ${info.id} ok: `));
  });

  it("filters by namespace and label selector", async () => {
    const [keep] = fx.namespaces;
    const res = await runCli([
      "snapshot",
      "--storage",
      storageUrl,
      "--include-groups",
      fx.group,
      "--include-namespaces",
      keep!,
      "-l",
      "parity=even",
      "-o",
      "json",
    ]);
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout) as {
      counts: { namespaces: number; objects: number };
      resources: { resource: string; count: number }[];
    };
    const counts = Object.fromEntries(out.resources.map((r) => [r.resource, r.count]));
    expect(counts["widgets"]).toBe(10); // the even half of one namespace's 20
    expect(counts["gadgets"]).toBe(0); // gadgets carry no parity label
    expect(counts["clusterpolicies"]).toBe(0);
    expect(out.counts.namespaces).toBe(1);
  });

  it("is partial, exit 3, naming the resource, when one resource is forbidden; the rest is captured", async () => {
    const kubeconfig = await kubeconfigForIdentity(testEnv(), admin, uniqueName("no-gadgets"), [
      {
        apiGroups: ["apiextensions.k8s.io"],
        resources: ["customresourcedefinitions"],
        verbs: ["get", "list"],
      },
      { apiGroups: [""], resources: ["namespaces"], verbs: ["get"] },
      { apiGroups: [fx.group], resources: ["widgets", "clusterpolicies"], verbs: ["get", "list"] },
    ]);
    const res = await runCli(
      ["snapshot", "--storage", storageUrl, "--include-groups", fx.group, "-o", "json"],
      {
        env: { KUBECONFIG: kubeconfig },
      },
    );
    expect(res.code).toBe(3);
    const out = JSON.parse(res.stdout) as {
      status: string;
      resources: { resource: string; count: number; errors: { reason: string; message: string }[] }[];
    };
    expect(out.status).toBe("partial");
    const gadgets = out.resources.find((r) => r.resource === "gadgets")!;
    expect(gadgets.errors[0]!.reason).toBe("Forbidden");
    expect(gadgets.errors[0]!.message).toContain(`gadgets.${fx.group}`);
    expect(out.resources.find((r) => r.resource === "widgets")!.count).toBe(fx.counts.widgets);
    expect(res.stderr).toMatch(/resource incomplete.*gadgets/);
  });

  it("reports a CRD that is not Established by name, and still captures the others", async () => {
    const group = `${uniqueName("clash")}.fixtures.crd-backup.io`;
    const crd = (plural: string) => ({
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: `${plural}.${group}` },
      spec: {
        group,
        scope: "Namespaced",
        names: { plural, kind: "Thing" }, // the same kind twice: the second is never accepted
        versions: [
          { name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object" } } },
        ],
      },
    });
    await admin.request({
      method: "POST",
      path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
      body: JSON.stringify(crd("things")),
    });
    await new Promise((r) => setTimeout(r, 1500));
    await admin.request({
      method: "POST",
      path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
      body: JSON.stringify(crd("otherthings")),
    });
    await new Promise((r) => setTimeout(r, 1500));
    const res = await runCli(["snapshot", "--storage", storageUrl, "--include-groups", group, "-o", "json"]);
    expect(res.code).toBe(3);
    const out = JSON.parse(res.stdout) as {
      resources: { resource: string; errors: { reason: string; message: string }[] }[];
    };
    const bad = out.resources.find((r) => r.resource === "otherthings")!;
    expect(bad.errors[0]).toMatchObject({ reason: "NotListable" });
    expect(bad.errors[0]!.message).toContain(`otherthings.${group}`);
    expect(out.resources.find((r) => r.resource === "things")!.errors).toEqual([]);
  });
});

describe("crd-backup snapshot to a local directory, and bad input", () => {
  it("writes to a plain path by default layout, and verify catches a tampered archive", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-local-"));
    const res = await runCli([
      "snapshot",
      "--storage",
      dir,
      "--include-groups",
      "apiextensions.k8s.io",
      "-o",
      "json",
    ]);
    expect(res.code).toBe(0);
    const { id } = JSON.parse(res.stdout) as { id: string };
    expect(readdirSync(path.join(dir, "snapshots", id)).sort()).toEqual(["archive.tar.zst", "manifest.json"]);
    expect((await runCli(["verify", "latest", "--storage", `file://${dir}`])).code).toBe(0);

    const archive = path.join(dir, "snapshots", id, "archive.tar.zst");
    const bytes = readFileSync(archive);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(archive, bytes);
    const bad = await runCli(["verify", id, "--storage", dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toMatch(
      new RegExp(`^crd-backup: snapshot ${id} is damaged: .*(corrupt|sha256|checksum|does not match)`, "i"),
    );
  });

  it("refuses wrong flags with exit 2 and one line", async () => {
    // each message names the flag (or argument) it refuses; commander's own errors add a usage hint
    const cases: [string[], RegExp][] = [
      [["snapshot", "--page-size", "0"], /^crd-backup: --page-size must be a whole number >= 1, not "0"$/],
      [
        ["snapshot", "--storage", "ftp://example/x"],
        /^crd-backup: --storage ftp:\/\/example\/x: unsupported scheme/,
      ],
      [["snapshot", "--bogus"], /^error: unknown option '--bogus'$/],
      [["verify", "not-an-id"], /^crd-backup: "not-an-id" is not a snapshot id/],
      [["snapshot", "-o", "yaml"], /^error: option '-o, --output <format>' argument 'yaml' is invalid/],
    ];
    for (const [args, message] of cases) {
      const res = await runCli(args);
      expect(res.code, args.join(" ")).toBe(2);
      const [line, ...rest] = res.stderr.trim().split("\n");
      expect(line, args.join(" ")).toMatch(message);
      expect(rest, args.join(" ")).toEqual(
        line!.startsWith("error: ") ? [`(run crd-backup ${args[0]} --help for usage)`] : [],
      );
      expect(res.stderr, args.join(" ")).not.toMatch(/\n\s+at /); // no stack trace
    }
  });

  it("fails with one line and leaves nothing when storage is unreachable", async () => {
    const res = await runCli([
      "snapshot",
      "--storage",
      "s3://nowhere-bucket/x",
      "--s3-endpoint",
      "http://127.0.0.1:9",
      "--include-groups",
      "apiextensions.k8s.io",
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split("\n").at(-1)).toMatch(/^crd-backup: .*s3:\/\/nowhere-bucket/);
    expect(res.stderr).not.toContain(testEnv().s3.secretAccessKey);
  });

  it("fails with one line when the Kubernetes API is unreachable", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-kc-"));
    const kubeconfig = path.join(dir, "config");
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          { name: "c", cluster: { server: "https://127.0.0.1:9", "insecure-skip-tls-verify": true } },
        ],
        users: [{ name: "u", user: { token: "secret-token-value" } }],
        contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
        "current-context": "c",
      }),
    );
    const res = await runCli(["snapshot", "--storage", dir, "--request-timeout", "5"], {
      env: { KUBECONFIG: kubeconfig },
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cannot reach the Kubernetes API/);
    expect(res.stderr).not.toContain("secret-token-value");
    expect(readdirSync(dir)).toEqual(["config"]); // no snapshot folder, nothing half-written
  });
});

/**
 * Secrets hygiene: with a bearer token, a client key and S3 keys configured, none of them appears
 * in anything crd-backup prints, at the default log level or with -o json, failures included.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { kubeconfigForIdentity } from "../env/identity.ts";
import { runCli, type CliResult } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";

describe("secrets never reach output or logs", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  let tokenConfig: string;
  let secrets: [string, string][];
  const outputs: [string, CliResult][] = [];
  const tmp = mkdtempSync(path.join(os.tmpdir(), "crd-backup-secrets-"));

  beforeAll(async () => {
    const env = testEnv();
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("sec")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("sec")],
      widgetsPerNamespace: 2,
    });
    // an identity that may read everything but the gadgets: a 403 in the middle of the run
    tokenConfig = await kubeconfigForIdentity(env, admin, uniqueName("secrets"), [
      {
        apiGroups: ["apiextensions.k8s.io"],
        resources: ["customresourcedefinitions"],
        verbs: ["get", "list"],
      },
      { apiGroups: [fx.group], resources: ["widgets", "clusterpolicies"], verbs: ["get", "list"] },
      { apiGroups: [""], resources: ["namespaces"], verbs: ["get", "list"] },
    ]);
    const token = (JSON.parse(readFileSync(tokenConfig, "utf8")) as { users: { user: { token: string } }[] })
      .users[0]!.user.token;
    const adminConfig = JSON.parse(readFileSync(env.kubeconfig, "utf8")) as {
      users: { user: { "client-key": string } }[];
    };
    const keyPem = readFileSync(adminConfig.users[0]!.user["client-key"], "utf8");
    // every line of the key's body, and the token's signature part alone, must stay unseen
    const keyLines = keyPem.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"));
    secrets = [
      ["bearer token", token],
      ["bearer token signature", token.split(".")[2]!],
      ["S3 secret access key", env.s3.secretAccessKey],
      ["S3 access key id", env.s3.accessKeyId],
      ...keyLines.map((l, i): [string, string] => [`client key line ${i}`, l]),
    ];
    expect(secrets.every(([, v]) => v.length >= 8)).toBe(true);
  });
  afterAll(() => admin.close());

  const s3 = () => `s3://${testEnv().s3.bucket}/${uniqueName("sec")}`;

  it("snapshot, list, inspect, verify, diff, restore --dry-run and export, with a token, at the default level and -o json", async () => {
    const storage = s3();
    const asToken = { env: { KUBECONFIG: tokenConfig } };
    const snap = await runCli(
      ["snapshot", "--storage", storage, "--include-groups", fx.group, "-o", "json"],
      asToken,
    );
    outputs.push(["snapshot (partial: 403 on gadgets)", snap]);
    expect(snap.code).toBe(3);
    const id = (JSON.parse(snap.stdout) as { id: string }).id;
    for (const args of [
      ["list", "--storage", storage, "-o", "json"],
      ["inspect", id, "--storage", storage, "-o", "json", "--objects"],
      ["verify", id, "--storage", storage],
      ["diff", id, "--storage", storage, "-o", "json"],
      ["restore", id, "--storage", storage, "--dry-run", "-o", "json"],
      ["export", id, "--storage", storage, "--to", path.join(tmp, "export")],
    ]) {
      const res = await runCli(args, asToken);
      outputs.push([args[0]!, res]);
      expect(res.code, `${args[0]}: ${res.stderr}`).not.toBe(null);
    }
    // the admin's client certificate and key, too
    const admin = await runCli(["snapshot", "--storage", storage, "--include-groups", fx.group]);
    outputs.push(["snapshot with a client certificate", admin]);
    expect(admin.code).toBe(0);
  });

  it("failures: a wrong S3 secret, a revoked token, an unreachable API server, unreachable storage", async () => {
    const env = testEnv();
    const wrongSecret = await runCli(["snapshot", "--storage", s3(), "--include-groups", fx.group], {
      env: { AWS_SECRET_ACCESS_KEY: `${env.s3.secretAccessKey}x` },
    });
    outputs.push(["wrong S3 secret", wrongSecret]);
    expect(wrongSecret.code).toBe(1);
    secrets.push(["the wrong S3 secret", `${env.s3.secretAccessKey}x`]);

    const revoked = JSON.parse(readFileSync(tokenConfig, "utf8")) as { users: { user: { token: string } }[] };
    const badToken = `${revoked.users[0]!.user.token.slice(0, -6)}AAAAAA`;
    revoked.users[0]!.user.token = badToken;
    const revokedFile = path.join(tmp, "revoked.json");
    writeFileSync(revokedFile, JSON.stringify(revoked));
    const unauthorized = await runCli(["snapshot", "--storage", s3(), "-o", "json"], {
      env: { KUBECONFIG: revokedFile },
    });
    outputs.push(["invalid token (401)", unauthorized]);
    expect(unauthorized.code).toBe(1);
    expect(unauthorized.stderr).toMatch(/401|Unauthorized/);
    secrets.push(["the invalid token", badToken]);

    const away = JSON.parse(readFileSync(tokenConfig, "utf8")) as {
      clusters: { cluster: { server: string } }[];
    };
    away.clusters[0]!.cluster.server = "https://127.0.0.1:1";
    const awayFile = path.join(tmp, "away.json");
    writeFileSync(awayFile, JSON.stringify(away));
    const unreachable = await runCli(["snapshot", "--storage", s3(), "--request-timeout", "2"], {
      env: { KUBECONFIG: awayFile },
    });
    outputs.push(["unreachable API server", unreachable]);
    expect(unreachable.code).toBe(1);

    const noStorage = await runCli(["list", "--storage", "s3://nowhere/x", "-o", "json"], {
      env: { AWS_ENDPOINT_URL: "http://127.0.0.1:1", AWS_MAX_ATTEMPTS: "1" },
    });
    outputs.push(["unreachable storage", noStorage]);
    expect(noStorage.code).toBe(1);
  });

  it("none of them appears in anything printed above (tests run in order; this one checks them all)", () => {
    expect(outputs.length).toBeGreaterThanOrEqual(11);
    for (const [what, res] of outputs) {
      for (const [name, value] of secrets) {
        expect(res.stdout.includes(value), `${name} in the stdout of ${what}`).toBe(false);
        expect(res.stderr.includes(value), `${name} in the stderr of ${what}`).toBe(false);
      }
    }
  });
});

import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { zstdDecompressSync } from "node:zlib";
import { setTimeout as sleep } from "node:timers/promises";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI_MAIN, cliNodeFlags } from "../../cli/node-flags.ts";
import { BIG_INTS, loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { envVars, runCli } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { liveState, type LiveState } from "../support/compare.ts";
import { deleteFixtures } from "../support/fixtures.ts";

const RESOURCES: [string, string][] = [
  ["widgets", "v1"],
  ["clusterpolicies", "v1alpha1"],
  ["gadgets", "v2"],
];

function s3(): S3Client {
  const { s3 } = testEnv();
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}

/** Every object under the prefix, key and bytes, read raw from MinIO. */
async function everyStoredObject(client: S3Client, bucket: string, prefix: string) {
  const out: { key: string; body: Buffer }[] = [];
  const list = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }));
  for (const o of list.Contents ?? []) {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key }));
    out.push({ key: o.Key!, body: Buffer.from(await res.Body!.transformToByteArray()) });
  }
  return out;
}

async function namespaceExists(admin: KubeClient, name: string): Promise<boolean> {
  try {
    await admin.request({ path: `/api/v1/namespaces/${name}` });
    return true;
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 404) return false;
    throw e;
  }
}

describe("encrypted snapshots (age)", () => {
  const keys = mkdtempSync(path.join(os.tmpdir(), "crd-backup-keys-"));
  const keyA = path.join(keys, "a.txt"); // X25519, given with --encrypt-to
  const keyPq = path.join(keys, "pq.txt"); // post-quantum hybrid, in a recipients file
  const keyNew = path.join(keys, "new.txt"); // the rekey target
  const keyWrong = path.join(keys, "wrong.txt");
  let recipientA: string;
  let recipientPq: string;
  let recipientNew: string;
  let admin: KubeClient;
  let client: S3Client;
  let fx: LoadedFixtures;
  let before: LiveState;
  let id: string;
  const bucket = testEnv().s3.bucket;
  const prefix = uniqueName("enc");
  const storage = `s3://${bucket}/${prefix}`;

  beforeAll(async () => {
    admin = await adminClient();
    client = s3();
    const gen = async (file: string, pq = false) => {
      const res = await runCli(["keygen", "--output", file, ...(pq ? ["--pq"] : [])]);
      expect(res.code, res.stderr).toBe(0);
      return res.stdout.trim();
    };
    [recipientA, recipientPq, recipientNew] = await Promise.all([gen(keyA), gen(keyPq, true), gen(keyNew)]);
    await gen(keyWrong);
    writeFileSync(path.join(keys, "recipients.txt"), `# the DR team's key\n${recipientPq}\n\n`);
    fx = await loadFixtures(admin, {
      group: `${uniqueName("enc")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("enc-a"), uniqueName("enc-b")],
      widgetsPerNamespace: 6,
    });
    const snap = await runCli(
      [
        "snapshot",
        "--storage",
        storage,
        "--include-groups",
        fx.group,
        "--encrypt-to",
        recipientA,
        "-o",
        "json",
      ],
      { env: { CRD_BACKUP_IDENTITY_FILE: "" } },
    );
    expect(snap.code, snap.stderr).toBe(0);
    // the second recipient through the environment variable, as the CronJob gives it
    const snap2 = await runCli(
      [
        "snapshot",
        "--storage",
        storage,
        "--include-groups",
        fx.group,
        "--encrypt-to-file",
        path.join(keys, "recipients.txt"),
        "-o",
        "json",
      ],
      { env: { CRD_BACKUP_ENCRYPT_TO: recipientA } },
    );
    expect(snap2.code, snap2.stderr).toBe(0);
    id = (JSON.parse(snap2.stdout) as { id: string }).id;
    before = await liveState(admin, fx.group, RESOURCES, { withStatus: true });
  });
  afterAll(() => {
    admin.close();
    client.destroy();
  });

  it("keygen writes the identity with mode 0600 and prints its recipient; it never overwrites a key", async () => {
    expect(statSync(keyA).mode & 0o777).toBe(0o600);
    expect(recipientA).toMatch(/^age1[0-9a-z]{58}$/);
    expect(recipientPq).toMatch(/^age1pq1/);
    expect(readFileSync(keyA, "utf8")).toContain(`# public key: ${recipientA}`);
    const again = await runCli(["keygen", "--output", keyA]);
    expect(again.code).toBe(2);
    expect(readFileSync(keyA, "utf8")).toContain(recipientA);
  });

  it("no stored byte reveals an object name, namespace, label, annotation or spec value", async () => {
    const objects = await everyStoredObject(client, bucket, prefix);
    expect(objects.map((o) => o.key.slice(prefix.length + 1)).sort()).toEqual(
      expect.arrayContaining([`snapshots/${id}/archive.tar.zst.age`, `snapshots/${id}/manifest.json`]),
    );
    const secrets = [
      fx.group,
      ...fx.namespaces,
      "widget-0001",
      "gadget-0000",
      "default-policy",
      "cost-center",
      "gold",
      "parity",
      "example.com/cleanup",
      BIG_INTS[0]!,
      BIG_INTS[2]!,
      "Grüße",
      new URL(testEnv().apiServer).host, // the API server's address is sealed too
    ];
    for (const { key, body } of objects) {
      // the random prefix may itself start with enc-a: only the keys crd-backup chose must not leak
      expect(key.slice(prefix.length + 1)).not.toMatch(/widget|enc-a|enc-b|fixtures/);
      for (const s of secrets) expect(body.includes(Buffer.from(s)), `${s} in ${key}`).toBe(false);
    }
    // the same search finds them once decrypted: the test would notice plain bytes
    const archive = objects.find((o) => o.key.endsWith(`${id}/archive.tar.zst.age`))!.body;
    const plain = execFileSync(testEnv().tools.age, ["-d", "-i", keyPq], { input: archive });
    const tar = zstdDecompressSync(plain);
    for (const s of [fx.group, ...fx.namespaces, "widget-0001", "gold", BIG_INTS[0]!])
      expect(tar.includes(Buffer.from(s)), s).toBe(true);
    // the plaintext manifest holds only what list and prune need
    const manifest = JSON.parse(
      objects.find((o) => o.key.endsWith(`${id}/manifest.json`))!.body.toString(),
    ) as Record<string, unknown>;
    expect(Object.keys(manifest)).toEqual([
      "formatVersion",
      "toolVersion",
      "snapshotId",
      "status",
      "cluster",
      "startedAt",
      "finishedAt",
      "archive",
      "encryption",
    ]);
    expect(manifest["formatVersion"]).toBe(2);
    expect((manifest["encryption"] as { recipients: string[] }).recipients.sort()).toEqual(
      [recipientA, recipientPq].sort(),
    );
  });

  it("the standard age tool turns the stored objects into a plain snapshot (format version 3) that verifies", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "crd-backup-age-"));
    const objects = await everyStoredObject(client, bucket, prefix);
    const stored = (name: string) => objects.find((o) => o.key.endsWith(`${id}/${name}`))!.body;
    const age = testEnv().tools.age;
    mkdirSync(path.join(dir, "snapshots", id), { recursive: true });
    // exactly docs/format.md's recipe: age -d the archive, age -d the sealed manifest
    writeFileSync(
      path.join(dir, "snapshots", id, "archive.tar.zst"),
      execFileSync(age, ["-d", "-i", keyA], { input: stored("archive.tar.zst.age") }),
    );
    const sealed = (JSON.parse(stored("manifest.json").toString()) as { encryption: { sealed: string } })
      .encryption.sealed;
    const inner = execFileSync(age, ["-d", "-i", keyA], { input: sealed });
    writeFileSync(path.join(dir, "snapshots", id, "manifest.json"), inner);
    expect((JSON.parse(inner.toString()) as { formatVersion: number }).formatVersion).toBe(3);
    const res = await runCli(["verify", id, "--storage", dir]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^snapshot ${id} ok: \\d+ entries`));
  });

  it("list and verify without an identity: the ciphertext's digest is checked, and the output says content was not", async () => {
    const list = await runCli(["list", "--storage", storage, "-o", "json"]);
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout) as { id: string; encrypted?: boolean; counts?: unknown }[];
    expect(listed.find((s) => s.id === id)).toMatchObject({ encrypted: true });
    expect(listed.find((s) => s.id === id)!.counts).toBeUndefined();

    const res = await runCli(["verify", id, "--storage", storage], { env: { CRD_BACKUP_IDENTITY_FILE: "" } });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/ciphertext ok: .*content not checked \(encrypted to age1/);
    const full = await runCli(["verify", id, "--storage", storage, "--identity", keyPq]);
    expect(full.code, full.stderr).toBe(0);
    expect(full.stdout).toMatch(new RegExp(`^snapshot ${id} ok: \\d+ entries .*; encrypted: `));
    const inspect = await runCli(["inspect", id, "--storage", storage, "--objects"], {
      env: { CRD_BACKUP_IDENTITY_FILE: keyA },
    });
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(inspect.stdout).toContain(`widgets.${fx.group}`);
  });

  it("restore, diff, export and inspect --objects without an identity, or with a wrong one, exit 1 with one line naming the recipients, and write nothing", async () => {
    const fresh = uniqueName("enc-none");
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), "crd-backup-exp-")), "tree");
    for (const extra of [[], ["--identity", keyWrong]]) {
      for (const args of [
        ["restore", id, "--storage", storage, "--namespace-map", `${fx.namespaces[0]}=${fresh}`],
        ["export", id, "--storage", storage, "--to", out],
        ["diff", id, "--storage", storage],
        ["inspect", id, "--storage", storage, "--objects"],
      ]) {
        const res = await runCli([...args, ...extra], { env: { CRD_BACKUP_IDENTITY_FILE: "" } });
        expect(res.code, `${args[0]} ${extra.join(" ")}: ${res.stderr}`).toBe(1);
        const lines = res.stderr.trim().split("\n");
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(new RegExp(`snapshot ${id} is encrypted to age1`));
        expect(lines[0]).toMatch(extra.length ? /none of the identities/ : /give --identity/);
        expect(res.stderr).not.toContain("AGE-SECRET-KEY");
      }
    }
    expect(await namespaceExists(admin, fresh)).toBe(false);
    expect(() => statSync(out)).toThrow();
  });

  it("round trip: restore with --identity (the post-quantum key) into a cluster without the CRDs brings back every object exactly", async () => {
    await deleteFixtures(admin, fx);
    const res = await runCli([
      "restore",
      id,
      "--storage",
      storage,
      "--restore-status",
      "--identity",
      keyPq,
      "-o",
      "json",
    ]);
    expect(res.code, res.stderr).toBe(0);
    const after = await liveState(admin, fx.group, RESOURCES, { withStatus: true });
    expect(after.forms.size).toBe(before.forms.size);
    for (const [key, form] of before.forms) expect(after.forms.get(key), key).toBe(form);
  });

  it("tampered ciphertext is refused before any write, even with the manifest's digest rewritten to match", async () => {
    const objects = await everyStoredObject(client, bucket, prefix);
    const archive = Buffer.from(objects.find((o) => o.key.endsWith(`${id}/archive.tar.zst.age`))!.body);
    const manifest = objects.find((o) => o.key.endsWith(`${id}/manifest.json`))!.body.toString();
    archive[Math.floor(archive.length / 2)]! ^= 0x01;
    const { createHash } = await import("node:crypto");
    const sha = createHash("sha256").update(archive).digest("hex");
    for (const rewrite of [false, true]) {
      const copy = uniqueName("enc-tamper");
      const doc = JSON.parse(manifest) as { archive: { sha256: string } };
      if (rewrite) doc.archive.sha256 = sha;
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${copy}/snapshots/${id}/archive.tar.zst.age`,
          Body: archive,
        }),
      );
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${copy}/snapshots/${id}/manifest.json`,
          Body: JSON.stringify(doc),
        }),
      );
      const fresh = uniqueName("enc-tampered");
      const res = await runCli([
        "restore",
        id,
        "--storage",
        `s3://${bucket}/${copy}`,
        "--identity",
        keyA,
        "--namespace-map",
        `${fx.namespaces[0]}=${fresh}`,
      ]);
      expect(res.code).toBe(1);
      expect(res.stderr.trim().split("\n")).toHaveLength(1);
      expect(res.stderr).toMatch(
        rewrite ? /age encryption does not check out.*tampered/ : /does not (match|check out)/,
      );
      expect(await namespaceExists(admin, fresh)).toBe(false);
      const verify = await runCli(["verify", id, "--storage", `s3://${bucket}/${copy}`]);
      expect(verify.code).toBe(rewrite ? 0 : 1); // without a key, only the digest can be checked
    }
  });

  it("rekey: the new identity decrypts, the old one no longer does, and the snapshot verifies", async () => {
    const res = await runCli([
      "rekey",
      id,
      "--storage",
      storage,
      "--encrypt-to",
      recipientNew,
      "--identity",
      keyA,
      "--verify-identity",
      keyNew,
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(
      new RegExp(
        `^${id} rekeyed: archive\\.\\d{8}T\\d{6}Z-[0-9a-f]{8}\\.tar\\.zst\\.age; verified with --verify-identity`,
      ),
    );
    const old = await runCli(["verify", id, "--storage", storage, "--identity", keyA]);
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/none of the identities/);
    const now = await runCli(["verify", id, "--storage", storage, "--identity", keyNew]);
    expect(now.code, now.stderr).toBe(0);
    // verified with the new identity, the old archive is gone: only the new one is stored
    const keysLeft = (await everyStoredObject(client, bucket, prefix))
      .map((o) => o.key)
      .filter((k) => k.includes(id));
    expect(keysLeft).toHaveLength(2);
    const plain = execFileSync(testEnv().tools.age, ["-d", "-i", keyNew], {
      input: (await everyStoredObject(client, bucket, prefix)).find((o) => o.key.includes(`${id}/archive.`))!
        .body,
    });
    expect(zstdDecompressSync(plain).includes(Buffer.from("crd-backup-archive"))).toBe(true);
  });

  it("a rekey killed at any moment leaves every snapshot readable", async () => {
    const killPrefix = uniqueName("enc-kill");
    const where = `s3://${bucket}/${killPrefix}`;
    const snap = await runCli([
      "snapshot",
      "--storage",
      where,
      "--include-groups",
      fx.group,
      "--encrypt-to",
      recipientA,
      "-o",
      "json",
    ]);
    expect(snap.code, snap.stderr).toBe(0);
    const killId = (JSON.parse(snap.stdout) as { id: string }).id;
    let target = recipientNew;
    let identity = keyA;
    let killed = 0;
    for (const delay of [150, 400, 700, 1000, 1400, 2000]) {
      const child = spawn(
        process.execPath,
        [
          ...cliNodeFlags(),
          CLI_MAIN,
          "rekey",
          "--all",
          "--storage",
          where,
          "--encrypt-to",
          target,
          "--identity",
          identity,
        ],
        {
          env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp", ...envVars() },
          stdio: "ignore",
        },
      );
      const closed = new Promise<NodeJS.Signals | null>((r) =>
        child.once("close", (_code, signal) => r(signal)),
      );
      await sleep(delay);
      child.kill("SIGKILL"); // a no-op when it has finished already
      if ((await closed) === "SIGKILL") killed++;
      // readable with one of the two keys: the manifest names a whole archive
      const res = await runCli([
        "verify",
        killId,
        "--storage",
        where,
        "--identity",
        keyA,
        "--identity",
        keyNew,
      ]);
      expect(res.code, `killed after ${delay} ms: ${res.stderr}`).toBe(0);
      expect(res.stdout).toMatch(/ok: \d+ entries/);
      const which = await runCli(["verify", killId, "--storage", where, "--identity", keyNew]);
      if (which.code === 0) [target, identity] = [recipientA, keyNew];
      else [target, identity] = [recipientNew, keyA];
    }
    expect(killed).toBeGreaterThan(0);
    // what the interrupted runs left is removed by prune once past its grace period
    const prune = await runCli(["prune", "--storage", where, "--keep-last", "1", "--grace", "0h"]);
    expect(prune.code, prune.stderr).toBe(0);
    const left = (await everyStoredObject(client, bucket, killPrefix)).map((o) => o.key);
    expect(left.filter((k) => k.includes("/archive."))).toHaveLength(1);
    const res = await runCli([
      "verify",
      killId,
      "--storage",
      where,
      "--identity",
      keyA,
      "--identity",
      keyNew,
    ]);
    expect(res.code, res.stderr).toBe(0);
  });
});

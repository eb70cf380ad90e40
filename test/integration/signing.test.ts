/**
 * Signed backups (issue 26, item 4), judged by OpenSSH's own ssh-keygen: what `--sign-key` stores
 * beside a manifest or a journal segment verifies with `ssh-keygen -Y verify`, and readers with
 * `--trusted-signers` refuse, before any write, whatever is unsigned, signed by another key, or
 * signed over other bytes. Against the real kube-apiserver, MinIO and a local directory.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFixtures, type LoadedFixtures } from "../../fixtures/load.ts";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { readAll, type StorageBackend } from "../../src/storage/backend.ts";
import { manifestKey } from "../../src/storage/layout.ts";
import { S3Backend } from "../../src/storage/s3.ts";
import { runCli } from "../support/cli.ts";
import { adminClient, testEnv, uniqueName } from "../support/cluster.ts";
import { createRaw, objPath, spoolDir, startRecorder } from "../support/recorder.ts";
import { freshLocal, freshS3 } from "../support/storage.ts";
import { allowedSigners, sshKeygen, sshVerify, tempDir, type SshKey } from "../support/ssh-keygen.ts";

async function exists(admin: KubeClient, pathname: string): Promise<boolean> {
  try {
    await admin.request({ path: pathname });
    return true;
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 404) return false;
    throw e;
  }
}

const read = async (storage: StorageBackend, key: string) => readAll(await storage.read(key));
const put = (storage: StorageBackend, key: string, bytes: Buffer) =>
  storage.write(key, Readable.from([bytes]));

describe("signed backups (--sign-key, --trusted-signers)", () => {
  let admin: KubeClient;
  let fx: LoadedFixtures;
  let ours: SshKey;
  let other: SshKey;
  let trustOurs: string;
  let trustOther: string;
  let keys: string;

  /** A snapshot of the fixtures to `location`; its id. */
  async function snapshot(location: string, ...extra: string[]): Promise<string> {
    const res = await runCli([
      "snapshot",
      "--storage",
      location,
      "--include-groups",
      fx.group,
      "-o",
      "json",
      ...extra,
    ]);
    expect(res.code, res.stderr).toBe(0);
    return (JSON.parse(res.stdout) as { id: string }).id;
  }

  /** A restore of one fixture namespace into a fresh one; the fresh namespace's name and the result. */
  async function restoreInto(location: string, ref: string[], ...extra: string[]) {
    const tag = uniqueName("sig-to");
    const ns = fx.namespaces[0]!;
    const res = await runCli([
      "restore",
      ...ref,
      "--storage",
      location,
      "--include-namespaces",
      ns,
      "--namespace-map",
      `${ns}=${tag}`,
      ...extra,
    ]);
    return { tag, res };
  }

  /** Refused in one line, naming why, saying nothing was restored, and the target namespace never made. */
  async function expectRefused(
    r: { tag: string; res: Awaited<ReturnType<typeof runCli>> },
    why: string | RegExp,
  ) {
    expect(r.res.code, r.res.stderr).toBe(1);
    const lines = r.res.stderr.trim().split("\n");
    expect(lines, r.res.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(why);
    expect(lines[0]).toMatch(/nothing was restored$/);
    expect(await exists(admin, `/api/v1/namespaces/${r.tag}`)).toBe(false);
  }

  beforeAll(async () => {
    admin = await adminClient();
    fx = await loadFixtures(admin, {
      group: `${uniqueName("sig")}.fixtures.crd-backup.io`,
      namespaces: [uniqueName("sig-a"), uniqueName("sig-b")],
      widgetsPerNamespace: 3,
    });
    keys = await tempDir();
    [ours, other] = await Promise.all([sshKeygen(keys, "ours"), sshKeygen(keys, "other")]);
    trustOurs = await allowedSigners(keys, "backup@example.com", ours);
    trustOther = await allowedSigners(keys, "someone@example.com", other);
  });
  afterAll(() => {
    // fresh names throughout: nothing to clean (no controller-manager finishes namespace deletes)
    admin?.close();
  });

  for (const [name, fresh] of [
    ["MinIO", freshS3],
    ["a local directory", freshLocal],
  ] as const) {
    it(`snapshot --sign-key to ${name}: ssh-keygen -Y verify accepts the stored manifest and its .sig; verify reports the key`, async () => {
      const storage = fresh();
      const location = storage.location;
      const id = await snapshot(location, "--sign-key", ours.file);
      const manifest = await read(storage, manifestKey(id));
      const sig = (await read(storage, `${manifestKey(id)}.sig`)).toString("utf8");
      // exactly the documented command, on the downloaded bytes
      const judged = await sshVerify(trustOurs, "backup@example.com", sig, manifest);
      expect(judged.out).toContain(
        `Good "crd-backup" signature for backup@example.com with ED25519 key ${ours.fingerprint}`,
      );
      expect(judged.code).toBe(0);
      expect((await sshVerify(trustOther, "someone@example.com", sig, manifest)).code).not.toBe(0);

      const plain = await runCli(["verify", id, "--storage", location]);
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.stdout).toMatch(
        new RegExp(`; signed by ${ours.fingerprint.replace(/[+/]/g, "\\$&")}$`, "m"),
      );
      const trusted = await runCli([
        "verify",
        id,
        "--storage",
        location,
        "--trusted-signers",
        trustOurs,
        "-o",
        "json",
      ]);
      expect(trusted.code, trusted.stderr).toBe(0);
      expect(JSON.parse(trusted.stdout).signature).toEqual({
        signed: true,
        fingerprint: ours.fingerprint,
        principals: ["backup@example.com"],
      });
      const refused = await runCli(["verify", id, "--storage", location, "--trusted-signers", trustOther]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        `snapshot ${id}: signed by ${ours.fingerprint}, a key ${trustOther} does not trust`,
      );
      // the key never shows in what the CLI prints, at any log level
      const debug = await runCli([
        "snapshot",
        "--storage",
        location,
        "--include-groups",
        fx.group,
        "--sign-key",
        ours.file,
        "--log-level",
        "debug",
      ]);
      expect(debug.code, debug.stderr).toBe(0);
      const secret = readFileSync(ours.file, "utf8").split("\n").slice(1, -2).join("");
      for (const chunk of secret.match(/.{20}/g)!) expect(debug.stdout + debug.stderr).not.toContain(chunk);
    });
  }

  it("with Object Lock the .sig is locked as its manifest is; delete removes it with the snapshot", async () => {
    const { s3 } = testEnv();
    const bucket = uniqueName("siglock");
    const root = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await root.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    const locked = new S3Backend({
      bucket,
      prefix: "p",
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const id = await snapshot(`s3://${bucket}/p`, "--sign-key", ours.file, "--retain", "120");
    const sigUntil = await locked.lockedUntil(`${manifestKey(id)}.sig`);
    const manifestUntil = await locked.lockedUntil(manifestKey(id));
    expect(sigUntil!.getTime()).toBeGreaterThan(Date.now() + 60_000);
    expect(Math.abs(sigUntil!.getTime() - manifestUntil!.getTime())).toBeLessThan(30_000);
    const kept = await runCli(["delete", id, "--storage", `s3://${bucket}/p`, "--allow-last"]);
    // kept whole: the lock plan counts the .sig among the snapshot's objects
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stdout).toMatch(new RegExp(`^kept ${id}: locked until \\S+ \\(S3 Object Lock\\)`, "m"));
    expect(await locked.stat(manifestKey(id))).toBeDefined();
    expect(await locked.stat(`${manifestKey(id)}.sig`)).toBeDefined();
    locked.close();
    root.destroy();

    // unlocked: delete takes the .sig with the manifest and the archive
    const plain = freshLocal();
    const gone = await snapshot(plain.location, "--sign-key", ours.file);
    const del = await runCli(["delete", gone, "--storage", plain.location, "--allow-last"]);
    expect(del.code, del.stderr).toBe(0);
    const left: string[] = [];
    for await (const { key } of plain.list("snapshots/")) left.push(key);
    expect(left).toEqual([]);
  });

  it("restore --trusted-signers: the right key restores; another key, other bytes, a swapped .sig or no signature are refused before any write", async () => {
    const storage = freshS3();
    const location = storage.location;
    const [a, b, unsigned] = [
      await snapshot(location, "--sign-key", ours.file),
      await snapshot(location, "--sign-key", ours.file),
      await snapshot(location),
    ];

    // another key's allowed_signers: exit 1, one line, the target namespace never created
    await expectRefused(
      await restoreInto(location, [a], "--trusted-signers", trustOther),
      `snapshot ${a}: signed by ${ours.fingerprint}, a key ${trustOther} does not trust`,
    );
    // an unsigned snapshot when signers are required
    await expectRefused(
      await restoreInto(location, [unsigned], "--trusted-signers", trustOurs),
      `snapshot ${unsigned}: not signed, and --trusted-signers ${trustOurs} requires a signature`,
    );
    // $CRD_BACKUP_TRUSTED_SIGNERS_FILE does the same
    const viaEnv = await runCli(["verify", unsigned, "--storage", location], {
      env: { CRD_BACKUP_TRUSTED_SIGNERS_FILE: trustOurs },
    });
    expect(viaEnv.code).toBe(1);
    expect(viaEnv.stderr).toContain("not signed");

    // the right key: restored
    const ok = await restoreInto(location, [a], "--trusted-signers", trustOurs);
    expect(ok.res.code, ok.res.stderr).toBe(0);
    const widgets = `/apis/${fx.group}/v1/namespaces/${ok.tag}/widgets`;
    expect(JSON.parse((await admin.request({ path: widgets })).text).items).toHaveLength(3);

    // a swapped .sig (b's, a valid signature by the same key, of other bytes): refused with or without --trusted-signers
    const sigA = await read(storage, `${manifestKey(a)}.sig`);
    await put(storage, `${manifestKey(a)}.sig`, await read(storage, `${manifestKey(b)}.sig`));
    const otherBytes = /its signature \(key SHA256:\S+\) does not match its bytes/;
    await expectRefused(await restoreInto(location, [a], "--trusted-signers", trustOurs), otherBytes);
    await expectRefused(await restoreInto(location, [a]), otherBytes);
    await put(storage, `${manifestKey(a)}.sig`, sigA);

    // a tampered manifest (one byte of a recorded option changed), its .sig left as it was
    const manifest = await read(storage, manifestKey(a));
    const tampered = Buffer.from(manifest.toString("utf8").replace('"pageSize": 500', '"pageSize": 501'));
    expect(tampered.equals(manifest)).toBe(false);
    await put(storage, manifestKey(a), tampered);
    await expectRefused(await restoreInto(location, [a], "--trusted-signers", trustOurs), otherBytes);
    const verify = await runCli(["verify", a, "--storage", location]);
    expect(verify.code).toBe(1);
    expect(verify.stderr).toMatch(otherBytes);
    await put(storage, manifestKey(a), manifest);
    expect((await restoreInto(location, [a], "--trusted-signers", trustOurs, "--dry-run")).res.code).toBe(0);

    // ssh-keygen agrees: the tampered bytes do not verify
    expect((await sshVerify(trustOurs, "backup@example.com", sigA.toString(), tampered)).code).not.toBe(0);
  });

  it("an encrypted signed snapshot: the signature covers the stored (sealed) manifest; rekey signs the new manifest", async () => {
    const storage = freshS3();
    const location = storage.location;
    const gen = async (file: string) => {
      const res = await runCli(["keygen", "--output", file]);
      expect(res.code, res.stderr).toBe(0);
      return res.stdout.trim();
    };
    const [ageOld, ageNew] = [path.join(keys, "age-old.txt"), path.join(keys, "age-new.txt")];
    const [recipientOld, recipientNew] = [await gen(ageOld), await gen(ageNew)];
    const id = await snapshot(location, "--encrypt-to", recipientOld, "--sign-key", ours.file);
    const stored = await read(storage, manifestKey(id));
    expect(JSON.parse(stored.toString()).encryption).toBeDefined();
    const sig = (await read(storage, `${manifestKey(id)}.sig`)).toString();
    expect((await sshVerify(trustOurs, "backup@example.com", sig, stored)).code).toBe(0);
    // without an identity, verify checks the ciphertext and still says who signed
    const blind = await runCli(["verify", id, "--storage", location, "--trusted-signers", trustOurs]);
    expect(blind.code, blind.stderr).toBe(0);
    expect(blind.stdout).toContain(`content not checked`);
    expect(blind.stdout).toContain(`signed by ${ours.fingerprint} (trusted as backup@example.com)`);

    // a rekey without a signing key would leave a signature of the old manifest: refused, nothing changed
    const unsignedRekey = await runCli([
      "rekey",
      id,
      "--storage",
      location,
      "--encrypt-to",
      recipientNew,
      "--identity",
      ageOld,
    ]);
    expect(unsignedRekey.code).toBe(2);
    expect(unsignedRekey.stderr).toContain(`snapshot ${id} is signed: give --sign-key FILE`);
    expect((await read(storage, manifestKey(id))).equals(stored)).toBe(true);

    // rekey with another signing key: the new manifest and its new signature, checked by ssh-keygen
    const rekey = await runCli([
      "rekey",
      id,
      "--storage",
      location,
      "--encrypt-to",
      recipientNew,
      "--identity",
      ageOld,
      "--verify-identity",
      ageNew,
      "--sign-key",
      other.file,
      "--trusted-signers",
      trustOurs,
    ]);
    expect(rekey.code, rekey.stderr).toBe(0);
    const next = await read(storage, manifestKey(id));
    expect(next.equals(stored)).toBe(false);
    const nextSig = (await read(storage, `${manifestKey(id)}.sig`)).toString();
    expect((await sshVerify(trustOther, "someone@example.com", nextSig, next)).code).toBe(0);
    expect((await sshVerify(trustOurs, "backup@example.com", nextSig, next)).code).not.toBe(0);
    const after = await runCli([
      "verify",
      id,
      "--storage",
      location,
      "--identity",
      ageNew,
      "--trusted-signers",
      trustOther,
    ]);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toContain(`signed by ${other.fingerprint}`);
    // rekey with --trusted-signers refuses to re-sign what they do not vouch for
    const refused = await runCli([
      "rekey",
      id,
      "--storage",
      location,
      "--encrypt-to",
      recipientOld,
      "--identity",
      ageNew,
      "--sign-key",
      ours.file,
      "--trusted-signers",
      trustOurs,
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`signed by ${other.fingerprint}, a key ${trustOurs} does not trust`);
    expect((await read(storage, manifestKey(id))).equals(next)).toBe(true);
  });

  it("record --sign-key signs every segment; restore --at --trusted-signers replays them, and refuses a segment signed over other bytes", async () => {
    const storage = freshLocal();
    const dir = storage.location.replace(/^file:\/\//, "");
    const ns = fx.namespaces[1]!;
    const rec = startRecorder([
      "--storage",
      dir,
      "--include-groups",
      fx.group,
      "--spool-dir",
      spoolDir(),
      "--flush-interval",
      "1s",
      "--sign-key",
      ours.file,
    ]);
    let at: string;
    try {
      await rec.waitFor(() => rec.count("following every resource") > 0, "the recorder to follow");
      for (const name of ["late-1", "late-2"]) {
        await createRaw(
          admin,
          objPath(fx.group, "widgets", ns),
          JSON.stringify({
            apiVersion: `${fx.group}/v1`,
            kind: "Widget",
            metadata: { name },
            spec: { size: "small" },
          }),
        );
        await sleep(300);
      }
      await sleep(2500); // past one flush
      at = new Date().toISOString();
      rec.child.kill("SIGTERM");
      expect((await rec.exited).code, rec.log()).toBe(0);
    } finally {
      rec.child.kill("SIGKILL");
    }

    // every segment and the base have a .sig that ssh-keygen accepts
    const journal: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith(".jsonl.gz")) journal.push(p);
      }
    };
    walk(path.join(dir, "journal"));
    expect(journal.length).toBeGreaterThan(0);
    for (const seg of journal) {
      const judged = await sshVerify(
        trustOurs,
        "backup@example.com",
        readFileSync(`${seg}.sig`, "utf8"),
        readFileSync(seg),
      );
      expect(judged.code, `${seg}: ${judged.out}`).toBe(0);
    }

    const tag = uniqueName("sig-at");
    const args = [
      "restore",
      "--at",
      at,
      "--storage",
      dir,
      "--include-namespaces",
      ns,
      "--namespace-map",
      `${ns}=${tag}`,
    ];
    await expectRefused(
      { tag, res: await runCli([...args, "--trusted-signers", trustOther]) },
      /does not trust/,
    );
    const ok = await runCli([...args, "--trusted-signers", trustOurs]);
    expect(ok.code, ok.stderr).toBe(0);
    const names = (
      JSON.parse((await admin.request({ path: `/apis/${fx.group}/v1/namespaces/${tag}/widgets` })).text) as {
        items: { metadata: { name: string } }[];
      }
    ).items.map((i) => i.metadata.name);
    expect(names).toEqual(expect.arrayContaining(["late-1", "late-2"]));

    // history and changes read the same journal: trusted keys accepted, another key refused
    const window = ["--storage", dir, "--until", at];
    const hist = await runCli([
      "history",
      `widgets.${fx.group}/late-1`,
      "-n",
      ns,
      ...window,
      "--trusted-signers",
      trustOurs,
    ]);
    expect(hist.code, hist.stderr).toBe(0);
    expect(hist.stdout).toMatch(/created/);
    const since = ["--since", new Date(Date.parse(at) - 3_600_000).toISOString()];
    const changes = await runCli(["changes", ...since, ...window, "--trusted-signers", trustOurs]);
    expect(changes.code, changes.stderr).toBe(0);
    expect(changes.stdout).toMatch(/late-2/);
    for (const cmd of [
      ["history", `widgets.${fx.group}/late-1`, "-n", ns],
      ["changes", ...since],
    ]) {
      const res = await runCli([...cmd, ...window, "--trusted-signers", trustOther]);
      expect(res.code, res.stderr).not.toBe(0);
      expect(res.stdout).toBe("");
      expect(res.stderr.trim().split("\n")).toHaveLength(1);
      expect(res.stderr).toMatch(/does not trust/);
    }

    // a segment's .sig replaced by another segment's (or the base's): refused, naming the segment
    const victim = journal[0]!;
    const base = readdirSync(path.join(dir, "snapshots"))[0]!;
    const donor = journal[1] ?? path.join(dir, "snapshots", base, "manifest.json");
    const tag2 = uniqueName("sig-at");
    const swapped = [
      "restore",
      "--at",
      at,
      "--storage",
      dir,
      "--include-namespaces",
      ns,
      "--namespace-map",
      `${ns}=${tag2}`,
    ];
    writeFileSync(`${victim}.sig`, readFileSync(`${donor}.sig`));
    const refused = await runCli(swapped);
    // history reads the segment through its key index, but judges its signature as --at does
    const histSwapped = await runCli(["history", `widgets.${fx.group}/late-1`, "-n", ns, ...window]);
    expect(histSwapped.code, histSwapped.stderr).toBe(1);
    expect(histSwapped.stdout).toBe("");
    expect(histSwapped.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(
        new RegExp(
          `journal segment journal/\\S+${path.basename(victim).replace(/\./g, "\\.")}: its signature`,
        ),
      ),
    ]);

    await expectRefused(
      { tag: tag2, res: refused },
      new RegExp(
        `journal segment journal/\\S+${path.basename(victim).replace(/\./g, "\\.")}: its signature .* does not match its bytes`,
      ),
    );

    // the segment's .sig removed: without --trusted-signers it replays (signatures are reported,
    // not required); with them it is refused as unsigned, naming it
    rmSync(`${victim}.sig`);
    const tag3 = uniqueName("sig-at");
    const unsigned = [
      "restore",
      "--at",
      at,
      "--storage",
      dir,
      "--include-namespaces",
      ns,
      "--namespace-map",
      `${ns}=${tag3}`,
    ];
    await expectRefused(
      { tag: tag3, res: await runCli([...unsigned, "--trusted-signers", trustOurs]) },
      new RegExp(
        `journal segment journal/\\S+${path.basename(victim).replace(/\./g, "\\.")}: not signed, and --trusted-signers`,
      ),
    );
    const lax = await runCli(unsigned);
    expect(lax.code, lax.stderr).toBe(0);

    // delete of the base takes its chain, each segment's .sig with it: nothing is left behind
    const del = await runCli(["delete", base, "--storage", dir, "--allow-last"]);
    expect(del.code, del.stderr).toBe(0);
    const left: string[] = [];
    for await (const { key } of storage.list("")) left.push(key);
    expect(left).toEqual([]);
  });
});

import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { SourceRefusedError } from "../../../src/errors.ts";
import { parseAllowedSigners } from "../../../src/signing/allowed-signers.ts";
import { parseSigningKey } from "../../../src/signing/keys.ts";
import { judgeSignature } from "../../../src/signing/stored.ts";
import {
  messageDigest,
  parseSignature,
  SignatureFormatError,
  verifyDigest,
} from "../../../src/signing/sshsig.ts";
import { allowedSigners, sshKeygen, sshSign, sshVerify, tempDir } from "../../support/ssh-keygen.ts";

const message = Buffer.from('{"formatVersion":1,"snapshotId":"20261207T063000Z-0a1b2c3d"}\n');

async function signer(dir: string, name: string) {
  const key = await sshKeygen(dir, name);
  return { key, signer: await parseSigningKey(await readFile(key.file, "utf8"), key.file) };
}

describe("SSH signatures against ssh-keygen", () => {
  it("ours verify with ssh-keygen -Y verify, and its fingerprint is ssh-keygen's", async () => {
    const dir = await tempDir();
    const { key, signer: s } = await signer(dir, "ours");
    expect(s.fingerprint).toBe(key.fingerprint);
    const sig = s.sign(message);
    expect(sig).toMatch(/^-----BEGIN SSH SIGNATURE-----\n(.{1,70}\n)+-----END SSH SIGNATURE-----\n$/);
    const allowed = await allowedSigners(dir, "backup@example.com", key);
    const ok = await sshVerify(allowed, "backup@example.com", sig, message);
    expect(ok.out).toContain(
      `Good "crd-backup" signature for backup@example.com with ED25519 key ${key.fingerprint}`,
    );
    expect(ok.code).toBe(0);
    // ssh-keygen refuses it over other bytes, and for another namespace's allowed signer
    expect((await sshVerify(allowed, "backup@example.com", sig, Buffer.from("other"))).code).not.toBe(0);
    const fileOnly = await allowedSigners(dir, "files", key, 'namespaces="file"');
    expect((await sshVerify(fileOnly, "files", sig, message)).code).not.toBe(0);
  });

  it("ssh-keygen -Y sign output verifies with ours, and not over other bytes", async () => {
    const dir = await tempDir();
    const key = await sshKeygen(dir, "theirs");
    const sig = await sshSign(key, message);
    const parsed = parseSignature(sig);
    expect(verifyDigest(parsed, messageDigest(message))).toBe(true);
    expect(verifyDigest(parsed, messageDigest(Buffer.from("other")))).toBe(false);
    const trusted = parseAllowedSigners(`theirs@test ${key.publicLine}\n`, "allowed");
    expect(judgeSignature(sig, messageDigest(message), { snapshot: "x" }, "snapshot x", trusted)).toEqual({
      signed: true,
      fingerprint: key.fingerprint,
      principals: ["theirs@test"],
    });
  });

  it("round trip: the same key signs the same bytes the same way (Ed25519 is deterministic)", async () => {
    const dir = await tempDir();
    const { signer: s } = await signer(dir, "k");
    expect(s.sign(message)).toBe(s.sign(message));
    expect(verifyDigest(parseSignature(s.sign(message)), messageDigest(message))).toBe(true);
    // the key never shows: JSON and inspect give the fingerprint only
    expect(JSON.stringify({ s })).toBe(`{"s":{"fingerprint":"${s.fingerprint}"}}`);
  });

  it("refuses what is not a crd-backup Ed25519 signature, saying why", async () => {
    const dir = await tempDir();
    const { signer: s } = await signer(dir, "k");
    const sig = s.sign(message);
    const lines = sig.trim().split("\n");
    const blob = Buffer.from(lines.slice(1, -1).join(""), "base64");
    const rearmor = (b: Buffer) => `${lines[0]}\n${b.toString("base64")}\n${lines.at(-1)}\n`;
    const cases: [string, string][] = [
      ["not armored", "hello"],
      ["no SSHSIG magic", rearmor(Buffer.concat([Buffer.from("SSHSIX"), blob.subarray(6)]))],
      [
        "signature version 2, not 1",
        rearmor(Buffer.concat([blob.subarray(0, 6), Buffer.from([0, 0, 0, 2]), blob.subarray(10)])),
      ],
      ["truncated", rearmor(blob.subarray(0, blob.length - 10))],
      ["trailing bytes", rearmor(Buffer.concat([blob, Buffer.from([0])]))],
    ];
    for (const [why, text] of cases) {
      expect(() => parseSignature(text), why).toThrow(SignatureFormatError);
      expect(() => parseSignature(text), why).toThrow(why.startsWith("not") ? "not an armored" : why);
    }
    // another namespace, signed by ssh-keygen itself
    const key = await sshKeygen(dir, "ns");
    const { execFile } = await import("node:child_process");
    const other = await new Promise<string>((resolve, reject) => {
      const p = execFile("ssh-keygen", ["-q", "-Y", "sign", "-f", key.file, "-n", "file"], (e, out) =>
        e ? reject(e) : resolve(out),
      );
      p.stdin!.end(message);
    });
    expect(() => parseSignature(other)).toThrow('signature namespace "file", not "crd-backup"');
  });

  it("judges: unsigned, other bytes, untrusted key, trusted key", async () => {
    const dir = await tempDir();
    const { signer: s } = await signer(dir, "a");
    const { key: bKey } = await signer(dir, "b");
    const sig = s.sign(message);
    const digest = messageDigest(message);
    const onlyB = parseAllowedSigners(`b@test ${bKey.publicLine}\n`, "allowed_b");
    const at = { snapshot: "S" };
    expect(judgeSignature(undefined, digest, at, "snapshot S", undefined)).toEqual({ signed: false });
    expect(() => judgeSignature(undefined, digest, at, "snapshot S", onlyB)).toThrow(
      "snapshot S: not signed, and --trusted-signers allowed_b requires a signature by one of its keys",
    );
    expect(() => judgeSignature(sig, messageDigest(Buffer.from("x")), at, "snapshot S", undefined)).toThrow(
      SourceRefusedError,
    );
    expect(() => judgeSignature(sig, messageDigest(Buffer.from("x")), at, "snapshot S", undefined)).toThrow(
      `snapshot S: its signature (key ${s.fingerprint}) does not match its bytes`,
    );
    expect(() => judgeSignature(sig, digest, at, "snapshot S", onlyB)).toThrow(
      `snapshot S: signed by ${s.fingerprint}, a key allowed_b does not trust`,
    );
    expect(judgeSignature(sig, digest, at, "snapshot S", undefined)).toEqual({
      signed: true,
      fingerprint: s.fingerprint,
      principals: [],
    });
  });
});

describe("signing keys", () => {
  it("refuses an encrypted key without its passphrase, and takes it with one", async () => {
    const dir = await tempDir();
    const key = await sshKeygen(dir, "enc", "correct horse");
    const text = await readFile(key.file, "utf8");
    await expect(parseSigningKey(text, key.file)).rejects.toThrow(
      `--sign-key ${key.file}: the key is passphrase-protected: set $CRD_BACKUP_SIGN_KEY_PASSPHRASE`,
    );
    expect((await parseSigningKey(text, key.file, "correct horse")).fingerprint).toBe(key.fingerprint);
    await expect(parseSigningKey(text, key.file, "wrong")).rejects.toThrow(
      `--sign-key ${key.file}: $CRD_BACKUP_SIGN_KEY_PASSPHRASE does not decrypt the key`,
    );
  });

  it("refuses another key type and what is not a key, never quoting the file", async () => {
    const dir = await tempDir();
    const ecdsa = await sshKeygen(dir, "ec", "", "ecdsa");
    const ecdsaText = await readFile(ecdsa.file, "utf8");
    await expect(parseSigningKey(ecdsaText, "f")).rejects.toThrow(
      "--sign-key f: a ecdsa key; crd-backup signs with Ed25519 keys",
    );
    const secret =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LXN0dWZm\n-----END OPENSSH PRIVATE KEY-----\n";
    let message = "";
    try {
      await parseSigningKey(secret, "f");
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe("--sign-key f: not an OpenSSH private key (make one with ssh-keygen -t ed25519)");
  });
});

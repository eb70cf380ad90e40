/**
 * The signing key: an OpenSSH Ed25519 private key (`ssh-keygen -t ed25519`), parsed by sshpk and
 * handed to node:crypto as a KeyObject. The key stays in this process: a Signer prints as its
 * fingerprint only, and no message or log ever holds the key or the file's content.
 */
import { readFile } from "node:fs/promises";
import { inspect } from "node:util";
import { createPrivateKey, type KeyObject } from "node:crypto";
import type { PrivateKey } from "sshpk";
import { CrdBackupError } from "../errors.ts";
import { fingerprint, messageDigest, signDigest } from "./sshsig.ts";

export const SIGN_KEY_ENV = "CRD_BACKUP_SIGN_KEY_FILE";
/** The passphrase of an encrypted key, when it is one (sshpk decrypts OpenSSH's bcrypt-pbkdf keys). */
export const SIGN_KEY_PASSPHRASE_ENV = "CRD_BACKUP_SIGN_KEY_PASSPHRASE";

export class Signer {
  readonly #key: KeyObject;
  /** The public key's wire blob (`ssh-ed25519` + 32 bytes). */
  readonly publicBlob: Buffer;
  /** `SHA256:…`, as ssh-keygen -l prints it. */
  readonly fingerprint: string;
  /** The file it came from, for messages. */
  readonly source: string;

  constructor(key: KeyObject, publicBlob: Buffer, source: string) {
    this.#key = key;
    this.publicBlob = publicBlob;
    this.fingerprint = fingerprint(publicBlob);
    this.source = source;
  }

  /** The armored SSH signature of `message` (Ed25519 is deterministic: the same bytes sign the same). */
  sign(message: Buffer): string {
    return signDigest(this.#key, this.publicBlob, messageDigest(message));
  }

  toJSON(): object {
    return { fingerprint: this.fingerprint };
  }

  [inspect.custom](): string {
    return `Signer(${this.fingerprint})`;
  }
}

/**
 * The key in an OpenSSH private key file's text; every refusal is one line that never quotes the
 * file. sshpk is loaded here, on first use: commands that do not sign never pay for its modules.
 */
export async function parseSigningKey(text: string, source: string, passphrase?: string): Promise<Signer> {
  const { default: sshpk } = await import("sshpk");
  let key: PrivateKey;
  try {
    key = sshpk.parsePrivateKey(text, "auto", passphrase === undefined ? {} : { passphrase });
  } catch (e) {
    const name = (e as Error).name;
    if (name === "KeyEncryptedError")
      throw new CrdBackupError(
        "USAGE",
        `--sign-key ${source}: the key is passphrase-protected: set $${SIGN_KEY_PASSPHRASE_ENV}, or give an unencrypted copy (ssh-keygen -p -N "" -f COPY)`,
      );
    if (passphrase !== undefined && /decrypt|passphrase|padding|check/i.test((e as Error).message))
      throw new CrdBackupError(
        "USAGE",
        `--sign-key ${source}: $${SIGN_KEY_PASSPHRASE_ENV} does not decrypt the key`,
      );
    throw new CrdBackupError(
      "USAGE",
      `--sign-key ${source}: not an OpenSSH private key (make one with ssh-keygen -t ed25519)`,
    );
  }
  if (key.type !== "ed25519")
    throw new CrdBackupError(
      "USAGE",
      `--sign-key ${source}: a ${key.type} key; crd-backup signs with Ed25519 keys (ssh-keygen -t ed25519)`,
    );
  const pub = key.toPublic().toBuffer("rfc4253");
  const pkcs8 = key.toBuffer("pkcs8", {});
  const object = createPrivateKey(pkcs8);
  pkcs8.fill(0); // the KeyObject holds the key from here; no other copy of ours lingers
  return new Signer(object, pub, source);
}

/** The signer `--sign-key FILE` (or $CRD_BACKUP_SIGN_KEY_FILE) names; undefined when neither is set. */
export async function loadSigner(file: string | undefined, env = process.env): Promise<Signer | undefined> {
  const path = file ?? (env[SIGN_KEY_ENV] || undefined);
  if (path === undefined) return undefined;
  const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new CrdBackupError("USAGE", `--sign-key ${path}: cannot read it (${e.code ?? e.message})`);
  });
  return parseSigningKey(text, path, env[SIGN_KEY_PASSPHRASE_ENV]);
}

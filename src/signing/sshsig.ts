/**
 * The SSH signature format (OpenSSH's PROTOCOL.sshsig), what `ssh-keygen -Y sign` writes and
 * `ssh-keygen -Y verify` reads: framing only. The signature itself is Ed25519 from node:crypto;
 * nothing here computes or checks anything cryptographic by its own means.
 *
 *   blob:        "SSHSIG" uint32(1) string(publickey) string(namespace) string(reserved="")
 *                string(hash_algorithm) string(signature)
 *   signed data: "SSHSIG" string(namespace) string(reserved="") string(hash_algorithm)
 *                string(H(message))
 *   publickey:   string("ssh-ed25519") string(32-byte key)
 *   signature:   string("ssh-ed25519") string(64-byte signature)
 *
 * The message is hashed first (sha512, ssh-keygen's default), so a signature over a stream needs
 * only the stream's digest: a journal segment is checked while it is read.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";

export const NAMESPACE = "crd-backup";
export const HASH_ALGORITHM = "sha512";
const MAGIC = Buffer.from("SSHSIG");
const VERSION = 1;
const ED25519 = "ssh-ed25519";
const BEGIN = "-----BEGIN SSH SIGNATURE-----";
const END = "-----END SSH SIGNATURE-----";
/** ssh-keygen wraps the armored base64 at 70 columns. */
const WRAP = 70;
/** A signature file is a few hundred bytes; anything far larger is not one. */
export const MAX_SIGNATURE_BYTES = 16 * 1024;

/** Why a signature file was not a usable SSH signature (the caller names the file). */
export class SignatureFormatError extends Error {
  override name = "SignatureFormatError";
}

function sshString(b: Buffer | string): Buffer {
  const body = typeof b === "string" ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** Reads SSH wire strings off a buffer; every read is bounds-checked. */
class WireReader {
  #at = 0;
  readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  bytes(n: number): Buffer {
    if (this.#at + n > this.buf.length) throw new SignatureFormatError("truncated");
    const out = this.buf.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }
  uint32(): number {
    return this.bytes(4).readUInt32BE(0);
  }
  string(): Buffer {
    return this.bytes(this.uint32());
  }
  text(): string {
    return this.string().toString("latin1");
  }
  end(): void {
    if (this.#at !== this.buf.length) throw new SignatureFormatError("trailing bytes after the signature");
  }
}

/** The wire form of an Ed25519 public key (what allowed_signers holds in base64). */
export function ed25519Blob(raw: Buffer): Buffer {
  return Buffer.concat([sshString(ED25519), sshString(raw)]);
}

/** The raw 32-byte key of an `ssh-ed25519` wire blob, or undefined for another key type. */
export function ed25519Raw(blob: Buffer): Buffer | undefined {
  const r = new WireReader(blob);
  if (r.text() !== ED25519) return undefined;
  const raw = r.string();
  r.end();
  if (raw.length !== 32) throw new SignatureFormatError("an ssh-ed25519 key is not 32 bytes");
  return raw;
}

/** `SHA256:<base64 without padding>` of a public key blob, as ssh-keygen prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

function signedData(namespace: string, digest: Buffer): Buffer {
  return Buffer.concat([
    MAGIC,
    sshString(namespace),
    sshString(""),
    sshString(HASH_ALGORITHM),
    sshString(digest),
  ]);
}

function armor(blob: Buffer): string {
  const b64 = blob.toString("base64");
  const lines = [];
  for (let i = 0; i < b64.length; i += WRAP) lines.push(b64.slice(i, i + WRAP));
  return `${BEGIN}\n${lines.join("\n")}\n${END}\n`;
}

/** sha512 of the message: what is signed (through the signed data above). */
export function messageDigest(message: Buffer): Buffer {
  return createHash(HASH_ALGORITHM).update(message).digest();
}

/** The armored signature of a message whose sha512 is `digest`, by an Ed25519 private key. */
export function signDigest(privateKey: KeyObject, publicBlob: Buffer, digest: Buffer): string {
  const sig = sign(null, signedData(NAMESPACE, digest), privateKey);
  const blob = Buffer.concat([
    MAGIC,
    Buffer.from([0, 0, 0, VERSION]),
    sshString(publicBlob),
    sshString(NAMESPACE),
    sshString(""),
    sshString(HASH_ALGORITHM),
    sshString(Buffer.concat([sshString(ED25519), sshString(sig)])),
  ]);
  return armor(blob);
}

/** A parsed signature: who signed (the public key blob) and the Ed25519 signature bytes. */
export interface ParsedSignature {
  publicBlob: Buffer;
  publicRaw: Buffer;
  signature: Buffer;
}

/**
 * Parses an armored SSH signature and checks its framing: magic, version 1, namespace
 * `crd-backup`, hash sha512, an Ed25519 key and signature. Throws SignatureFormatError saying what.
 */
export function parseSignature(text: string): ParsedSignature {
  const lines = text.trim().split(/\r?\n/);
  if (lines[0]?.trim() !== BEGIN || lines.at(-1)?.trim() !== END || lines.length < 3)
    throw new SignatureFormatError(`not an armored SSH signature (${BEGIN})`);
  const b64 = lines.slice(1, -1).join("").trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new SignatureFormatError("bad base64 in the signature");
  const r = new WireReader(Buffer.from(b64, "base64"));
  if (!r.bytes(6).equals(MAGIC)) throw new SignatureFormatError("no SSHSIG magic");
  const version = r.uint32();
  if (version !== VERSION) throw new SignatureFormatError(`signature version ${version}, not 1`);
  const publicBlob = r.string();
  const namespace = r.text();
  r.string(); // reserved: ignored, as ssh-keygen does
  const hash = r.text();
  const wrapped = new WireReader(r.string());
  r.end();
  if (namespace !== NAMESPACE)
    throw new SignatureFormatError(`signature namespace "${namespace}", not "${NAMESPACE}"`);
  if (hash !== HASH_ALGORITHM)
    throw new SignatureFormatError(
      `signature hash ${hash}: crd-backup checks ${HASH_ALGORITHM} (ssh-keygen's default)`,
    );
  const publicRaw = ed25519Raw(publicBlob);
  if (!publicRaw)
    throw new SignatureFormatError("not an ssh-ed25519 signature: crd-backup checks Ed25519 keys only");
  const sigType = wrapped.text();
  const signature = wrapped.string();
  wrapped.end();
  if (sigType !== ED25519 || signature.length !== 64)
    throw new SignatureFormatError(`signature of type ${sigType}, not a 64-byte ${ED25519} signature`);
  return { publicBlob, publicRaw, signature };
}

export function ed25519PublicKey(raw: Buffer): KeyObject {
  return createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") },
    format: "jwk",
  });
}

/** Whether `sig` is a valid signature of the message whose sha512 is `digest` (node:crypto's Ed25519). */
export function verifyDigest(sig: ParsedSignature, digest: Buffer): boolean {
  try {
    return verify(null, signedData(NAMESPACE, digest), ed25519PublicKey(sig.publicRaw), sig.signature);
  } catch {
    return false; // a key that is not a curve point verifies nothing
  }
}

/**
 * Detached signatures in storage (docs/format.md, "Signatures"): `<key>.sig` beside a snapshot's
 * manifest or a journal segment, an armored SSH signature of the stored bytes (so of the sealed
 * manifest, or the age file, when encrypted). The signing key and the trusted signers go with the
 * storage handle, as the age identities do (crypto/keyring.ts): writers sign and readers check
 * without a flag threaded through each layer.
 *
 * Checking, the same for a manifest and a segment: a signature that is malformed or does not match
 * the bytes is refused whether or not signers are required (it proves something was altered); with
 * trusted signers, a missing signature, or one by a key they do not accept, is refused too.
 */
import { createHash } from "node:crypto";
import { Readable, Transform } from "node:stream";
import { CrdBackupError, SourceRefusedError, type RefusedSource } from "../errors.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { acceptingSigners, type TrustedSigners } from "./allowed-signers.ts";
import type { Signer } from "./keys.ts";
import {
  HASH_ALGORITHM,
  MAX_SIGNATURE_BYTES,
  fingerprint,
  messageDigest,
  parseSignature,
  verifyDigest,
  SignatureFormatError,
} from "./sshsig.ts";

/** What a reader learned of a signed object: unsigned, or signed by this key (and the principals that trust it). */
export type SignatureStatus = { signed: false } | { signed: true; fingerprint: string; principals: string[] };

interface Signing {
  signer?: Signer | undefined;
  trusted?: TrustedSigners | undefined;
}

const signings = new WeakMap<StorageBackend, Signing>();

/** Attaches a signing key (writers) and trusted signers (readers) to a storage handle. */
export function withSigning<T extends StorageBackend>(storage: T, signing: Signing): T {
  if (signing.signer || signing.trusted) signings.set(storage, { ...signings.get(storage), ...signing });
  return storage;
}

export function signerFor(storage: StorageBackend): Signer | undefined {
  return signings.get(storage)?.signer;
}

export function trustedSignersFor(storage: StorageBackend): TrustedSigners | undefined {
  return signings.get(storage)?.trusted;
}

export function signatureKey(key: string): string {
  return `${key}.sig`;
}

/**
 * Stores the signature of `bytes` at `<key>.sig` when the handle has a signing key; returns the
 * signer's fingerprint, or undefined when unsigned. Create-only, unless `replace` (rekey's new
 * manifest). A create that finds the same signature (a retried write: Ed25519 signs the same bytes
 * the same way) is done; another is ALREADY_EXISTS.
 */
export async function storeSignature(
  storage: StorageBackend,
  key: string,
  bytes: Buffer,
  options: { signal?: AbortSignal; replace?: boolean } = {},
): Promise<string | undefined> {
  const signer = signerFor(storage);
  if (!signer) return undefined;
  const sig = Buffer.from(signer.sign(bytes));
  const at = signatureKey(key);
  const signal = options.signal ? { signal: options.signal } : {};
  if (options.replace) {
    await storage.write(at, Readable.from([sig]), signal);
    return signer.fingerprint;
  }
  try {
    await storage.createExclusive(at, sig, signal);
  } catch (e) {
    if (!(e instanceof CrdBackupError && e.code === "ALREADY_EXISTS")) throw e;
    const there = await readSignature(storage, key);
    if (there !== sig.toString("utf8")) throw e;
  }
  return signer.fingerprint;
}

/** The text of `<key>.sig`, or undefined when there is none. */
export async function readSignature(storage: StorageBackend, key: string): Promise<string | undefined> {
  const at = signatureKey(key);
  let stream: Readable;
  try {
    stream = await storage.read(at);
  } catch (e) {
    if (e instanceof CrdBackupError && e.code === "NOT_FOUND") return undefined;
    throw e;
  }
  // bounded: a huge object put at a .sig key must not be read whole
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    chunks.push(c);
    size += c.length;
    if (size > MAX_SIGNATURE_BYTES) {
      stream.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * The verdict on an object whose stored bytes have sha512 `digest` and whose `.sig` holds `text`
 * (undefined: none). `name` says what it is in messages ("snapshot X", "journal segment K").
 */
export function judgeSignature(
  text: string | undefined,
  digest: Buffer,
  refused: RefusedSource,
  name: string,
  trusted: TrustedSigners | undefined,
): SignatureStatus {
  const refuse = (why: string) => new SourceRefusedError(refused, `${name}: ${why}`, { ...refused });
  if (text === undefined) {
    if (!trusted) return { signed: false };
    throw refuse(
      `not signed, and --trusted-signers ${trusted.source} requires a signature by one of its keys`,
    );
  }
  if (text.length > MAX_SIGNATURE_BYTES) throw refuse("its .sig is too large to be a signature");
  let parsed;
  try {
    parsed = parseSignature(text);
  } catch (e) {
    if (!(e instanceof SignatureFormatError)) throw e;
    throw refuse(`its .sig is not a crd-backup signature (${e.message})`);
  }
  const by = fingerprint(parsed.publicBlob);
  if (!verifyDigest(parsed, digest))
    throw refuse(
      `its signature (key ${by}) does not match its bytes: altered, or a signature of something else`,
    );
  if (!trusted) return { signed: true, fingerprint: by, principals: [] };
  const accepting = acceptingSigners(trusted, parsed.publicBlob);
  if (accepting.length === 0)
    throw refuse(`signed by ${by}, a key ${trusted.source} does not trust (for namespace crd-backup, now)`);
  return { signed: true, fingerprint: by, principals: accepting.map((s) => s.principals) };
}

/** Checks the signature of a small object held whole (a manifest's stored bytes). */
export async function checkSignature(
  storage: StorageBackend,
  key: string,
  bytes: Buffer,
  refused: RefusedSource,
  name: string,
): Promise<SignatureStatus> {
  const trusted = trustedSignersFor(storage);
  return judgeSignature(await readSignature(storage, key), messageDigest(bytes), refused, name, trusted);
}

/**
 * For an object read as a stream (a journal segment): the signature is read first (a missing one
 * refused at once when required), `tap` hashes the bytes as they pass, and `finish` judges once the
 * stream has been read to its end. Undefined when there is nothing to check (unsigned, not required).
 */
export async function signatureCheckFor(
  storage: StorageBackend,
  key: string,
  refused: RefusedSource,
  name: string,
  maybeSigned: boolean,
): Promise<{ tap: Transform; finish: () => SignatureStatus } | undefined> {
  const trusted = trustedSignersFor(storage);
  if (!trusted && !maybeSigned) return undefined;
  const text = await readSignature(storage, key);
  if (text === undefined) {
    judgeSignature(text, Buffer.alloc(0), refused, name, trusted); // refuses when required
    return undefined;
  }
  const hash = createHash(HASH_ALGORITHM);
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return { tap, finish: () => judgeSignature(text, hash.digest(), refused, name, trusted) };
}

/**
 * age as a stream stage: plain bytes → age → storage, and storage → age -d → plain bytes. The
 * payload is age's STREAM construction (64 KiB chunks, each authenticated), so memory stays
 * bounded whatever the size, and a changed, reordered or truncated chunk fails the read. The
 * output is a standard age file: `age -d -i key.txt` reads it.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { Decrypter, Encrypter, armor } from "age-encryption";
import { CrdBackupError } from "../errors.ts";
import { DigestTap } from "./digest.ts";
import type { Identities, Recipients } from "./keys.ts";

function encrypter(to: Recipients): Encrypter {
  if (to.recipients.length === 0) throw new CrdBackupError("USAGE", "no age recipient to encrypt to");
  const e = new Encrypter();
  for (const r of to.recipients) e.addRecipient(r);
  return e;
}

function decrypter(keys: Identities): Decrypter {
  const d = new Decrypter();
  for (const i of keys.identities) d.addIdentity(i);
  return d;
}

/** What went wrong decrypting, as our error: a key that does not fit, or damaged bytes. */
export function decryptError(e: unknown, what: string): CrdBackupError {
  if (e instanceof CrdBackupError) return e;
  const message = e instanceof Error ? e.message : String(e);
  if (/no identity matched/.test(message)) {
    return new CrdBackupError("DECRYPT", `${what}: none of the given identities can decrypt it`);
  }
  return new CrdBackupError(
    "ARCHIVE_INVALID",
    `${what}: the age encryption does not check out (${message}): damaged or tampered`,
  );
}

/** Encrypts a Node stream to the recipients; the result is an age file, streamed. */
export async function encryptStream(plain: Readable, to: Recipients): Promise<Readable> {
  const web = Readable.toWeb(plain) as unknown as ReadableStream<Uint8Array>;
  const out = await encrypter(to).encrypt(web);
  return Readable.fromWeb(out as unknown as WebReadableStream<Uint8Array>);
}

/**
 * Decrypts an age file streamed from `cipher`. The header is read and the file key unwrapped
 * before this resolves, so a key that does not fit fails here (DECRYPT); damage in the payload
 * fails the returned stream (ARCHIVE_INVALID) at the chunk it is in.
 */
export async function decryptStream(
  cipher: Readable,
  keys: Identities,
  what = "age file",
): Promise<Readable> {
  const web = Readable.toWeb(cipher) as unknown as ReadableStream<Uint8Array>;
  let out;
  try {
    out = await decrypter(keys).decrypt(web);
  } catch (e) {
    cipher.destroy();
    throw decryptError(e, what);
  }
  const plain = Readable.fromWeb(out as unknown as WebReadableStream<Uint8Array>);
  // errors from inside the web stream carry the library's wording: give them ours
  return Readable.from(
    (async function* () {
      try {
        for await (const chunk of plain) yield chunk as Uint8Array;
      } catch (e) {
        throw decryptError(e, what);
      }
    })(),
    { objectMode: false },
  );
}

/** Small data (a sealed manifest) as an ASCII-armored age file: `age -d` reads it as it is. */
export async function sealText(text: string, to: Recipients): Promise<string> {
  return armor.encode(await encrypter(to).encrypt(text));
}

export async function openSealedText(armored: string, keys: Identities, what: string): Promise<string> {
  try {
    return await decrypter(keys).decrypt(armor.decode(armored), "text");
  } catch (e) {
    throw decryptError(e, what);
  }
}

/**
 * A plain stream encrypted for storage, with the SHA-256 and size of the encrypted bytes (what
 * storage holds, and what the manifest records), known once the body has been consumed.
 */
export async function encryptForStorage(
  plain: Readable,
  to: Recipients,
): Promise<{ body: Readable; stored: () => { size: number; sha256: string } }> {
  const tap = new DigestTap();
  const encrypted = await encryptStream(plain, to);
  // an error on either side destroys both, so the upload reading `tap` fails too
  pipeline(encrypted, tap).catch(() => undefined);
  return { body: tap, stored: () => ({ size: tap.size, sha256: tap.sha256() }) };
}

/**
 * age recipients (public keys: what a snapshot is encrypted to) and identities (private keys: what
 * decrypts it), as the age tool reads them. The job that writes snapshots needs only recipients;
 * identities are read only by commands that need content.
 */
import { readFile, writeFile } from "node:fs/promises";
import {
  Decrypter,
  Encrypter,
  generateHybridIdentity,
  generateX25519Identity,
  identityToRecipient,
} from "age-encryption";
import { CrdBackupError } from "../errors.ts";

/** The environment variables the CLI and the CronJob use. */
export const RECIPIENTS_ENV = "CRD_BACKUP_ENCRYPT_TO";
export const IDENTITY_FILE_ENV = "CRD_BACKUP_IDENTITY_FILE";

/** What a snapshot is encrypted to: age recipient strings (`age1…`, `age1pq1…`), validated. */
export interface Recipients {
  recipients: string[];
}

/** What decrypts: age identity strings, and the files they came from (for messages, never the keys). */
export interface Identities {
  identities: string[];
  sources: string[];
}

/** Lines of an age recipients or identities file: `#` comments and blank lines skipped. */
function keyLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

/** A private key where a public one belongs: never echoed, whatever its case or encoding. */
const SECRET_KEY = /SECRET-KEY|PRIVATE KEY/i;

/**
 * Refuses what the age-encryption library cannot encrypt to, naming where it came from. Only a
 * value shaped like a public key is quoted back: anything else may be a pasted secret.
 */
export function checkRecipient(r: string, from: string): string {
  if (SECRET_KEY.test(r)) {
    throw new CrdBackupError(
      "USAGE",
      `${from}: holds a private key where a recipient belongs; give its public key (age-keygen -y FILE prints it) and keep the private key out of this setting`,
    );
  }
  try {
    new Encrypter().addRecipient(r);
    // addRecipient only checks the prefix; encoding errors surface when the key is decoded
    if (!/^age1[0-9a-z]+$/.test(r)) throw new Error("not an age recipient");
  } catch {
    if (r.startsWith("ssh-"))
      throw new CrdBackupError("USAGE", `${from}: SSH keys are not supported: use an age1… recipient`);
    const shown = /^age1[0-9a-z]*$/.test(r) ? ` "${r.slice(0, 24)}${r.length > 24 ? "…" : ""}"` : "";
    throw new CrdBackupError("USAGE", `${from}:${shown || " a value"} is not an age recipient (age1…)`);
  }
  return r;
}

/** Recipients from a recipients file's text (one per line, `#` comments), as `age -R` reads it. */
export function parseRecipients(text: string, from: string): string[] {
  return keyLines(text).map((r) => checkRecipient(r, from));
}

/** Identities from an identity file's text (as age-keygen writes it). */
export function parseIdentities(text: string, from: string): string[] {
  const out = keyLines(text);
  for (const id of out) {
    try {
      new Decrypter().addIdentity(id);
    } catch {
      // never echo the line: it may be a private key in another encoding
      throw new CrdBackupError(
        "USAGE",
        `${from}: a line is not an age identity (AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1…)`,
      );
    }
  }
  if (out.length === 0) throw new CrdBackupError("USAGE", `${from}: holds no age identity`);
  return out;
}

export interface RecipientSources {
  /** --encrypt-to, repeatable. */
  encryptTo?: string[];
  /** --encrypt-to-file, repeatable. */
  encryptToFiles?: string[];
  /** CRD_BACKUP_ENCRYPT_TO: recipients separated by commas or newlines. */
  env?: string;
}

/**
 * Every recipient the flags and the environment name, deduplicated in order; undefined when none
 * do (the snapshot is then not encrypted).
 */
export async function resolveRecipients(src: RecipientSources): Promise<Recipients | undefined> {
  const all: string[] = [];
  for (const r of src.encryptTo ?? []) all.push(checkRecipient(r.trim(), "--encrypt-to"));
  for (const file of src.encryptToFiles ?? []) {
    const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
      throw new CrdBackupError("USAGE", `--encrypt-to-file ${file}: ${e.code ?? e.message}`);
    });
    const found = parseRecipients(text, `--encrypt-to-file ${file}`);
    if (found.length === 0)
      throw new CrdBackupError("USAGE", `--encrypt-to-file ${file}: holds no recipient`);
    all.push(...found);
  }
  if (src.env !== undefined) {
    // set but empty is a mistake (a missing Secret key, a typo), never a request for plaintext
    const found = keyLines(src.env.replaceAll(",", "\n"));
    if (found.length === 0)
      throw new CrdBackupError(
        "USAGE",
        `$${RECIPIENTS_ENV} is set but holds no recipient; unset it to write unencrypted snapshots`,
      );
    all.push(...found.map((r) => checkRecipient(r, `$${RECIPIENTS_ENV}`)));
  }
  return all.length === 0 ? undefined : { recipients: [...new Set(all)] };
}

/** Identities from --identity files (repeatable) and CRD_BACKUP_IDENTITY_FILE; undefined when none. */
export async function resolveIdentities(
  files: string[] = [],
  envFile?: string,
): Promise<Identities | undefined> {
  const sources = [...files, ...(envFile ? [envFile] : [])];
  if (sources.length === 0) return undefined;
  const identities: string[] = [];
  for (const file of sources) {
    const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
      throw new CrdBackupError("USAGE", `--identity ${file}: ${e.code ?? e.message}`);
    });
    identities.push(...parseIdentities(text, `identity file ${file}`));
  }
  return { identities, sources };
}

/** A new identity, as age-keygen writes it: created time, public key, then the secret key. */
export async function generateKey(
  options: { postQuantum?: boolean } = {},
): Promise<{ file: string; recipient: string }> {
  const identity = options.postQuantum ? await generateHybridIdentity() : await generateX25519Identity();
  const recipient = await identityToRecipient(identity);
  const created = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  return { file: `# created: ${created}\n# public key: ${recipient}\n${identity}\n`, recipient };
}

/** Writes a new identity file, mode 0600, never replacing an existing file. */
export async function writeNewKey(path: string, options: { postQuantum?: boolean } = {}): Promise<string> {
  const { file, recipient } = await generateKey(options);
  await writeFile(path, file, { mode: 0o600, flag: "wx" }).catch((e: NodeJS.ErrnoException) => {
    throw new CrdBackupError(
      e.code === "EEXIST" ? "USAGE" : "CONFIG",
      `--output ${path}: ${e.code === "EEXIST" ? "already exists; crd-backup never overwrites a key" : (e.code ?? e.message)}`,
    );
  });
  return recipient;
}

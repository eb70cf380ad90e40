/**
 * OpenSSH's allowed_signers file (ssh-keygen(1), "ALLOWED SIGNERS"), the `--trusted-signers` of
 * every reader: `principals [options] keytype base64-key [comment]`, `#` comments and blank lines
 * skipped. Supported as ssh-keygen does: principals and `namespaces=` as pattern-lists (`*`, `?`,
 * `!` negation, case as given), `valid-after=`/`valid-before=` against this machine's clock.
 * `cert-authority` is refused in one line: crd-backup checks plain keys, not certificates. Keys of
 * other types are accepted in the file (it may be shared) but never match: signatures are Ed25519.
 */
import { readFile } from "node:fs/promises";
import { CrdBackupError } from "../errors.ts";
import { ed25519Raw, fingerprint, NAMESPACE, SignatureFormatError } from "./sshsig.ts";

export const TRUSTED_SIGNERS_ENV = "CRD_BACKUP_TRUSTED_SIGNERS_FILE";

export interface AllowedSigner {
  principals: string;
  /** The key's wire blob and fingerprint (SHA256:…). */
  publicBlob: Buffer;
  fingerprint: string;
  namespaces?: string;
  validAfter?: Date;
  validBefore?: Date;
  /** 1-based, for messages. */
  line: number;
}

export interface TrustedSigners {
  signers: AllowedSigner[];
  source: string;
}

const KEY_TYPE =
  /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)$/;

/** Splits on whitespace outside double quotes. */
function fields(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && (ch === " " || ch === "\t")) {
      if (cur) out.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (quoted) throw new Error("an unclosed double quote");
  if (cur) out.push(cur);
  return out;
}

/** One `*`/`?` pattern against a whole string (ssh's match_pattern). */
function matchPattern(s: string, pattern: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "s").test(s);
}

/** ssh's match_pattern_list: a negated match refuses, otherwise any positive match accepts. */
export function matchPatternList(s: string, list: string): boolean {
  let matched = false;
  for (const p of list.split(",")) {
    const negated = p.startsWith("!");
    if (matchPattern(s, negated ? p.slice(1) : p)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]: UTC with Z, this machine's time zone without (as ssh-keygen). */
function parseTimestamp(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z)?$/.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const utc = m[7] !== undefined;
  const t = utc ? new Date(Date.UTC(y, mo - 1, d, h, mi, se)) : new Date(y, mo - 1, d, h, mi, se);
  const day = utc
    ? [t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate()]
    : [t.getFullYear(), t.getMonth() + 1, t.getDate()];
  return day[0] === y && day[1] === mo && day[2] === d && h < 24 && mi < 60 && se < 60 ? t : undefined;
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

/** The options field, split on commas outside quotes. */
function parseOptions(text: string, signer: AllowedSigner, where: string): void {
  const parts: string[] = [];
  let cur = "";
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === "," && !quoted) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  for (const part of parts) {
    const eq = part.indexOf("=");
    const name = (eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? undefined : unquote(part.slice(eq + 1));
    if (name === "cert-authority")
      throw new CrdBackupError(
        "USAGE",
        `${where}: cert-authority is not supported: list the signing keys themselves`,
      );
    if (name === "namespaces" && value) signer.namespaces = value;
    else if ((name === "valid-after" || name === "valid-before") && value) {
      const t = parseTimestamp(value);
      if (!t)
        throw new CrdBackupError(
          "USAGE",
          `${where}: ${name}="${value}" is not YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]`,
        );
      if (name === "valid-after") signer.validAfter = t;
      else signer.validBefore = t;
    } else
      throw new CrdBackupError(
        "USAGE",
        `${where}: option "${name}" is not supported (namespaces, valid-after, valid-before are)`,
      );
  }
}

/** An allowed_signers file's text; a line that cannot be read is a USAGE error naming it. */
export function parseAllowedSigners(text: string, source: string): TrustedSigners {
  const signers: AllowedSigner[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const where = `${source} line ${i + 1}`;
    let f: string[];
    try {
      f = fields(line);
    } catch (e) {
      throw new CrdBackupError("USAGE", `${where}: ${(e as Error).message}`);
    }
    const typeAt = f.findIndex((x, j) => j > 0 && KEY_TYPE.test(x));
    if (typeAt < 1 || typeAt > 2 || f[typeAt + 1] === undefined)
      throw new CrdBackupError("USAGE", `${where}: not "principals [options] keytype base64-key"`);
    const b64 = f[typeAt + 1]!;
    const blob = Buffer.from(b64, "base64");
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || blob.length < 8)
      throw new CrdBackupError("USAGE", `${where}: the key is not base64`);
    let type: string;
    try {
      type = blob.subarray(4, 4 + blob.readUInt32BE(0)).toString("latin1");
      if (type === "ssh-ed25519") ed25519Raw(blob);
    } catch (e) {
      const why = e instanceof SignatureFormatError ? e.message : "not an SSH public key";
      throw new CrdBackupError("USAGE", `${where}: ${why}`);
    }
    if (type !== f[typeAt])
      throw new CrdBackupError("USAGE", `${where}: the key is ${type}, the line says ${f[typeAt]}`);
    const signer: AllowedSigner = {
      principals: unquote(f[0]!),
      publicBlob: blob,
      fingerprint: fingerprint(blob),
      line: i + 1,
    };
    if (typeAt === 2) parseOptions(f[1]!, signer, where);
    signers.push(signer);
  }
  if (signers.length === 0) throw new CrdBackupError("USAGE", `${source}: no signer in it`);
  return { signers, source };
}

/**
 * The lines that accept `publicBlob` signing for crd-backup now: same key, the namespace allowed,
 * within valid-after/valid-before. Empty: not a trusted signer.
 */
export function acceptingSigners(
  trusted: TrustedSigners,
  publicBlob: Buffer,
  now = new Date(),
): AllowedSigner[] {
  return trusted.signers.filter(
    (s) =>
      s.publicBlob.equals(publicBlob) &&
      (s.namespaces === undefined || matchPatternList(NAMESPACE, s.namespaces)) &&
      (s.validAfter === undefined || now >= s.validAfter) &&
      (s.validBefore === undefined || now <= s.validBefore),
  );
}

/** The file `--trusted-signers` (or $CRD_BACKUP_TRUSTED_SIGNERS_FILE) names; undefined when neither is set. */
export async function loadTrustedSigners(
  file: string | undefined,
  env = process.env,
): Promise<TrustedSigners | undefined> {
  const path = file ?? (env[TRUSTED_SIGNERS_ENV] || undefined);
  if (path === undefined) return undefined;
  const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new CrdBackupError("USAGE", `--trusted-signers ${path}: cannot read it (${e.code ?? e.message})`);
  });
  return parseAllowedSigners(text, path);
}

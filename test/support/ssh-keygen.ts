/**
 * OpenSSH's ssh-keygen (Debian's openssh-client), the judge of every signature test: it makes the
 * keys, signs what our code must accept, and verifies what our code signs.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface SshKey {
  /** The private key file (OpenSSH format). */
  file: string;
  /** `ssh-ed25519 AAAA… comment` */
  publicLine: string;
  /** SHA256:…, as ssh-keygen -l prints it. */
  fingerprint: string;
}

export async function tempDir(prefix = "crd-backup-ssh-"): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** A new key; `passphrase` makes an encrypted one. */
export async function sshKeygen(
  dir: string,
  name: string,
  passphrase = "",
  type = "ed25519",
): Promise<SshKey> {
  const file = path.join(dir, name);
  await run("ssh-keygen", ["-q", "-t", type, "-N", passphrase, "-C", `${name}@test`, "-f", file]);
  const publicLine = (await readFile(`${file}.pub`, "utf8")).trim();
  const { stdout } = await run("ssh-keygen", ["-l", "-f", `${file}.pub`]);
  return { file, publicLine, fingerprint: stdout.split(" ")[1]! };
}

/** An allowed_signers file trusting `key` as `principal` for the crd-backup namespace. */
export async function allowedSigners(
  dir: string,
  principal: string,
  key: SshKey,
  options = 'namespaces="crd-backup"',
): Promise<string> {
  const file = path.join(dir, `allowed-${principal}`);
  const [type, b64] = key.publicLine.split(" ");
  await writeFile(file, `${principal} ${options} ${type} ${b64}\n`);
  return file;
}

/** `ssh-keygen -Y sign -n crd-backup` of `message`: the armored signature. */
export async function sshSign(key: SshKey, message: Buffer): Promise<string> {
  const dir = await tempDir();
  const file = path.join(dir, "message");
  await writeFile(file, message);
  await run("ssh-keygen", ["-q", "-Y", "sign", "-f", key.file, "-n", "crd-backup", file]);
  return readFile(`${file}.sig`, "utf8");
}

/**
 * Exactly the documented check: `ssh-keygen -Y verify -f allowed_signers -I <identity> -n
 * crd-backup -s <sig> < <message>`. Resolves to its exit code and output.
 */
export async function sshVerify(
  allowed: string,
  identity: string,
  signature: string,
  message: Buffer,
): Promise<{ code: number; out: string }> {
  const dir = await tempDir();
  const sig = path.join(dir, "message.sig");
  const msg = path.join(dir, "message");
  await writeFile(sig, signature);
  await writeFile(msg, message);
  try {
    const { stdout, stderr } = await run("sh", [
      "-c",
      `ssh-keygen -Y verify -f "$1" -I "$2" -n crd-backup -s "$3" < "$4"`,
      "sh",
      allowed,
      identity,
      sig,
      msg,
    ]);
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? 1, out: (err.stdout ?? "") + (err.stderr ?? "") };
  }
}

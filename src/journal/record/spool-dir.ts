/**
 * The recorder's default spool directory. Whatever a recorder finds in its spool when it starts
 * it uploads as journal segments (a killed recorder's successor takes over what it left), so the
 * spool must be writable by this user alone: a spool that another local user could write to, or
 * swap for a symbolic link, would let them put segments into the journal, which a point-in-time
 * restore then applies to a cluster. The default lives in the shared temporary directory under a
 * predictable name (a restarted recorder must find it again), so it is checked, never trusted:
 * created with mode 0700 when absent, refused when it is a symbolic link, not a directory, owned
 * by another user, or open to the group or others.
 */
import { lstat, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CrdBackupError } from "../../errors.ts";

/** `$TMPDIR/crd-backup-spool-<uid>`: one per user, so users of one machine never share one. */
export function defaultSpoolDir(): string {
  const uid = process.getuid?.();
  return path.join(os.tmpdir(), uid === undefined ? "crd-backup-spool" : `crd-backup-spool-${uid}`);
}

/**
 * Makes sure `dir` is a directory private to this user: creates it with mode 0700 if absent,
 * and refuses (CONFIG, one line) a symbolic link, a non-directory, another owner, or any group or
 * other permission. Returns `dir`.
 */
export async function ensurePrivateDir(dir: string): Promise<string> {
  const refuse = (why: string) =>
    new CrdBackupError(
      "CONFIG",
      `spool directory ${dir} ${why}; segments found in a spool are uploaded to the journal, so it must be a directory of this user's alone (mode 0700), or give --spool-dir`,
      { dir },
    );
  let info = await lstat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined;
    throw refuse(`cannot be read (${e.code ?? e.message})`);
  });
  if (info === undefined) {
    // not recursive: the temporary directory exists, and a directory created in the meantime by
    // someone else makes this fail (EEXIST) and is then checked like any other
    await mkdir(dir, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw refuse(`cannot be created (${e.code ?? e.message})`);
    });
    info = await lstat(dir);
  }
  if (info.isSymbolicLink()) throw refuse("is a symbolic link");
  if (!info.isDirectory()) throw refuse("is not a directory");
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid)
    throw refuse(`is owned by uid ${info.uid}, not by this user (uid ${uid})`);
  const mode = info.mode & 0o777;
  if (mode & 0o077) throw refuse(`is open to its group or to others (mode 0${mode.toString(8)})`);
  return dir;
}

/**
 * Where a Velero backup comes from: a backup storage location (Velero's
 * pkg/persistence/object_store_layout.go: `backups/<name>/velero-backup.json` beside
 * `backups/<name>/<name>.tar.gz`), read through the same storage backends as crd-backup's own
 * locations, or a downloaded tarball on disk. Read-only: nothing here writes to the source.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { CrdBackupError } from "../../errors.ts";
import { quote } from "../../archive/format.ts";
import { isJsonObject, parseJson, type JsonObject, type JsonValue } from "../../json/json.ts";
import { readAll, type StorageBackend } from "../../storage/backend.ts";
import { veleroInvalid } from "./layout.ts";
import type { TarballSource } from "./tarball.ts";

/** What Velero recorded about a backup (its Backup object), where it has one. */
export interface VeleroBackupInfo {
  name: string;
  /** Where it was read from: the location, or the file. */
  from: string;
  startedAt?: string | undefined;
  finishedAt?: string | undefined;
  phase?: string | undefined;
  /** The source cluster's version, from Velero's velero.io/source-cluster-k8s-gitversion annotation. */
  serverVersion?: string | undefined;
  /** A downloaded tarball's modification time: the last resort for the snapshot's time, stable across re-imports. */
  modifiedAt?: string | undefined;
}

export interface VeleroBackup {
  info: VeleroBackupInfo;
  tarball: TarballSource;
}

const BACKUPS = "backups/";
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const obj = (v: JsonValue | undefined): JsonObject => (isJsonObject(v) ? v : {});
const str = (v: JsonValue | undefined): string | undefined =>
  typeof v === "string" && v !== "" ? v : undefined;

/** A backup in a Velero backup storage location; NOT_FOUND naming it if Velero has no such backup there. */
export async function backupInLocation(storage: StorageBackend, name: string): Promise<VeleroBackup> {
  if (!NAME.test(name)) throw new CrdBackupError("USAGE", `${quote(name)} is not a Velero backup name`);
  const metaKey = `${BACKUPS}${name}/velero-backup.json`;
  let doc: JsonValue;
  try {
    doc = parseJson((await readAll(await storage.read(metaKey))).toString("utf8"));
  } catch (e) {
    if (e instanceof CrdBackupError && e.code === "NOT_FOUND")
      throw new CrdBackupError(
        "NOT_FOUND",
        `Velero backup ${quote(name)} does not exist in ${storage.location}`,
        { backup: name },
      );
    if (e instanceof SyntaxError) throw veleroInvalid(name, `${metaKey} is not JSON`);
    throw e;
  }
  const backup = obj(doc);
  if (backup["kind"] !== "Backup" || str(obj(backup["metadata"])["name"]) !== name)
    throw veleroInvalid(name, `${metaKey} is not the Backup object of ${quote(name)}`);
  const status = obj(backup["status"]);
  const annotations = obj(obj(backup["metadata"])["annotations"]);
  const tarKey = `${BACKUPS}${name}/${name}.tar.gz`;
  return {
    info: {
      name,
      from: storage.location,
      startedAt: str(status["startTimestamp"]),
      finishedAt: str(status["completionTimestamp"]),
      phase: str(status["phase"]),
      serverVersion: str(annotations["velero.io/source-cluster-k8s-gitversion"]),
    },
    tarball: async () => {
      try {
        return await storage.read(tarKey);
      } catch (e) {
        if (e instanceof CrdBackupError && e.code === "NOT_FOUND")
          throw veleroInvalid(name, `its tarball ${tarKey} is missing from ${storage.location}`);
        throw e;
      }
    },
  };
}

/** Every backup in a Velero location, by name (each one's velero-backup.json). */
export async function backupNames(storage: StorageBackend): Promise<string[]> {
  const names: string[] = [];
  for await (const { key } of storage.list(BACKUPS)) {
    const m = /^backups\/([^/]+)\/velero-backup\.json$/.exec(key);
    if (m && NAME.test(m[1]!)) names.push(m[1]!);
  }
  return names.sort();
}

/** A downloaded tarball: the backup's name is the file's, less `.tar.gz` (and `-data`, as `velero backup download` names it). */
export async function backupFile(file: string): Promise<VeleroBackup> {
  const found = await stat(file).catch(() => undefined);
  if (!found?.isFile()) throw new CrdBackupError("NOT_FOUND", `${file} is not a file`);
  const name = path
    .basename(file)
    .replace(/\.tar\.gz$|\.tgz$/, "")
    .replace(/-data$/, "");
  return {
    info: { name, from: path.resolve(file), modifiedAt: found.mtime.toISOString() },
    tarball: () => Promise.resolve(createReadStream(file)),
  };
}

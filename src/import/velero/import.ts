/**
 * One Velero backup into one crd-backup snapshot. The snapshot's ID is a function of where the
 * backup came from, its name and its start time, so importing it again finds it already there
 * (and `--all` on a schedule imports only what is new); its times are Velero's, so list, retention
 * and --at order it among the cluster's own snapshots. The tarball is read twice (see tarball.ts):
 * from a location it is spooled once to a temporary file, so storage is read once.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { CrdBackupError } from "../../errors.ts";
import { quote } from "../../archive/format.ts";
import type { StoredManifest } from "../../archive/manifest.ts";
import { isJsonObject } from "../../json/json.ts";
import type { Recipients } from "../../crypto/keys.ts";
import type { Logger } from "../../report/log.ts";
import { silentLogger } from "../../report/log.ts";
import { openPublication } from "../../snapshot/publish.ts";
import type { StorageBackend } from "../../storage/backend.ts";
import { manifestKey } from "../../storage/layout.ts";
import { TOOL_VERSION } from "../../version.ts";
import { convertVeleroBackup } from "./convert.ts";
import type { VeleroBackup, VeleroBackupInfo } from "./source.ts";
import { scanVeleroTarball } from "./tarball.ts";

export interface ImportOptions {
  /** The cluster the snapshot belongs to; default: the backup's kube-system Namespace, else one per source. */
  clusterUid?: string | undefined;
  encryptTo?: Recipients | undefined;
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
}

export interface ImportResult {
  id: string;
  backup: VeleroBackupInfo;
  /** Set when the snapshot was there already (an earlier import); nothing was written. */
  alreadyImported: boolean;
  manifest?: StoredManifest;
  /** The signing key's fingerprint when the snapshot's manifest was signed. */
  signedBy?: string;
  /** Items that are not custom resources, by kind. */
  skipped: Record<string, number>;
}

const FINISHED = new Set(["Completed", "PartiallyFailed"]);

/**
 * Whether Velero has finished the backup with its items written: a location also holds Failed
 * backups, and backups still in WaitingForPluginOperations or Finalizing (Velero uploads the
 * tarball before their last phase). A downloaded tarball has no phase and is taken as it is.
 */
export function importable(info: VeleroBackupInfo): boolean {
  return info.phase === undefined || FINISHED.has(info.phase);
}

/** `YYYYMMDDTHHMMSSZ-<hex>`: the start's second and millisecond, and 22 bits of the backup's identity. */
export function importedSnapshotId(info: VeleroBackupInfo, startedAt: Date): string {
  const stamp = startedAt
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
  const digest = createHash("sha256").update(`velero\n${info.from}\n${info.name}`).digest();
  const bits = ((startedAt.getUTCMilliseconds() << 22) | (digest.readUInt32BE(0) & 0x3fffff)) >>> 0;
  return `${stamp}-${bits.toString(16).padStart(8, "0")}`;
}

const sourceCluster = (from: string): string =>
  `velero-${createHash("sha256").update(from).digest("hex").slice(0, 16)}`;

export async function importVeleroBackup(
  storage: StorageBackend,
  backup: VeleroBackup,
  options: ImportOptions = {},
): Promise<ImportResult> {
  const log = options.log ?? silentLogger;
  const { info } = backup;
  if (!importable(info))
    throw new CrdBackupError(
      "USAGE",
      `Velero backup ${quote(info.name)} is ${info.phase}: only finished backups are imported`,
    );
  const dir = await mkdtemp(path.join(os.tmpdir(), "crd-backup-velero-"));
  try {
    const file = path.join(dir, "backup.tar.gz");
    await pipeline(Readable.from(await backup.tarball()), createWriteStream(file), {
      signal: options.signal,
    });
    const tarball = () => Promise.resolve(createReadStream(file));

    // the Backup object's times where Velero recorded them, else the tarball's member times
    const scan = await scanVeleroTarball(info.name, tarball);
    const startedAt = new Date(info.startedAt ?? scan.firstWritten ?? info.modifiedAt ?? Date.now());
    const finishedAt = new Date(info.finishedAt ?? scan.lastWritten ?? startedAt.getTime());
    const id = importedSnapshotId(info, startedAt);
    if (await storage.stat(manifestKey(id))) {
      log.info("velero backup already imported", { backup: info.name, id });
      return { id, backup: info, alreadyImported: true, skipped: {} };
    }

    const publication = await openPublication(storage, id, {
      encryptTo: options.encryptTo,
      signal: options.signal,
    });
    try {
      const converted = await convertVeleroBackup(publication.writer, info.name, tarball, scan);
      const systemUid = converted.scan.namespaces.get("kube-system")?.["metadata"];
      const uid =
        isJsonObject(systemUid) && typeof systemUid["uid"] === "string" ? systemUid["uid"] : undefined;
      const { manifest, signedBy } = await publication.publish({
        toolVersion: TOOL_VERSION,
        snapshotId: id,
        status: info.phase === "PartiallyFailed" ? "partial" : "complete",
        cluster: {
          uid: options.clusterUid ?? uid ?? sourceCluster(info.from),
          server: info.from.includes("://") ? info.from : `file://${info.from}`,
          serverVersion: info.serverVersion ?? "unknown",
        },
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        options: {
          importedFrom: {
            tool: "velero",
            backup: info.name,
            from: info.from,
            formatVersion: converted.scan.formatVersion,
            ...(info.phase ? { phase: info.phase } : {}),
            skipped: Object.fromEntries(converted.skipped),
          },
        },
        resources: converted.resources,
        namespaceErrors: [],
      });
      log.info("velero backup imported", {
        backup: info.name,
        id,
        objects: manifest.sealed ? undefined : manifest.counts.objects,
      });
      return {
        id,
        backup: info,
        alreadyImported: false,
        manifest,
        ...(signedBy ? { signedBy } : {}),
        skipped: Object.fromEntries(converted.skipped),
      };
    } catch (e) {
      throw await publication.abort(e);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

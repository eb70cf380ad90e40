import { CrdBackupError } from "../errors.ts";
import type { StorageBackend } from "./backend.ts";
import { LocalBackend } from "./local.ts";
import type { S3Options } from "./s3.ts";

/** Where snapshots go when neither --storage nor CRD_BACKUP_STORAGE says. */
export const DEFAULT_STORAGE = "./crd-backups";

export type S3Settings = Omit<S3Options, "bucket" | "prefix">;

/**
 * Opens the backend a location names: `s3://bucket[/prefix]`, `file://path`, or a plain path.
 */
export async function openStorage(
  location: string | undefined,
  s3: S3Settings = {},
): Promise<StorageBackend> {
  const where = location || process.env["CRD_BACKUP_STORAGE"] || DEFAULT_STORAGE;
  if (where.startsWith("s3://")) {
    const rest = where.slice("s3://".length);
    const slash = rest.indexOf("/");
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? "" : rest.slice(slash + 1).replace(/^\/+|\/+$/g, "");
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new CrdBackupError("USAGE", `--storage ${where}: "${bucket}" is not a valid S3 bucket name`);
    }
    // the AWS SDK is large: load it only for S3 locations
    const { S3Backend } = await import("./s3.ts");
    return new S3Backend({ ...s3, bucket, prefix });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(where) && !where.startsWith("file://")) {
    throw new CrdBackupError(
      "USAGE",
      `--storage ${where}: unsupported scheme (use s3://bucket/prefix, file://path or a path)`,
    );
  }
  if (s3.retention) {
    throw new CrdBackupError(
      "USAGE",
      `--retain needs S3 storage with Object Lock: a local directory (${where}) cannot keep objects from being deleted`,
    );
  }
  return new LocalBackend(where.startsWith("file://") ? where.slice("file://".length) : where);
}

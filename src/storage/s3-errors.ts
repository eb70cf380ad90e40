import { CrdBackupError } from "../errors.ts";

/** Where an S3 request went, for messages: the location's URL and its bucket. */
export interface S3Where {
  location: string;
  bucket: string;
}

/** An SDK error as crd-backup's typed error, naming what was done where (never the credentials). */
export function s3Error(e: unknown, op: string, where: S3Where, key: string): CrdBackupError {
  if (e instanceof CrdBackupError) return e;
  const err = e as Error & { name?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const at = `${where.location}/${key}`;
  if (err.name === "AbortError") return new CrdBackupError("ABORTED", `${op} ${at}: cancelled`, { key });
  if (err.name === "NoSuchKey" || err.name === "NotFound" || err.$metadata?.httpStatusCode === 404) {
    if (err.name === "NoSuchBucket") {
      return new CrdBackupError("STORAGE", `bucket ${where.bucket} does not exist`, { key });
    }
    return new CrdBackupError("NOT_FOUND", `${at} does not exist`, { key });
  }
  // the SDK's messages name the operation and status, never the credentials
  const detail =
    err.code === "ECONNREFUSED"
      ? "connection refused (is the endpoint right and the store up?)"
      : err.message;
  return new CrdBackupError(
    "STORAGE",
    `${op} ${at}: ${err.name ?? "error"}: ${detail}`,
    { key, op },
    { cause: e },
  );
}

/** An S3 access-denied answer (403): a missing permission, or on AWS also a locked version's delete. */
export function isDenied(e: unknown): boolean {
  const err = e as Error & { $metadata?: { httpStatusCode?: number } };
  return err.$metadata?.httpStatusCode === 403 || err.name === "AccessDenied";
}

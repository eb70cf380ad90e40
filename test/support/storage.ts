import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { LocalBackend } from "../../src/storage/local.ts";
import { S3Backend } from "../../src/storage/s3.ts";
import type { StorageBackend } from "../../src/storage/backend.ts";
import { testEnv, uniqueName } from "./cluster.ts";

/** A fresh, empty S3 prefix in the environment's MinIO bucket. */
export function freshS3(): S3Backend {
  const { s3 } = testEnv();
  return new S3Backend({
    bucket: s3.bucket,
    prefix: uniqueName("t"),
    endpoint: s3.endpoint,
    region: s3.region,
    partSize: 5 * 1024 * 1024,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}

export function freshLocal(): LocalBackend {
  return new LocalBackend(mkdtempSync(path.join(os.tmpdir(), "crd-backup-store-")));
}

export const BACKENDS: [string, () => StorageBackend][] = [
  ["s3 (MinIO)", freshS3],
  ["local directory", freshLocal],
];

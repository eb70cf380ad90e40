import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ServerSideEncryption,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { CrdBackupError } from "../errors.ts";
import type { StorageBackend } from "./backend.ts";
import type { ObjectLockRetention } from "./lock.ts";

export interface S3Options {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing slash ("" for the bucket root). */
  prefix: string;
  /** A custom endpoint (MinIO, Ceph, R2, ...); otherwise AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then AWS. */
  endpoint?: string;
  region?: string;
  /** Path-style addressing; defaults to on for a custom endpoint, where virtual hosts rarely resolve. */
  forcePathStyle?: boolean;
  serverSideEncryption?: ServerSideEncryption;
  kmsKeyId?: string;
  /**
   * "when_required" (default) sends checksums only where S3 demands them, which every
   * S3-compatible store accepts; "when_supported" adds CRC checksums to every upload (AWS, new MinIO).
   * Archives carry their own SHA-256 either way.
   */
  checksums?: "when_required" | "when_supported";
  /** Multipart part size in bytes; memory held by one upload is about partSize x queueSize. */
  partSize?: number;
  queueSize?: number;
  /** Object Lock retention for every object written; the bucket must have Object Lock enabled. */
  retention?: ObjectLockRetention;
  /** Explicit credentials for library callers; otherwise the standard AWS chain (env, profile, IRSA, IMDS). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/**
 * Put next to a key while it is being uploaded, removed when the upload completes or is aborted.
 * What an upload cut off by a crash or an outage leaves behind is found through it: MinIO, unlike
 * AWS S3, lists multipart uploads only by their exact key, never by prefix.
 */
const UPLOAD_MARK = ".crd-backup-upload";

/** An S3-compatible bucket. Credentials come from the standard AWS chain and are never logged. */
export class S3Backend implements StorageBackend {
  readonly location: string;
  private readonly client: S3Client;
  private readonly options: S3Options;
  /** Whether the bucket has Object Lock enabled (undefined: not allowed to ask), asked once. */
  private objectLock: Promise<boolean | undefined> | undefined;

  constructor(options: S3Options) {
    this.options = options;
    this.location = `s3://${options.bucket}${options.prefix ? `/${options.prefix}` : ""}`;
    const endpoint =
      options.endpoint ?? process.env["AWS_ENDPOINT_URL_S3"] ?? process.env["AWS_ENDPOINT_URL"];
    const checksums = options.checksums === "when_supported" ? "WHEN_SUPPORTED" : "WHEN_REQUIRED";
    this.client = new S3Client({
      endpoint: endpoint || undefined,
      region: options.region ?? process.env["AWS_REGION"] ?? process.env["AWS_DEFAULT_REGION"] ?? "us-east-1",
      forcePathStyle: options.forcePathStyle ?? Boolean(endpoint),
      requestChecksumCalculation: checksums,
      responseChecksumValidation: checksums,
      maxAttempts: 5,
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
  }

  private key(key: string): string {
    return this.options.prefix ? `${this.options.prefix}/${key}` : key;
  }

  private encryption(): { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string } {
    return {
      ...(this.options.serverSideEncryption
        ? { ServerSideEncryption: this.options.serverSideEncryption }
        : {}),
      ...(this.options.kmsKeyId ? { SSEKMSKeyId: this.options.kmsKeyId } : {}),
    };
  }

  private lockEnabled(): Promise<boolean | undefined> {
    this.objectLock ??= this.client
      .send(new GetObjectLockConfigurationCommand({ Bucket: this.options.bucket }))
      .then((r) => r.ObjectLockConfiguration?.ObjectLockEnabled === "Enabled")
      .catch((e: unknown) => {
        const err = e as Error & { $metadata?: { httpStatusCode?: number } };
        // no configuration, or a store without Object Lock at all: nothing can be locked
        if (err.name === "ObjectLockConfigurationNotFoundError") return false;
        if (err.name === "NotImplemented" || err.$metadata?.httpStatusCode === 501) return false;
        if (err.$metadata?.httpStatusCode === 403) return undefined;
        this.objectLock = undefined; // an outage: ask again next time
        throw this.wrap(e, "read the Object Lock configuration of", "");
      });
    return this.objectLock;
  }

  /**
   * The retention headers for an object written now; before the first write, a bucket without
   * Object Lock is refused: a --retain that silently locked nothing would be worse than none.
   */
  private async retention(): Promise<{
    ObjectLockMode?: "GOVERNANCE" | "COMPLIANCE";
    ObjectLockRetainUntilDate?: Date;
  }> {
    const r = this.options.retention;
    if (!r) return {};
    const enabled = await this.lockEnabled();
    if (enabled !== true) {
      throw new CrdBackupError(
        "CONFIG",
        enabled === false
          ? `--retain ${r.duration}: bucket ${this.options.bucket} does not have Object Lock enabled (it can only be enabled when the bucket is created); nothing was written`
          : `--retain ${r.duration}: not allowed to read the Object Lock configuration of bucket ${this.options.bucket} (s3:GetBucketObjectLockConfiguration); nothing was written`,
      );
    }
    return { ObjectLockMode: r.mode, ObjectLockRetainUntilDate: r.until(new Date()) };
  }

  async write(
    key: string,
    body: Readable,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ size: number }> {
    const marker = `${key}${UPLOAD_MARK}`;
    let lock;
    try {
      lock = await this.retention();
    } catch (e) {
      body.destroy();
      throw e;
    }
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: this.key(marker),
          Body: "",
          ContentLength: 0, // the SDK sets no length for an empty body, then warns on stderr
          ...this.encryption(),
        }),
        { abortSignal: options.signal },
      );
    } catch (e) {
      body.destroy();
      throw this.wrap(e, "write", key);
    }
    let size = 0;
    body.on("data", (c: Buffer) => (size += c.length));
    // lib-storage buffers at most partSize x queueSize and aborts the multipart upload on error
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.options.bucket, Key: this.key(key), Body: body, ...this.encryption(), ...lock },
      // S3's smallest part: the least memory, and 10,000 parts still hold a 48 GiB archive
      // (a snapshot's archive takes about 200 bytes per object)
      partSize: this.options.partSize ?? 5 * 1024 * 1024,
      queueSize: this.options.queueSize ?? 2,
      leavePartsOnError: false,
    });
    const onAbort = () => void upload.abort().catch(() => undefined);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await upload.done();
      return { size };
    } catch (e) {
      body.destroy();
      throw this.wrap(e, "write", key);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      // best effort: a marker left behind only makes cleanupIncomplete look for an upload
      await this.remove(marker).catch(() => undefined);
    }
  }

  async createExclusive(key: string, data: Buffer, options: { signal?: AbortSignal } = {}): Promise<void> {
    const lock = await this.retention();
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: this.key(key),
          Body: data,
          IfNoneMatch: "*", // conditional create: never overwrite a snapshot's manifest
          ContentType: "application/json",
          ...this.encryption(),
          ...lock,
        }),
        { abortSignal: options.signal },
      );
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412 || status === 409) {
        throw new CrdBackupError("ALREADY_EXISTS", `${this.location}/${key} already exists`, { key });
      }
      throw this.wrap(e, "write", key);
    }
  }

  async read(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: this.key(key) }),
        {
          abortSignal: options.signal,
        },
      );
      return res.Body as Readable;
    } catch (e) {
      throw this.wrap(e, "read", key);
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    try {
      const res = await this.client.send(
        new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.key(key) }),
      );
      return { size: res.ContentLength ?? 0 };
    } catch (e) {
      const err = this.wrap(e, "stat", key);
      if (err.code === "NOT_FOUND") return undefined;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    const strip = this.options.prefix ? this.options.prefix.length + 1 : 0;
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.options.bucket,
            Prefix: this.key(prefix),
            ContinuationToken: token,
          }),
        );
      } catch (e) {
        throw this.wrap(e, "list", prefix);
      }
      for (const o of res.Contents ?? []) {
        if (o.Key && !o.Key.endsWith(UPLOAD_MARK)) yield { key: o.Key.slice(strip), size: o.Size ?? 0 };
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * Every version and delete marker of exactly `key` (a versioned bucket keeps them all), and with
   * `withMarker` of its upload marker too (a write with credentials that may not delete leaves it).
   */
  private async versions(key: string, withMarker = false): Promise<{ key: string; versionId: string }[]> {
    const out: { key: string; versionId: string }[] = [];
    const wanted = new Set([this.key(key), ...(withMarker ? [this.key(key) + UPLOAD_MARK] : [])]);
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    do {
      const res = await this.client.send(
        new ListObjectVersionsCommand({
          Bucket: this.options.bucket,
          Prefix: this.key(key),
          KeyMarker: keyMarker,
          VersionIdMarker: versionMarker,
        }),
      );
      for (const v of [...(res.Versions ?? []), ...(res.DeleteMarkers ?? [])]) {
        if (v.Key && wanted.has(v.Key) && v.VersionId) out.push({ key: v.Key, versionId: v.VersionId });
      }
      keyMarker = res.IsTruncated ? res.NextKeyMarker : undefined;
      versionMarker = res.IsTruncated ? res.NextVersionIdMarker : undefined;
    } while (keyMarker);
    return out;
  }

  /**
   * Whether the bucket has Object Lock, for `key`'s sake: not being allowed to ask is an error that
   * names the permission, never "no lock" (a plain delete would then only hide a locked object
   * behind a delete marker, and be reported as a removal).
   */
  private async lockState(key: string): Promise<boolean> {
    const enabled = await this.lockEnabled();
    if (enabled === undefined)
      throw this.denied(
        key,
        "s3:GetBucketObjectLockConfiguration",
        `read the Object Lock configuration of bucket ${this.options.bucket}`,
      );
    return enabled;
  }

  /**
   * A permission error: what could not be done and which permission that needs, for `key`. Not
   * LOCKED: nothing says storage would keep the object, only that this credential may not look.
   */
  private denied(key: string, permission: string, what: string, cause?: unknown): CrdBackupError {
    const err = cause as Error | undefined;
    const detail = err === undefined ? "" : ` (${err.name}: ${err.message})`;
    return new CrdBackupError(
      "STORAGE",
      `${this.location}/${key}: access denied: not allowed to ${what}${detail}; the credential needs ${permission} to tell whether the object is under Object Lock (it was not removed)`,
      { key, permission },
      { cause },
    );
  }

  /** Every version (and delete marker) of `key`, a missing s3:ListBucketVersions named. */
  private async versionsOf(key: string, withMarker = false): Promise<{ key: string; versionId: string }[]> {
    try {
      return await this.versions(key, withMarker);
    } catch (e) {
      if (isDenied(e)) throw this.denied(key, "s3:ListBucketVersions", "list the versions of the object", e);
      throw this.wrap(e, "list the versions of", key);
    }
  }

  /**
   * The retain-until date of one version if it is in the future (a delete marker, or a version
   * written without retention, has none), a missing s3:GetObjectRetention named.
   */
  private async versionLockedUntil(key: string, versionId: string): Promise<Date | undefined> {
    let r;
    try {
      r = await this.client.send(
        new GetObjectRetentionCommand({
          Bucket: this.options.bucket,
          Key: this.key(key),
          VersionId: versionId,
        }),
      );
    } catch (e) {
      const err = e as Error & { $metadata?: { httpStatusCode?: number } };
      if (
        err.name === "NoSuchObjectLockConfiguration" ||
        err.$metadata?.httpStatusCode === 404 ||
        err.name === "MethodNotAllowed"
      )
        return undefined;
      if (isDenied(e))
        throw this.denied(key, "s3:GetObjectRetention", `read the retention of version ${versionId}`, e);
      throw this.wrap(e, "read the retention of", key);
    }
    const until = r.Retention?.RetainUntilDate;
    return until && until > new Date() ? until : undefined;
  }

  async lockedUntil(key: string): Promise<Date | undefined> {
    if (!(await this.lockState(key))) return undefined;
    let latest: Date | undefined;
    for (const { versionId } of await this.versionsOf(key)) {
      const until = await this.versionLockedUntil(key, versionId);
      if (until && (!latest || until > latest)) latest = until;
    }
    return latest;
  }

  async remove(key: string): Promise<void> {
    // with Object Lock the bucket keeps versions: a plain delete would only hide the object behind
    // a delete marker, so each version goes by its id, and the server refuses a locked one
    if (await this.lockState(key)) {
      for (const v of await this.versionsOf(key, true)) {
        try {
          await this.client.send(
            new DeleteObjectCommand({ Bucket: this.options.bucket, Key: v.key, VersionId: v.versionId }),
          );
        } catch (e) {
          throw await this.refusedDelete(key, v, e);
        }
      }
      return;
    }
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.key(key) }));
    } catch (e) {
      const err = this.wrap(e, "remove", key);
      if (err.code !== "NOT_FOUND") throw err;
    }
  }

  /**
   * Why storage refused to delete a version: LOCKED when its retention says so (MinIO answers a
   * locked version with a WORM error, AWS with the same 403 AccessDenied as a missing permission,
   * so a 403 is told apart by reading the version's retention), else a permission error.
   */
  private async refusedDelete(
    key: string,
    v: { key: string; versionId: string },
    e: unknown,
  ): Promise<CrdBackupError> {
    const err = e as Error & { $metadata?: { httpStatusCode?: number } };
    const locked = () =>
      new CrdBackupError(
        "LOCKED",
        `${this.location}/${key}: storage refused the delete (${err.name}: ${err.message})`,
        { key },
      );
    if (/WORM|retention|locked/i.test(err.message)) return locked();
    if (!isDenied(e)) return this.wrap(e, "remove", key);
    const own = this.options.prefix ? v.key.slice(this.options.prefix.length + 1) : v.key;
    if ((await this.versionLockedUntil(own, v.versionId)) !== undefined) return locked();
    return new CrdBackupError(
      "STORAGE",
      `${this.location}/${key}: access denied: not allowed to delete version ${v.versionId} (${err.name}: ${err.message}), which is under no Object Lock retention; the credential needs s3:DeleteObjectVersion (or the version has a legal hold)`,
      { key, permission: "s3:DeleteObjectVersion" },
      { cause: e },
    );
  }

  async cleanupIncomplete(prefix: string, options: { olderThan?: Date } = {}): Promise<number> {
    let removed = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    try {
      do {
        const res = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.options.bucket,
            Prefix: this.key(prefix),
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
        for (const u of res.Uploads ?? []) {
          if (options.olderThan && (!u.Initiated || u.Initiated >= options.olderThan)) continue;
          await this.client.send(
            new AbortMultipartUploadCommand({
              Bucket: this.options.bucket,
              Key: u.Key,
              UploadId: u.UploadId,
            }),
          );
          removed++;
        }
        keyMarker = res.IsTruncated ? res.NextKeyMarker : undefined;
        uploadIdMarker = res.IsTruncated ? res.NextUploadIdMarker : undefined;
      } while (keyMarker);
      removed += await this.cleanupMarked(prefix, options.olderThan);
    } catch (e) {
      throw this.wrap(e, "clean up", prefix);
    }
    return removed;
  }

  /** Uploads found through their markers: the stores that cannot list uploads by prefix need this. */
  private async cleanupMarked(prefix: string, olderThan: Date | undefined): Promise<number> {
    let removed = 0;
    let token: string | undefined;
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.options.bucket,
          Prefix: this.key(prefix),
          ContinuationToken: token,
        }),
      );
      for (const o of res.Contents ?? []) {
        if (!o.Key?.endsWith(UPLOAD_MARK)) continue;
        if (olderThan && (!o.LastModified || o.LastModified >= olderThan)) continue;
        const key = o.Key.slice(0, -UPLOAD_MARK.length);
        const uploads = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.options.bucket, Prefix: key }),
        );
        for (const u of uploads.Uploads ?? []) {
          if (u.Key !== key) continue;
          await this.client.send(
            new AbortMultipartUploadCommand({
              Bucket: this.options.bucket,
              Key: u.Key,
              UploadId: u.UploadId,
            }),
          );
          removed++;
        }
        await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: o.Key }));
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return removed;
  }

  close(): void {
    this.client.destroy();
  }

  private wrap(e: unknown, op: string, key: string): CrdBackupError {
    if (e instanceof CrdBackupError) return e;
    const err = e as Error & { name?: string; $metadata?: { httpStatusCode?: number }; code?: string };
    const where = `${this.location}/${key}`;
    if (err.name === "AbortError") return new CrdBackupError("ABORTED", `${op} ${where}: cancelled`, { key });
    if (err.name === "NoSuchKey" || err.name === "NotFound" || err.$metadata?.httpStatusCode === 404) {
      if (err.name === "NoSuchBucket") {
        return new CrdBackupError("STORAGE", `bucket ${this.options.bucket} does not exist`, { key });
      }
      return new CrdBackupError("NOT_FOUND", `${where} does not exist`, { key });
    }
    // the SDK's messages name the operation and status, never the credentials
    const detail =
      err.code === "ECONNREFUSED"
        ? "connection refused (is the endpoint right and the store up?)"
        : err.message;
    return new CrdBackupError(
      "STORAGE",
      `${op} ${where}: ${err.name ?? "error"}: ${detail}`,
      { key, op },
      { cause: e },
    );
  }
}

/** An S3 access-denied answer (403): a missing permission, or on AWS also a locked version's delete. */
function isDenied(e: unknown): boolean {
  const err = e as Error & { $metadata?: { httpStatusCode?: number } };
  return err.$metadata?.httpStatusCode === 403 || err.name === "AccessDenied";
}

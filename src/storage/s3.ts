import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
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
import { s3Error, type S3Where } from "./s3-errors.ts";
import { S3ObjectLock } from "./s3-lock.ts";

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
  // a plain field, not #private: tests wrap a backend with Object.create to inject faults
  private readonly objectLock: S3ObjectLock;

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
    this.objectLock = new S3ObjectLock({
      client: this.client,
      bucket: options.bucket,
      location: this.location,
      prefix: options.prefix,
      key: (k) => this.key(k),
      uploadMark: UPLOAD_MARK,
      ...(options.retention ? { retention: options.retention } : {}),
    });
  }

  private get where(): S3Where {
    return { location: this.location, bucket: this.options.bucket };
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

  async write(
    key: string,
    body: Readable,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ size: number }> {
    const marker = `${key}${UPLOAD_MARK}`;
    try {
      await this.objectLock.checkRetention();
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
      throw s3Error(e, "write", this.where, key);
    }
    let size = 0;
    body.on("data", (c: Buffer) => (size += c.length));
    // lib-storage buffers at most partSize x queueSize and aborts the multipart upload on error
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.options.bucket, Key: this.key(key), Body: body, ...this.encryption() },
      // S3's smallest part: the least memory, and 10,000 parts still hold a 48 GiB archive
      // (a snapshot's archive takes about 200 bytes per object)
      partSize: this.options.partSize ?? 5 * 1024 * 1024,
      queueSize: this.options.queueSize ?? 2,
      leavePartsOnError: false,
    });
    const onAbort = () => void upload.abort().catch(() => undefined);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    let versionId: string | undefined;
    try {
      versionId = (await upload.done()).VersionId;
    } catch (e) {
      body.destroy();
      throw s3Error(e, "write", this.where, key);
    }
    try {
      // unlocked until this returns; a failure leaves an archive no manifest names, which prune removes
      await this.objectLock.lock(key, versionId, options.signal);
      return { size };
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      // best effort: a marker left behind only makes cleanupIncomplete look for an upload
      await this.remove(marker).catch(() => undefined);
    }
  }

  async createExclusive(key: string, data: Buffer, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.objectLock.checkRetention();
    let versionId: string | undefined;
    try {
      const res = await this.client.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: this.key(key),
          Body: data,
          IfNoneMatch: "*", // conditional create: never overwrite a snapshot's manifest
          ContentType: "application/json",
          ...this.encryption(),
        }),
        { abortSignal: options.signal },
      );
      versionId = res.VersionId;
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412 || status === 409) {
        throw new CrdBackupError("ALREADY_EXISTS", `${this.location}/${key} already exists`, { key });
      }
      throw s3Error(e, "write", this.where, key);
    }
    // the object that precedes it (a snapshot's archive) was locked the same way a moment ago
    await this.objectLock.lock(key, versionId, options.signal);
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
      throw s3Error(e, "read", this.where, key);
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    try {
      const res = await this.client.send(
        new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.key(key) }),
      );
      return { size: res.ContentLength ?? 0 };
    } catch (e) {
      const err = s3Error(e, "stat", this.where, key);
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
        throw s3Error(e, "list", this.where, prefix);
      }
      for (const o of res.Contents ?? []) {
        if (o.Key && !o.Key.endsWith(UPLOAD_MARK)) yield { key: o.Key.slice(strip), size: o.Size ?? 0 };
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  lockedUntil(key: string): Promise<Date | undefined> {
    return this.objectLock.lockedUntil(key);
  }

  async remove(key: string): Promise<void> {
    // with Object Lock the bucket keeps versions: a plain delete would only hide the object behind
    // a delete marker, so each version goes by its id, and the server refuses a locked one
    if (await this.objectLock.lockState(key)) {
      for (const v of await this.objectLock.versionsOf(key, true)) {
        try {
          await this.client.send(
            new DeleteObjectCommand({ Bucket: this.options.bucket, Key: v.key, VersionId: v.versionId }),
          );
        } catch (e) {
          throw await this.objectLock.refusedDelete(key, v, e);
        }
      }
      return;
    }
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.key(key) }));
    } catch (e) {
      const err = s3Error(e, "remove", this.where, key);
      if (err.code !== "NOT_FOUND") throw err;
    }
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
          await this.abortUpload(u);
          removed++;
        }
        keyMarker = res.IsTruncated ? res.NextKeyMarker : undefined;
        uploadIdMarker = res.IsTruncated ? res.NextUploadIdMarker : undefined;
      } while (keyMarker);
      removed += await this.cleanupMarked(prefix, options.olderThan);
    } catch (e) {
      throw s3Error(e, "clean up", this.where, prefix);
    }
    return removed;
  }

  private async abortUpload(u: { Key?: string | undefined; UploadId?: string | undefined }): Promise<void> {
    await this.client.send(
      new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: u.Key, UploadId: u.UploadId }),
    );
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
          await this.abortUpload(u);
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
}

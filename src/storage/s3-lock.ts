/**
 * S3 Object Lock for one location: whether the bucket has it, locking what was just written, and
 * telling a locked version apart from a missing permission when reading or deleting. A refused
 * lock read is an error naming the permission, never "no lock": a plain delete would then only
 * hide a locked object behind a delete marker and be reported as a removal.
 */
import {
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  ListObjectVersionsCommand,
  PutObjectRetentionCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { CrdBackupError } from "../errors.ts";
import type { ObjectLockRetention } from "./lock.ts";
import { isDenied, s3Error, type S3Where } from "./s3-errors.ts";

/** What the lock needs of its backend: the client, where keys live, and the retention to set. */
export interface S3LockPlace extends S3Where {
  client: S3Client;
  prefix: string;
  key(key: string): string;
  uploadMark: string;
  retention?: ObjectLockRetention;
}

export class S3ObjectLock {
  readonly place: S3LockPlace;
  /** Whether the bucket has Object Lock enabled (undefined: not allowed to ask), asked once. */
  #enabled: Promise<boolean | undefined> | undefined;

  constructor(place: S3LockPlace) {
    this.place = place;
  }

  lockEnabled(): Promise<boolean | undefined> {
    this.#enabled ??= this.place.client
      .send(new GetObjectLockConfigurationCommand({ Bucket: this.place.bucket }))
      .then((r) => r.ObjectLockConfiguration?.ObjectLockEnabled === "Enabled")
      .catch((e: unknown) => {
        const err = e as Error & { $metadata?: { httpStatusCode?: number } };
        // no configuration, or a store without Object Lock at all: nothing can be locked
        if (err.name === "ObjectLockConfigurationNotFoundError") return false;
        if (err.name === "NotImplemented" || err.$metadata?.httpStatusCode === 501) return false;
        if (err.$metadata?.httpStatusCode === 403) return undefined;
        this.#enabled = undefined; // an outage: ask again next time
        throw s3Error(e, "read the Object Lock configuration of", this.place, "");
      });
    return this.#enabled;
  }

  /**
   * Checked before the first write: a bucket without Object Lock is refused, since a --retain that
   * silently locked nothing would be worse than none.
   */
  async checkRetention(): Promise<void> {
    const r = this.place.retention;
    if (!r) return;
    const enabled = await this.lockEnabled();
    if (enabled !== true) {
      throw new CrdBackupError(
        "CONFIG",
        enabled === false
          ? `--retain ${r.duration}: bucket ${this.place.bucket} does not have Object Lock enabled (it can only be enabled when the bucket is created); nothing was written`
          : `--retain ${r.duration}: not allowed to read the Object Lock configuration of bucket ${this.place.bucket} (s3:GetBucketObjectLockConfiguration); nothing was written`,
      );
    }
  }

  /**
   * Locks the version just written, with its own PutObjectRetention request rather than headers on
   * the write: only then does every S3 (MinIO included) evaluate the policy conditions
   * s3:object-lock-remaining-retention-days and s3:object-lock-mode, which is how
   * docs/security.md caps what a stolen job credential can lock.
   */
  async lock(key: string, versionId: string | undefined, signal?: AbortSignal): Promise<void> {
    const r = this.place.retention;
    if (!r) return;
    try {
      await this.place.client.send(
        new PutObjectRetentionCommand({
          Bucket: this.place.bucket,
          Key: this.place.key(key),
          VersionId: versionId,
          Retention: { Mode: r.mode, RetainUntilDate: r.until(new Date()) },
        }),
        { abortSignal: signal },
      );
    } catch (e) {
      throw s3Error(e, `lock (--retain ${r.duration}, ${r.mode.toLowerCase()})`, this.place, key);
    }
  }

  /**
   * Every version and delete marker of exactly `key` (a versioned bucket keeps them all), and with
   * `withMarker` of its upload marker too (a write with credentials that may not delete leaves it).
   */
  async #versions(key: string, withMarker = false): Promise<{ key: string; versionId: string }[]> {
    const out: { key: string; versionId: string }[] = [];
    const wanted = new Set([
      this.place.key(key),
      ...(withMarker ? [this.place.key(key) + this.place.uploadMark] : []),
    ]);
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    do {
      const res = await this.place.client.send(
        new ListObjectVersionsCommand({
          Bucket: this.place.bucket,
          Prefix: this.place.key(key),
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
  async lockState(key: string): Promise<boolean> {
    const enabled = await this.lockEnabled();
    if (enabled === undefined)
      throw this.#denied(
        key,
        "s3:GetBucketObjectLockConfiguration",
        `read the Object Lock configuration of bucket ${this.place.bucket}`,
      );
    return enabled;
  }

  /**
   * A permission error: what could not be done and which permission that needs, for `key`. Not
   * LOCKED: nothing says storage would keep the object, only that this credential may not look.
   */
  #denied(key: string, permission: string, what: string, cause?: unknown): CrdBackupError {
    const err = cause as Error | undefined;
    const detail = err === undefined ? "" : ` (${err.name}: ${err.message})`;
    return new CrdBackupError(
      "STORAGE",
      `${this.place.location}/${key}: access denied: not allowed to ${what}${detail}; the credential needs ${permission} to tell whether the object is under Object Lock (it was not removed)`,
      { key, permission },
      { cause },
    );
  }

  /** Every version (and delete marker) of `key`, a missing s3:ListBucketVersions named. */
  async versionsOf(key: string, withMarker = false): Promise<{ key: string; versionId: string }[]> {
    try {
      return await this.#versions(key, withMarker);
    } catch (e) {
      if (isDenied(e)) throw this.#denied(key, "s3:ListBucketVersions", "list the versions of the object", e);
      throw s3Error(e, "list the versions of", this.place, key);
    }
  }

  /**
   * The retain-until date of one version if it is in the future (a delete marker, or a version
   * written without retention, has none), a missing s3:GetObjectRetention named.
   */
  async versionLockedUntil(key: string, versionId: string): Promise<Date | undefined> {
    let r;
    try {
      r = await this.place.client.send(
        new GetObjectRetentionCommand({
          Bucket: this.place.bucket,
          Key: this.place.key(key),
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
        throw this.#denied(key, "s3:GetObjectRetention", `read the retention of version ${versionId}`, e);
      throw s3Error(e, "read the retention of", this.place, key);
    }
    const until = r.Retention?.RetainUntilDate;
    return until && until > new Date() ? until : undefined;
  }

  /**
   * Why storage refused to delete a version: LOCKED when its retention says so (MinIO answers a
   * locked version with a WORM error, AWS with the same 403 AccessDenied as a missing permission,
   * so a 403 is told apart by reading the version's retention), else a permission error.
   */
  async refusedDelete(
    key: string,
    v: { key: string; versionId: string },
    e: unknown,
  ): Promise<CrdBackupError> {
    const err = e as Error & { $metadata?: { httpStatusCode?: number } };
    const locked = () =>
      new CrdBackupError(
        "LOCKED",
        `${this.place.location}/${key}: storage refused the delete (${err.name}: ${err.message})`,
        { key },
      );
    if (/WORM|retention|locked/i.test(err.message)) return locked();
    if (!isDenied(e)) return s3Error(e, "remove", this.place, key);
    const own = this.place.prefix ? v.key.slice(this.place.prefix.length + 1) : v.key;
    if ((await this.versionLockedUntil(own, v.versionId)) !== undefined) return locked();
    return new CrdBackupError(
      "STORAGE",
      `${this.place.location}/${key}: access denied: not allowed to delete version ${v.versionId} (${err.name}: ${err.message}), which is under no Object Lock retention; the credential needs s3:DeleteObjectVersion (or the version has a legal hold)`,
      { key, permission: "s3:DeleteObjectVersion" },
      { cause: e },
    );
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
}

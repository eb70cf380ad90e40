import { Option, type Command } from "commander";
import { CrdBackupError } from "../src/errors.ts";
import { KubeClient } from "../src/kube/client.ts";
import { loadKubeConfig } from "../src/kube/config.ts";
import { createLogger, type Logger, type LogLevel } from "../src/report/log.ts";
import { splitList, validateSelector, type Filters } from "../src/objects/filters.ts";
import { isEmptyPolicy, type RetentionPolicy } from "../src/retention/policy.ts";
import { durationBefore } from "../src/units/duration.ts";
import type { StorageBackend } from "../src/storage/backend.ts";
import { openStorage } from "../src/storage/location.ts";
import { parseRetention, type ObjectLockRetention } from "../src/storage/lock.ts";
import {
  IDENTITY_FILE_ENV,
  RECIPIENTS_ENV,
  resolveIdentities,
  resolveRecipients,
  type Identities,
  type Recipients,
} from "../src/crypto/keys.ts";
import { withIdentities } from "../src/crypto/keyring.ts";
import { addSignOptions, withTrustedSigners, type SignFlags, type TrustFlags } from "./signing.ts";
import type { JsonObject } from "../src/json/json.ts";
import type { Metric } from "../src/report/metrics.ts";
import { serveMetrics } from "../src/schedule/metrics-server.ts";
import type { SnapshotOptions } from "../src/snapshot/take.ts";

/** Flags every command shares, as commander hands them over. */
export interface CommonFlags {
  output: "text" | "json";
  logLevel: LogLevel;
}

export interface KubeFlags {
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean; // standby's --target-in-cluster: the pod's service account only
  qps: number;
  burst: number;
  requestTimeout: number;
}

export interface StorageFlags {
  storage?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  s3Sse?: "AES256" | "aws:kms";
  s3SseKmsKeyId?: string;
  s3Checksums: "when_required" | "when_supported";
}

export interface FilterFlags {
  includeGroups?: string[];
  excludeGroups?: string[];
  includeResources?: string[];
  excludeResources?: string[];
  includeNamespaces?: string[];
  excludeNamespaces?: string[];
  selector?: string;
  /** `--name` (restore, export, diff, drill): object name globs. */
  name?: string[];
}

export function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new CrdBackupError("USAGE", `${name} must be a whole number >= 1, not "${value}"`);
    return n;
  };
}

function nonNegative(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0)
      throw new CrdBackupError("USAGE", `${name} must be a number >= 0, not "${value}"`);
    return n;
  };
}

/** A repeatable flag's values, in the order given. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

export function addCommonOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .addOption(
      new Option("--log-level <level>", "log detail on stderr")
        .choices(["debug", "info", "warn", "error"])
        .default("info"),
    );
}

export function addKubeOptions(cmd: Command): Command {
  return cmd
    .option(
      "--kubeconfig <path>",
      "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account)",
    )
    .option("--context <name>", "kubeconfig context (default: the current context)")
    .option(
      "--qps <n>",
      "explicit cap on API requests per second (0, the default: none; flow control adapts to the server)",
      nonNegative("--qps"),
      0,
    )
    .option("--burst <n>", "requests allowed at once above --qps", positiveInt("--burst"), 100)
    .option(
      "--request-timeout <seconds>",
      "time limit for one API request",
      positiveInt("--request-timeout"),
      60,
    );
}

export function addStorageOptions(cmd: Command): Command {
  return cmd
    .option(
      "--storage <location>",
      "s3://bucket/prefix, file://path or a path (default: $CRD_BACKUP_STORAGE or ./crd-backups)",
    )
    .option(
      "--s3-endpoint <url>",
      "S3-compatible endpoint (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, or AWS)",
    )
    .option("--s3-region <region>", "S3 region (default: $AWS_REGION or us-east-1)")
    .option("--s3-path-style", "path-style bucket addressing (default: on when an endpoint is set)")
    .option("--no-s3-path-style", "virtual-hosted bucket addressing")
    .addOption(new Option("--s3-sse <mode>", "server-side encryption").choices(["AES256", "aws:kms"]))
    .option("--s3-sse-kms-key-id <id>", "KMS key for --s3-sse aws:kms")
    .addOption(
      new Option("--s3-checksums <when>", "when to send S3 request checksums")
        .choices(["when_required", "when_supported"])
        .default("when_required"),
    );
}

export function addFilterOptions(cmd: Command): Command {
  return cmd
    .option("--include-groups <globs>", "only these API groups (comma-separated globs, repeatable)", collect)
    .option("--exclude-groups <globs>", "skip these API groups", collect)
    .option("--include-resources <globs>", "only these resources: plural.group or plural (globs)", collect)
    .option("--exclude-resources <globs>", "skip these resources", collect)
    .option(
      "--include-namespaces <globs>",
      "only objects in these namespaces (cluster-scoped objects are kept)",
      collect,
    )
    .option("--exclude-namespaces <globs>", "skip objects in these namespaces", collect)
    .option("-l, --selector <selector>", "only objects matching this label selector");
}

export interface RetentionFlags {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  keepWithin?: string;
}

/** restic's --keep-* flags (src/retention/policy.ts has the semantics). */
export function addRetentionOptions(cmd: Command): Command {
  return cmd
    .option("--keep-last <n>", "keep the newest n snapshots", positiveInt("--keep-last"))
    .option(
      "--keep-hourly <n>",
      "keep the newest snapshot of each of the last n hours that have one",
      positiveInt("--keep-hourly"),
    )
    .option("--keep-daily <n>", "... of each of the last n days (UTC)", positiveInt("--keep-daily"))
    .option("--keep-weekly <n>", "... of each of the last n ISO weeks", positiveInt("--keep-weekly"))
    .option("--keep-monthly <n>", "... of each of the last n months", positiveInt("--keep-monthly"))
    .option("--keep-yearly <n>", "... of each of the last n years", positiveInt("--keep-yearly"))
    .option(
      "--keep-within <duration>",
      "keep every snapshot within this of the newest, e.g. 36h, 7d, 2w, 1y6m",
    );
}

/** The policy the flags give, or undefined when none was given. */
export function retentionFrom(flags: RetentionFlags): RetentionPolicy | undefined {
  const policy: RetentionPolicy = {
    last: flags.keepLast,
    hourly: flags.keepHourly,
    daily: flags.keepDaily,
    weekly: flags.keepWeekly,
    monthly: flags.keepMonthly,
    yearly: flags.keepYearly,
    within: flags.keepWithin,
  };
  if (isEmptyPolicy(policy)) return undefined;
  if (policy.within !== undefined) durationBefore(policy.within, new Date()); // a bad duration is a usage error now, not after the snapshot
  return policy;
}

export function filtersFrom(flags: FilterFlags): Filters {
  return {
    includeGroups: splitList(flags.includeGroups),
    excludeGroups: splitList(flags.excludeGroups),
    includeResources: splitList(flags.includeResources),
    excludeResources: splitList(flags.excludeResources),
    includeNamespaces: splitList(flags.includeNamespaces),
    excludeNamespaces: splitList(flags.excludeNamespaces),
    selector: validateSelector(flags.selector),
    ...(flags.name ? { names: splitList(flags.name) } : {}),
  };
}

export interface EncryptionFlags {
  encryptTo?: string[];
  encryptToFile?: string[];
}

/** Who snapshots are encrypted to (docs/format.md, "Encryption"): public keys only. */
export function addEncryptionOptions(cmd: Command): Command {
  return cmd
    .option(
      "--encrypt-to <recipient>",
      `encrypt to this age recipient (age1… or age1pq1…; repeatable; also $${RECIPIENTS_ENV}, comma-separated)`,
      collect,
    )
    .option(
      "--encrypt-to-file <file>",
      "encrypt to the recipients in this file (one per line, # comments)",
      collect,
    );
}

/** The recipients from the flags and $CRD_BACKUP_ENCRYPT_TO; undefined: no encryption. */
export function recipientsFrom(flags: EncryptionFlags): Promise<Recipients | undefined> {
  return resolveRecipients({
    encryptTo: flags.encryptTo,
    encryptToFiles: flags.encryptToFile,
    env: process.env[RECIPIENTS_ENV],
  });
}

export interface IdentityFlags {
  identity?: string[];
}

/** The keys that decrypt, for commands that read content. */
export function addIdentityOptions(cmd: Command): Command {
  return cmd.option(
    "--identity <file>",
    `age identity file that decrypts encrypted snapshots (repeatable; also $${IDENTITY_FILE_ENV})`,
    collect,
  );
}

export function identitiesFrom(flags: IdentityFlags): Promise<Identities | undefined> {
  return resolveIdentities(flags.identity, process.env[IDENTITY_FILE_ENV]);
}

/** Storage with the identities and the trusted signers attached, for every command that reads snapshot content. */
export async function contentStorageFrom(
  flags: StorageFlags & IdentityFlags & TrustFlags,
): Promise<StorageBackend> {
  const keys = await identitiesFrom(flags);
  return withTrustedSigners(withIdentities(await storageFrom(flags), keys), flags);
}

export interface ObjectLockFlags {
  retain?: string;
  retentionMode: string;
}

/** S3 Object Lock on every object written (src/storage/lock.ts). */
export function addObjectLockOptions(cmd: Command): Command {
  return cmd
    .option(
      "--retain <duration>",
      "S3 Object Lock: keep every object written from deletion for this long, e.g. 30d, 12h, 1y (or plain seconds)",
    )
    .addOption(
      new Option(
        "--retention-mode <mode>",
        "Object Lock mode (compliance: not even the root user can delete)",
      )
        .choices(["governance", "compliance"])
        .default("governance"),
    );
}

export function objectLockFrom(flags: Partial<ObjectLockFlags>): ObjectLockRetention | undefined {
  return flags.retain === undefined ? undefined : parseRetention(flags.retain, flags.retentionMode);
}

export function storageFrom(flags: StorageFlags & Partial<ObjectLockFlags>): Promise<StorageBackend> {
  if (flags.s3SseKmsKeyId && flags.s3Sse !== "aws:kms") {
    throw new CrdBackupError("USAGE", "--s3-sse-kms-key-id needs --s3-sse aws:kms");
  }
  return openStorage(flags.storage, {
    endpoint: flags.s3Endpoint,
    region: flags.s3Region,
    forcePathStyle: flags.s3PathStyle,
    serverSideEncryption: flags.s3Sse,
    kmsKeyId: flags.s3SseKmsKeyId,
    checksums: flags.s3Checksums,
    retention: objectLockFrom(flags),
  });
}

export async function kubeClientFrom(flags: KubeFlags, maxSockets: number): Promise<KubeClient> {
  return KubeClient.create(loadKubeConfig(flags), {
    qps: flags.qps,
    burst: flags.burst,
    timeoutMs: flags.requestTimeout * 1000,
    maxSockets,
  });
}

export function loggerFrom(flags: CommonFlags): Logger {
  return createLogger({ level: flags.logLevel });
}

/** The flags snapshot, schedule and record take snapshots with (record: its bases and re-lists). */
export interface SnapshotFlags extends FilterFlags, EncryptionFlags {
  pageSize: number;
  concurrency: number;
}

/** How a snapshot lists: --page-size and --concurrency. */
export function addListOptions(cmd: Command): Command {
  return cmd
    .option("--page-size <n>", "objects per list call", positiveInt("--page-size"), 500)
    .option("--concurrency <n>", "resources listed at once", positiveInt("--concurrency"), 4);
}

/** What the flags give a snapshot, and what its manifest records of them. */
export interface SnapshotFlagOptions extends Pick<
  SnapshotOptions,
  "filters" | "pageSize" | "concurrency" | "encryptTo"
> {
  recordedOptions: JsonObject;
}

/**
 * The snapshot options of snapshot, schedule and record (src/snapshot/take.ts; record's options
 * share them): the filters, then the recipients, checked in this order. The manifest records the
 * page size, the concurrency and the filters, then `recorded`, the command's own (schedule's cron,
 * record's intervals).
 */
export async function snapshotOptionsFrom(
  flags: SnapshotFlags,
  recorded: JsonObject = {},
): Promise<SnapshotFlagOptions> {
  const filters = filtersFrom(flags);
  const encryptTo = await recipientsFrom(flags);
  const { pageSize, concurrency } = flags;
  return {
    filters,
    pageSize,
    concurrency,
    encryptTo,
    recordedOptions: {
      pageSize,
      concurrency,
      filters: { ...filters, selector: filters.selector ?? null },
      ...recorded,
    },
  };
}

/** The flags of a snapshot job, a snapshot then retention (src/schedule/job.ts): snapshot's and schedule's. */
export type SnapshotJobFlags = CommonFlags &
  KubeFlags &
  StorageFlags &
  ObjectLockFlags &
  RetentionFlags &
  SnapshotFlags &
  SignFlags;

/** A snapshot job's flags but --page-size and --concurrency (addListOptions), in their help order. */
export function addSnapshotJobOptions(cmd: Command): Command {
  addKubeOptions(cmd);
  addStorageOptions(cmd);
  addFilterOptions(cmd);
  addCommonOptions(cmd);
  addRetentionOptions(cmd);
  addEncryptionOptions(cmd);
  addSignOptions(cmd);
  return addObjectLockOptions(cmd);
}

/** --metrics-addr: serves the metrics there and logs the URL; undefined without the flag. */
export async function metricsServerFrom(
  flags: { metricsAddr?: string },
  log: Logger,
  metrics: () => Metric[],
): Promise<{ address: string; close: () => Promise<void> } | undefined> {
  if (!flags.metricsAddr) return undefined;
  const server = await serveMetrics(flags.metricsAddr, metrics);
  log.info("serving metrics", { url: `http://${server.address}/metrics` });
  return server;
}

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import https from "node:https";
import path from "node:path";
import { S3Client, ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { expectedArchive, plainManifest } from "../../src/archive/manifest.ts";
import { readArchive } from "../../src/archive/reader.ts";
import type { Manifest } from "../../src/archive/manifest.ts";
import { S3Backend } from "../../src/storage/s3.ts";
import { openArchive, resolveSnapshot } from "../../src/storage/snapshots.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import type { EnvironmentInfo, S3Settings } from "../env/environment.ts";
import type { FaultProxy } from "../env/fault-proxy.ts";
import { createCrd, createNamespace, mapConcurrent, waitForCrdEstablished } from "./cluster.ts";

/** What a plain client saw: the status and headers if any came, the bytes that came, and the error that ended it. */
export interface RawAnswer {
  status?: number;
  headers?: Record<string, string | string[] | undefined>;
  body: string;
  error?: string;
}

/** One HTTPS request as the environment's admin (client certificate), with no retries: what the wire says. */
export function adminRequest(
  env: EnvironmentInfo,
  url: string,
  options: { timeoutMs?: number; method?: string } = {},
): Promise<RawAnswer> {
  const pki = (f: string) => readFileSync(path.join(env.rootDir, "pki", f));
  return new Promise((resolve) => {
    const answer: RawAnswer = { body: "" };
    const req = https.request(
      url,
      {
        method: options.method ?? "GET",
        ca: pki("ca.crt"),
        cert: pki("admin.crt"),
        key: pki("admin.key"),
        agent: false,
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        answer.status = res.statusCode;
        answer.headers = res.headers;
        res.on("data", (c: Buffer) => (answer.body += c.toString("utf8")));
        res.on("error", (e: Error & { code?: string }) => resolve({ ...answer, error: e.code ?? e.message }));
        res.on("end", () => resolve(answer));
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
    req.on("error", (e: Error & { code?: string }) => resolve({ ...answer, error: e.code ?? e.message }));
    req.end();
  });
}

export function s3Client(s3: S3Settings, maxAttempts = 3): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    maxAttempts,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}

export function s3Backend(s3: S3Settings, prefix: string): S3Backend {
  return new S3Backend({
    bucket: s3.bucket,
    prefix,
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}

/**
 * Multipart uploads still open for these keys. By exact key: MinIO lists multipart uploads only
 * for a prefix that is a whole object key (a shorter prefix finds none), so a check by prefix
 * would pass whatever was left behind.
 */
export async function openUploads(s3: S3Settings, keys: string[]): Promise<string[]> {
  const client = s3Client(s3);
  try {
    const open: string[] = [];
    for (const key of keys) {
      const res = await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: key }));
      for (const u of res.Uploads ?? []) if (u.Key === key) open.push(`${key} (${u.UploadId})`);
    }
    return open;
  } finally {
    client.destroy();
  }
}

/** The keys a proxy saw multipart uploads started for (CreateMultipartUpload: POST ?uploads). */
export function multipartKeys(proxy: FaultProxy, bucket: string): string[] {
  return proxy
    .seen({ method: "POST", query: (q) => q.has("uploads") })
    .map((r) => decodeURIComponent(r.path.slice(`/${bucket}/`.length)));
}

export interface ArchiveContent {
  manifest: Manifest;
  /** entry name -> the SHA-256 of its body, from the verified index: what the snapshot holds. */
  entries: Map<string, string>;
  /** Entries seen more than once (the format forbids it; a retry bug could cause it). */
  duplicates: string[];
}

/** Reads and verifies a snapshot's archive, returning each CRD, namespace and object entry's checksum. */
export async function archiveContent(s3: S3Settings, prefix: string, id: string): Promise<ArchiveContent> {
  const storage = s3Backend(s3, prefix);
  try {
    const manifest = plainManifest((await resolveSnapshot(storage, id)).manifest);
    const entries = new Map<string, string>();
    const duplicates: string[] = [];
    for await (const e of readArchive(
      await openArchive(storage, id, manifest.formatVersion),
      expectedArchive(manifest),
    )) {
      if (e.kind !== "crd" && e.kind !== "namespace" && e.kind !== "object") continue;
      if (entries.has(e.name)) duplicates.push(e.name);
      entries.set(e.name, e.record.sha256);
    }
    return { manifest, entries, duplicates };
  } finally {
    storage.close();
  }
}

/**
 * A CRD of opaque blobs and `count` instances of about `bytes` each, of random (incompressible)
 * text: enough of them make an archive larger than one multipart part (8 MiB), so a snapshot
 * really uploads in parts.
 */
export async function loadBlobs(
  admin: KubeClient,
  options: { group: string; namespace: string; count: number; bytes: number },
): Promise<void> {
  const { group, namespace } = options;
  await createCrd(admin, {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `blobs.${group}` },
    spec: {
      group,
      scope: "Namespaced",
      names: { plural: "blobs", singular: "blob", kind: "Blob", listKind: "BlobList" },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        },
      ],
    },
  });
  await waitForCrdEstablished(admin, `blobs.${group}`);
  await createNamespace(admin, namespace);
  await mapConcurrent(
    Array.from({ length: options.count }, (_, i) => `blob-${String(i).padStart(3, "0")}`),
    4,
    (name) =>
      admin.request({
        method: "POST",
        path: `/apis/${group}/v1/namespaces/${namespace}/blobs`,
        body: JSON.stringify({
          apiVersion: `${group}/v1`,
          kind: "Blob",
          metadata: { name },
          data: randomBytes(Math.ceil((options.bytes * 3) / 4)).toString("base64"),
        }),
      }),
  );
}

import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import https from "node:https";
import { Readable } from "node:stream";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { kubeconfigForIdentity } from "../env/identity.ts";
import {
  adminClient,
  clientFor,
  createCrd,
  createNamespace,
  mapConcurrent,
  testEnv,
  uniqueName,
  waitForCrdEstablished,
} from "../support/cluster.ts";

describe("the test environment's kube-apiserver", () => {
  const group = `${uniqueName("envtest")}.crd-backup.io`;
  const plural = "widgets";
  const namespaces = [uniqueName("env-a"), uniqueName("env-b"), uniqueName("env-c")];
  let admin: KubeClient;

  beforeAll(async () => {
    admin = await adminClient();
  });
  afterAll(() => admin.close());

  it("serves a CRD once it is Established, and pages 1,000 instances cluster-wide by continue token", async () => {
    await createCrd(admin, {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: `${plural}.${group}` },
      spec: {
        group,
        scope: "Namespaced",
        names: { plural, singular: "widget", kind: "Widget", listKind: "WidgetList" },
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
    await waitForCrdEstablished(admin, `${plural}.${group}`);
    for (const ns of namespaces) await createNamespace(admin, ns);

    const names = Array.from({ length: 1000 }, (_, i) => `w-${String(i).padStart(4, "0")}`);
    await mapConcurrent(names, 16, (name) => {
      const namespace = namespaces[Number(name.slice(2)) % namespaces.length]!;
      return admin.request({
        method: "POST",
        path: `/apis/${group}/v1/namespaces/${namespace}/${plural}`,
        body: JSON.stringify({
          apiVersion: `${group}/v1`,
          kind: "Widget",
          metadata: { name, namespace },
          spec: { n: 1 },
        }),
      });
    });

    const seen = new Set<string>();
    const tokens: string[] = [];
    let pages = 0;
    let token: string | undefined;
    do {
      const res = await admin.request({
        path: `/apis/${group}/v1/${plural}`,
        query: { limit: 100, continue: token },
      });
      const list = JSON.parse(res.text) as {
        metadata: { continue?: string };
        items: { metadata: { name: string; namespace: string } }[];
      };
      pages++;
      expect(list.items.length).toBe(100);
      for (const o of list.items) seen.add(`${o.metadata.namespace}/${o.metadata.name}`);
      token = list.metadata.continue || undefined;
      if (token) tokens.push(token);
    } while (token);

    expect(pages).toBe(10);
    expect(tokens).toHaveLength(9);
    expect(new Set(tokens).size).toBe(9);
    expect(seen.size).toBe(1000);
  });

  it("enforces RBAC: an identity without list permission gets 403", async () => {
    const env = testEnv();
    const kubeconfig = await kubeconfigForIdentity(env, admin, uniqueName("no-list"), [
      { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: ["get"] },
    ]);
    const limited = await clientFor(kubeconfig);
    try {
      const err = await limited
        .request({ path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions" })
        .catch((e) => e);
      expect(err).toBeInstanceOf(KubeApiError);
      expect((err as KubeApiError).status).toBe(403);
      expect((err as KubeApiError).reason).toBe("Forbidden");
      // what the role does allow still works, so the 403 is RBAC, not a broken identity
      await expect(
        limited.request({ path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}` }),
      ).resolves.toMatchObject({ status: 200 });
    } finally {
      limited.close();
    }
  });
});

describe("the test environment's MinIO", () => {
  it("takes a 20 MiB streamed multipart upload of unknown length and reads it back byte-identical", async () => {
    const { s3 } = testEnv();
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const total = 20 * 1024 * 1024;
    const sent = createHash("sha256");
    let produced = 0;
    // a generator, not a buffer: the SDK sees a stream with no known length, as a snapshot upload does
    const body = Readable.from(
      (function* () {
        while (produced < total) {
          const chunk = randomBytes(Math.min(1024 * 1024 - 7, total - produced));
          produced += chunk.length;
          sent.update(chunk);
          yield chunk;
        }
      })(),
    );
    const key = `${uniqueName("env-upload")}.bin`;
    const upload = new Upload({
      client,
      params: { Bucket: s3.bucket, Key: key, Body: body },
      partSize: 5 * 1024 * 1024,
      queueSize: 2,
    });
    let parts = 0;
    upload.on("httpUploadProgress", (p) => (parts = Math.max(parts, p.part ?? 0)));
    await upload.done();
    expect(parts).toBeGreaterThanOrEqual(4);

    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    const received = createHash("sha256");
    let length = 0;
    for await (const chunk of got.Body as Readable) {
      received.update(chunk as Buffer);
      length += (chunk as Buffer).length;
    }
    expect(length).toBe(total);
    expect(received.digest("hex")).toBe(sent.digest("hex"));
    client.destroy();
  });
});

describe("the test environment's kube-apiserver version", () => {
  interface Version {
    major: string;
    minor: string;
    gitVersion: string;
    gitTreeState: string;
  }

  it("/version, as curl sees it without credentials, reports the release it was built from (v1.36.x), as release binaries do", async () => {
    const env = testEnv();
    // anonymous, like `curl --cacert ca.crt https://.../version`: system:public-info-viewer allows it
    const anonymous = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
      https
        .get(`${env.apiServer}/version`, { ca: readFileSync(env.caCert) }, (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (c: string) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode, body }));
        })
        .on("error", reject);
    });
    expect(anonymous.status).toBe(200);
    const version = JSON.parse(anonymous.body) as Version;
    expect(version.gitVersion).toMatch(/^v1\.36\.\d+$/);
    expect(version.major).toBe("1");
    expect(version.minor).toBe("36");
    expect(version.gitTreeState).toBe("clean");

    // and what an authenticated client reads is the same
    const admin = await adminClient();
    try {
      expect(JSON.parse((await admin.request({ path: "/version" })).text)).toEqual(version);
    } finally {
      admin.close();
    }
  });
});

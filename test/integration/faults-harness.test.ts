import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApiError } from "../../src/errors.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import type { EnvironmentInfo } from "../env/environment.ts";
import { startReplica, startServer, stopServer } from "../env/environment.ts";
import { kubeProxy, kubeconfigThrough, s3Proxy, s3Through, type FaultProxy } from "../env/fault-proxy.ts";
import { kubeconfigForIdentity } from "../env/identity.ts";
import { adminClient, clientFor, createNamespace, testEnv, uniqueName } from "../support/cluster.ts";
import { adminRequest, s3Client } from "../support/faults.ts";

// The fault proxy and the server restarts, observed by plain clients (no retries): each fault is
// what the wire shows, so the product tests that rely on them test what they claim.

describe("fault proxy in front of the kube-apiserver", () => {
  let env: EnvironmentInfo;
  let proxy: FaultProxy;
  let admin: KubeClient;

  beforeAll(async () => {
    env = testEnv();
    proxy = await kubeProxy(env);
    admin = await adminClient();
  });
  afterAll(async () => {
    admin.close();
    await proxy.close();
  });

  it("forwards as the admin (client certificate) and records the request", async () => {
    const client = await clientFor(kubeconfigThrough(proxy, env));
    try {
      const res = await client.request({ path: "/api/v1/namespaces/kube-system" });
      expect(JSON.parse(res.text)).toMatchObject({ kind: "Namespace", metadata: { name: "kube-system" } });
    } finally {
      client.close();
    }
    expect(proxy.seen({ path: /^\/api\/v1\/namespaces\/kube-system$/ })).toEqual([
      expect.objectContaining({ method: "GET", status: 200, done: true }),
    ]);
    expect(proxy.requests.every((r) => r.fault === undefined)).toBe(true);
  });

  it("keeps a bearer token's own identity: RBAC still refuses what it may not do", async () => {
    const kubeconfig = await kubeconfigForIdentity(env, admin, uniqueName("proxied-nobody"), []);
    const client = await clientFor(kubeconfigThrough(proxy, env, kubeconfig));
    try {
      const err = await client.request({ path: "/api/v1/namespaces/kube-system" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KubeApiError);
      expect((err as KubeApiError).status).toBe(403);
      expect((err as KubeApiError).message).toContain("system:serviceaccount:");
    } finally {
      client.close();
    }
  });

  it("429 with Retry-After for the first request only; the next is forwarded", async () => {
    const rule = proxy.add({
      method: "GET",
      path: /^\/api\/v1\/namespaces\/default$/,
      count: { first: 1 },
      fault: { kind: "status", status: 429, retryAfterSeconds: 2 },
    });
    const url = `${proxy.url}/api/v1/namespaces/default`;
    const first = await adminRequest(env, url);
    expect(first.status).toBe(429);
    expect(first.headers?.["retry-after"]).toBe("2");
    expect(JSON.parse(first.body)).toMatchObject({ kind: "Status", code: 429, reason: "TooManyRequests" });
    expect((await adminRequest(env, url)).status).toBe(200);
    expect(rule).toMatchObject({ matched: 2, injected: 1 });
    expect(proxy.seen({ path: /^\/api\/v1\/namespaces\/default$/ }).map((r) => [r.status, r.fault])).toEqual([
      [429, "status"],
      [200, undefined],
    ]);
    proxy.clearRules();
  });

  it("503 on every second request, 500 on every third", async () => {
    proxy.add({ path: /^\/version$/, count: { every: 2 }, fault: { kind: "status", status: 503 } });
    proxy.add({ path: /^\/version$/, count: { every: 3 }, fault: { kind: "status", status: 500 } });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await adminRequest(env, `${proxy.url}/version`)).status ?? 0);
    // rules are tried in order: the 6th request is both every-2nd and every-3rd, and the first rule wins
    expect(statuses).toEqual([200, 503, 500, 503, 200, 503]);
    proxy.clearRules();
  });

  it("resets the connection in the middle of a response body", async () => {
    proxy.add({
      path: /^\/apis\/apiextensions\.k8s\.io\/v1\/customresourcedefinitions$/,
      count: { first: 1 },
      fault: { kind: "reset", afterBytes: 100 },
    });
    const url = `${proxy.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`;
    const cut = await adminRequest(env, url);
    expect(cut.status).toBe(200); // the headers came...
    expect(cut.body.length).toBe(100); // ...and part of the body...
    expect(cut.error).toBe("ECONNRESET"); // ...then the connection dropped
    const whole = await adminRequest(env, url);
    expect(whole.error).toBeUndefined();
    expect(JSON.parse(whole.body)).toMatchObject({ kind: "CustomResourceDefinitionList" });
    expect(proxy.seen({ path: /customresourcedefinitions$/ })[0]).toMatchObject({
      status: 200,
      fault: "reset",
    });
    proxy.clearRules();
  });

  it("delays an answer beyond the client's time limit", async () => {
    proxy.add({ path: /^\/healthz$/, count: { first: 1 }, fault: { kind: "delay", ms: 1500 } });
    const started = performance.now();
    const slow = await adminRequest(env, `${proxy.url}/healthz`, { timeoutMs: 300 });
    expect(slow.error).toBe("ETIMEDOUT");
    expect(slow.status).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(1400);
    expect((await adminRequest(env, `${proxy.url}/healthz`, { timeoutMs: 300 })).status).toBe(200);
    proxy.clearRules();
  });

  it("answers a continue token with 410 Expired and a token the real server continues from", async () => {
    const ns = uniqueName("proxy-410");
    await createNamespace(admin, ns);
    for (const name of ["a", "b", "c"]) {
      await admin.request({
        method: "POST",
        path: `/api/v1/namespaces/${ns}/configmaps`,
        body: JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name } }),
      });
    }
    proxy.add({
      method: "GET",
      path: /\/configmaps$/,
      query: (q) => q.has("continue"),
      count: { first: 1 },
      fault: { kind: "expire-continue" },
    });
    const list = `${proxy.url}/api/v1/namespaces/${ns}/configmaps?limit=1`;
    const first = JSON.parse((await adminRequest(env, list)).body) as {
      metadata: { continue: string };
      items: { metadata: { name: string } }[];
    };
    expect(first.items.map((i) => i.metadata.name)).toEqual(["a"]);
    const gone = await adminRequest(env, `${list}&continue=${encodeURIComponent(first.metadata.continue)}`);
    expect(gone.status).toBe(410);
    const status = JSON.parse(gone.body) as { metadata: { continue: string } };
    expect(status).toMatchObject({
      kind: "Status",
      apiVersion: "v1",
      status: "Failure",
      reason: "Expired",
      code: 410,
    });
    // the token the 410 carries is accepted by the real API server and continues after "a"
    const rest = await adminRequest(env, `${list}&continue=${encodeURIComponent(status.metadata.continue)}`);
    expect(rest.status).toBe(200);
    expect(
      (JSON.parse(rest.body) as { items: { metadata: { name: string } }[] }).items[0]!.metadata.name,
    ).toBe("b");
    expect(
      proxy.seen({ path: /\/configmaps$/ }).map((r) => [r.query.has("continue"), r.status, r.fault]),
    ).toEqual([
      [false, 200, undefined],
      [true, 410, "expire-continue"],
      [true, 200, undefined],
    ]);
    proxy.clearRules();
  });
});

describe("fault proxy in front of MinIO", () => {
  let env: EnvironmentInfo;
  let proxy: FaultProxy;
  const prefix = uniqueName("proxy");

  beforeAll(async () => {
    env = testEnv();
    proxy = await s3Proxy(env);
  });
  afterAll(() => proxy.close());

  it("keeps Host and path intact: SigV4 signatures still verify through it", async () => {
    const client = s3Client(s3Through(proxy, env), 1);
    try {
      const Key = `${prefix}/hello.txt`;
      await client.send(
        new PutObjectCommand({ Bucket: env.s3.bucket, Key, Body: "hello through the proxy" }),
      );
      const got = await client.send(new GetObjectCommand({ Bucket: env.s3.bucket, Key }));
      expect(await got.Body!.transformToString()).toBe("hello through the proxy");
    } finally {
      client.destroy();
    }
    expect(proxy.requests.map((r) => [r.method, r.path, r.status])).toEqual([
      ["PUT", `/${env.s3.bucket}/${prefix}/hello.txt`, 200],
      ["GET", `/${env.s3.bucket}/${prefix}/hello.txt`, 200],
    ]);
  });

  it("injects 500 and 503 with S3 error bodies, and resets an upload mid-body", async () => {
    const client = s3Client(s3Through(proxy, env), 1); // no retries: see each fault
    const put = (Key: string) =>
      client
        .send(
          new PutObjectCommand({
            Bucket: env.s3.bucket,
            Key: `${prefix}/${Key}`,
            Body: Buffer.alloc(256 * 1024),
          }),
        )
        .then(
          () => "ok",
          (e: Error & { $metadata?: { httpStatusCode?: number }; code?: string }) =>
            e.$metadata?.httpStatusCode ? `${e.$metadata.httpStatusCode} ${e.name}` : (e.code ?? e.name),
        );
    try {
      proxy.add({ method: "PUT", path: /\/a$/, count: { first: 1 }, fault: { kind: "status", status: 500 } });
      proxy.add({ method: "PUT", path: /\/b$/, count: { first: 1 }, fault: { kind: "status", status: 503 } });
      proxy.add({
        method: "PUT",
        path: /\/c$/,
        count: { first: 1 },
        fault: { kind: "reset-request", afterBytes: 64 * 1024 },
      });
      expect(await put("a")).toBe("500 InternalError");
      expect(await put("b")).toBe("503 SlowDown");
      expect(await put("c")).toMatch(/^(ECONNRESET|EPIPE)$/);
      expect([await put("a"), await put("b"), await put("c")]).toEqual(["ok", "ok", "ok"]);
    } finally {
      client.destroy();
      proxy.clearRules();
    }
  });
});

describe("stopping and starting servers", () => {
  it("MinIO restarts on the same port with the same data: the bucket and its objects survive", async () => {
    const replica = await startReplica(testEnv(), "minio");
    const client = s3Client(replica.s3, 1);
    const Key = `${uniqueName("restart")}/kept.txt`;
    try {
      await client.send(new PutObjectCommand({ Bucket: replica.s3.bucket, Key, Body: "kept" }));
      await stopServer(replica, "minio");
      const down = await client
        .send(new GetObjectCommand({ Bucket: replica.s3.bucket, Key }))
        .catch((e: Error & { code?: string }) => e.code);
      expect(down).toBe("ECONNREFUSED");
      await startServer(replica, "minio");
      const got = await client.send(new GetObjectCommand({ Bucket: replica.s3.bucket, Key }));
      expect(await got.Body!.transformToString()).toBe("kept");
    } finally {
      client.destroy();
      await stopServer(replica, "minio");
    }
  });

  it("kube-apiserver restarts on the same port; what it wrote to etcd is still there", async () => {
    const replica = await startReplica(testEnv(), "kube-apiserver");
    const ns = uniqueName("restart");
    let client = await clientFor(replica.kubeconfig);
    try {
      await createNamespace(client, ns);
      await stopServer(replica, "kube-apiserver");
      expect((await adminRequest(replica, `${replica.apiServer}/readyz`)).error).toBe("ECONNREFUSED");
      await startServer(replica, "kube-apiserver");
      client.close();
      client = await clientFor(replica.kubeconfig);
      const res = await client.request({ path: `/api/v1/namespaces/${ns}` });
      expect(JSON.parse(res.text)).toMatchObject({ metadata: { name: ns } });
    } finally {
      client.close();
      await stopServer(replica, "kube-apiserver");
    }
  });
});

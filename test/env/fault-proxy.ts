/**
 * A fault-injecting HTTP(S) proxy for tests: it sits between crd-backup and a real server (the
 * kube-apiserver or MinIO), forwards every request, and injects the faults a test scripts for the
 * requests that match a pattern. It records every request it saw, so a test can assert that a
 * retry happened (or did not).
 *
 * In front of the kube-apiserver it speaks TLS to the client with the API server's own serving
 * certificate (signed by the test CA, valid for 127.0.0.1), so an unmodified kubeconfig with the
 * same CA trusts it. A proxy cannot pass a client certificate through, so it re-originates each
 * request upstream with the same identity: it asks the client for a certificate, and a client
 * that presents the environment's admin certificate is forwarded with that certificate (the
 * proxy holds the admin key); a client that presents none is forwarded without one, its
 * `Authorization` header untouched, so a bearer token keeps its own RBAC identity. Any other
 * client certificate is refused with a 502: this environment issues no other.
 *
 * In front of MinIO it is plain HTTP and keeps the method, path, query and every header (`Host`
 * included) as the client sent them: S3 SigV4 signs the Host header, so signatures still verify.
 */
import { X509Certificate } from "node:crypto";
import { EventEmitter } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import path from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { TLSSocket } from "node:tls";
import type { EnvironmentInfo, S3Settings } from "./environment.ts";

/** What a fault does to a request that matches its rule. */
export type Fault =
  /** Answer with this status without forwarding (429 with Retry-After, 500, 503, ...). */
  | { kind: "status"; status: number; retryAfterSeconds?: number; body?: string; contentType?: string }
  /** Forward, send the real status, headers and the first `afterBytes` of the body, then destroy the socket. */
  | { kind: "reset"; afterBytes?: number }
  /** Read the first `afterBytes` of the request body (an upload), then destroy the socket unanswered. */
  | { kind: "reset-request"; afterBytes?: number }
  /** Hold the request `ms` before forwarding it ("before"), or forward it and hold the answer ("after"). */
  | { kind: "delay"; ms: number; when?: "before" | "after" }
  /** Forward, passing the request body ("request") or the answer ("response") at this rate. */
  | { kind: "throttle"; bytesPerSecond: number; direction?: "request" | "response" }
  /**
   * 410 Gone with a Kubernetes Status (reason Expired), as an API server answers a continue token
   * that etcd has compacted away. Like the real one it carries, in metadata.continue, the same
   * token re-encoded at resourceVersion -1 ("continue at the latest state"); `withToken: false`
   * leaves it out.
   */
  | { kind: "expire-continue"; withToken?: boolean };

/** Which of the matching requests get the fault. */
export type FaultCount = "always" | { first: number } | { every: number };

/** Which requests: every part given must match. */
export interface RequestPattern {
  /** An HTTP method ("GET"), or any when absent. */
  method?: string;
  /** Tested against the path without the query string. */
  path?: RegExp;
  /** Tested against the query string, e.g. `(q) => q.has("continue")`. */
  query?: (query: URLSearchParams) => boolean;
}

export interface FaultRule extends RequestPattern {
  /** Default "always". */
  count?: FaultCount;
  fault: Fault;
}

/** A live rule: `matched` counts the requests that matched it, `injected` those that got the fault. */
export interface RuleHandle {
  readonly rule: FaultRule;
  matched: number;
  injected: number;
}

export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The status sent to the client (0: none, the connection was dropped before an answer). */
  status: number;
  /** The fault injected, if any. */
  fault?: Fault["kind"];
  /** Set when forwarding failed: the server behind was down or dropped the connection. */
  upstreamError?: string;
  /** False while the request is in flight. */
  done: boolean;
  /** Whether the whole answer was sent: false when a fault cut it, or the client gave up on it. */
  complete: boolean;
  /** When it arrived, in performance.now() milliseconds. */
  at: number;
}

export interface FaultProxyOptions {
  /** The real server: https://127.0.0.1:port (kube-apiserver) or http://127.0.0.1:port (MinIO). */
  target: string;
  /** For an https target: the environment whose PKI the proxy uses. */
  env?: EnvironmentInfo;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

export class FaultProxy extends EventEmitter {
  /** Every request seen, in arrival order. */
  readonly requests: SeenRequest[] = [];
  private rules: RuleHandle[] = [];
  private readonly server: http.Server;
  private readonly target: URL;
  private readonly agents: { admin?: https.Agent; anonymous: http.Agent };
  private readonly adminFingerprint: string | undefined;
  private readonly sockets = new Set<Socket>();
  url = "";

  private constructor(options: FaultProxyOptions) {
    super();
    this.target = new URL(options.target);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res);
    if (this.target.protocol === "https:") {
      if (!options.env) throw new Error("fault-proxy: an https target needs the environment's PKI");
      const pki = pkiFiles(options.env);
      const ca = readFileSync(pki.ca);
      const cert = readFileSync(pki.adminCert);
      this.adminFingerprint = new X509Certificate(cert).fingerprint256;
      this.server = https.createServer(
        {
          cert: readFileSync(pki.serverCert),
          key: readFileSync(pki.serverKey),
          ca,
          requestCert: true,
          rejectUnauthorized: false, // a bearer-token client presents no certificate
        },
        handler,
      );
      this.agents = {
        admin: new https.Agent({ keepAlive: true, ca, cert, key: readFileSync(pki.adminKey) }),
        anonymous: new https.Agent({ keepAlive: true, ca }),
      };
    } else {
      this.server = http.createServer(handler);
      this.agents = { anonymous: new http.Agent({ keepAlive: true }) };
    }
    const track = (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    };
    this.server.on(this.target.protocol === "https:" ? "secureConnection" : "connection", track);
  }

  /** Starts a proxy for `target` on 127.0.0.1, on a port the kernel picks. */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(options);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once("error", reject);
      proxy.server.listen(0, "127.0.0.1", resolve);
    });
    const { port } = proxy.server.address() as AddressInfo;
    proxy.url = `${proxy.target.protocol}//127.0.0.1:${port}`;
    return proxy;
  }

  /**
   * Adds a rule. Every rule a request matches counts it; of those whose count fires, the first
   * added injects its fault.
   */
  add(rule: FaultRule): RuleHandle {
    const handle = { rule, matched: 0, injected: 0 };
    this.rules.push(handle);
    return handle;
  }

  /** Drops every rule (the record of requests is kept; see clearRequests). */
  clearRules(): void {
    this.rules = [];
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  /** The requests seen that match the rule's pattern (its method, path and query tests). */
  seen(pattern: RequestPattern): SeenRequest[] {
    return this.requests.filter((r) => matches(pattern, r.method, r.path, r.query));
  }

  /** Resolves with the first request matching `pattern` (already seen, or the next to arrive). */
  waitFor(pattern: RequestPattern, timeoutMs = 60_000): Promise<SeenRequest> {
    const hit = this.seen(pattern)[0];
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off("request", onRequest);
        reject(new Error(`fault-proxy: no request like ${describe(pattern)} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onRequest = (r: SeenRequest) => {
        if (!matches(pattern, r.method, r.path, r.query)) return;
        clearTimeout(timer);
        this.off("request", onRequest);
        resolve(r);
      };
      this.on("request", onRequest);
    });
  }

  async close(): Promise<void> {
    this.agents.admin?.destroy();
    this.agents.anonymous.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private pick(method: string, p: string, query: URLSearchParams): Fault | undefined {
    let fault: Fault | undefined;
    for (const h of this.rules) {
      if (!matches(h.rule, method, p, query)) continue;
      h.matched++;
      const count = h.rule.count ?? "always";
      const fires =
        count === "always" || ("first" in count ? h.matched <= count.first : h.matched % count.every === 0);
      if (fires && !fault) {
        h.injected++;
        fault = h.rule.fault;
      }
    }
    return fault;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://proxy");
    const method = req.method ?? "GET";
    const seen: SeenRequest = {
      method,
      path: url.pathname,
      query: url.searchParams,
      status: 0,
      done: false,
      complete: false,
      at: performance.now(),
    };
    this.requests.push(seen);
    const finish = (status: number) => {
      seen.status = status;
      seen.done = true;
    };
    res.on("finish", () => (seen.complete = true));
    res.on("close", () => {
      if (!seen.done) finish(res.headersSent ? res.statusCode : 0);
    });
    const fault = this.pick(method, url.pathname, url.searchParams);
    if (fault) seen.fault = fault.kind;
    this.emit("request", seen);

    let agent: http.Agent = this.agents.anonymous;
    if (this.agents.admin) {
      const socket = req.socket as TLSSocket;
      const peer = socket.getPeerCertificate();
      if (peer && Object.keys(peer).length > 0) {
        if (!socket.authorized || peer.fingerprint256 !== this.adminFingerprint) {
          res.writeHead(502, { "content-type": "text/plain" });
          res.end("fault-proxy: can only forward the environment's admin client certificate\n");
          return finish(502);
        }
        agent = this.agents.admin;
      }
    }

    switch (fault?.kind) {
      case "status": {
        req.resume();
        const body = fault.body ?? statusBody(fault.status, this.target.protocol === "https:");
        res.writeHead(fault.status, {
          "content-type":
            fault.contentType ?? (this.target.protocol === "https:" ? "application/json" : "application/xml"),
          "content-length": Buffer.byteLength(body),
          ...(fault.retryAfterSeconds !== undefined
            ? { "retry-after": String(fault.retryAfterSeconds) }
            : {}),
        });
        res.end(body);
        return finish(fault.status);
      }
      case "expire-continue": {
        req.resume();
        const body = JSON.stringify(expiredStatus(url.searchParams.get("continue"), fault.withToken ?? true));
        res.writeHead(410, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
        return finish(410);
      }
      case "reset-request": {
        let received = 0;
        const limit = fault.afterBytes ?? 0;
        const cut = () => {
          req.socket.destroy();
          finish(0);
        };
        if (limit === 0) return cut();
        req.on("data", (c: Buffer) => {
          received += c.length;
          if (received >= limit) cut();
        });
        req.on("end", cut); // a body shorter than the limit: cut when it ends
        return;
      }
      case "delay":
        if ((fault.when ?? "before") === "before") {
          await sleep(fault.ms);
          if (req.socket.destroyed) return finish(0); // the client gave up
        }
        break;
    }
    this.forward(req, res, url, agent, fault, seen, finish);
  }

  private forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    agent: http.Agent,
    fault: Fault | undefined,
    seen: SeenRequest,
    finish: (status: number) => void,
  ): void {
    const transport = this.target.protocol === "https:" ? https : http;
    const upstream = transport.request(
      {
        protocol: this.target.protocol,
        hostname: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: url.pathname + url.search,
        headers: forwardable(req.headers), // Host included: SigV4 signed it
        agent,
      },
      (answer) => void this.answer(answer, res, fault, seen, finish),
    );
    upstream.on("error", (e) => {
      // the server is down or dropped the connection: the client sees its connection drop too
      seen.upstreamError = e.message;
      res.destroy();
      finish(0);
    });
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy(); // the client gave up: so does the proxy
    });
    const body =
      fault?.kind === "throttle" && (fault.direction ?? "request") === "request"
        ? req.pipe(throttle(fault.bytesPerSecond))
        : req;
    body.pipe(upstream);
  }

  private async answer(
    answer: http.IncomingMessage,
    res: http.ServerResponse,
    fault: Fault | undefined,
    seen: SeenRequest,
    finish: (status: number) => void,
  ): Promise<void> {
    const status = answer.statusCode ?? 502;
    if (fault?.kind === "delay" && fault.when === "after") {
      answer.pause();
      await sleep(fault.ms);
      if (res.destroyed) {
        answer.destroy();
        return;
      }
    }
    res.writeHead(status, forwardable(answer.headers));
    seen.status = status; // known now, whatever happens to the body
    if (fault?.kind === "reset") {
      res.flushHeaders();
      let sent = 0;
      const limit = fault.afterBytes ?? 0;
      const cut = () => {
        answer.destroy();
        res.socket?.destroy();
        finish(status);
      };
      if (limit === 0) return cut();
      answer.on("data", (c: Buffer) => {
        const room = limit - sent;
        if (room <= 0) return;
        res.write(c.subarray(0, room));
        sent += Math.min(room, c.length);
        // let the partial body reach the client before the connection drops
        if (sent >= limit) setTimeout(cut, 50);
      });
      answer.on("end", () => setTimeout(cut, 50));
      return;
    }
    answer.on("error", () => res.destroy());
    const body =
      fault?.kind === "throttle" && fault.direction === "response"
        ? answer.pipe(throttle(fault.bytesPerSecond))
        : answer;
    body.pipe(res);
    res.on("finish", () => finish(status));
  }
}

function matches(rule: RequestPattern, method: string, p: string, query: URLSearchParams): boolean {
  if (rule.method && rule.method.toUpperCase() !== method) return false;
  if (rule.path && !rule.path.test(p)) return false;
  if (rule.query && !rule.query(query)) return false;
  return true;
}

function describe(pattern: RequestPattern): string {
  return `${pattern.method ?? "*"} ${pattern.path?.source ?? "*"}${pattern.query ? " (query test)" : ""}`;
}

/** A body like the real server's for a synthesized status: a Kubernetes Status, or an S3 error. */
function statusBody(status: number, kube: boolean): string {
  const reason = status === 429 ? "TooManyRequests" : status === 503 ? "ServiceUnavailable" : "InternalError";
  if (kube) {
    return JSON.stringify({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: `fault-proxy: injected ${status}`,
      reason,
      code: status,
    });
  }
  const code = status === 503 ? "SlowDown" : status === 429 ? "SlowDown" : "InternalError";
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>fault-proxy: injected ${status}</Message></Error>`;
}

/**
 * The API server's answer to an expired continue token (k8s.io/apiserver, etcd3 store,
 * handleCompactedErrorForPaging): 410 Expired, and a token for the same start key at
 * resourceVersion -1, with which the client may continue at the latest state.
 */
export function expiredStatus(token: string | null, withToken: boolean): object {
  let next: string | undefined;
  if (token && withToken) {
    const decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as Record<string, unknown>;
    next = Buffer.from(JSON.stringify({ ...decoded, rv: -1 })).toString("base64url");
  }
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: next ? { continue: next } : {},
    status: "Failure",
    message:
      "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
    reason: "Expired",
    code: 410,
  };
}

/** Passes bytes through at about `bytesPerSecond`, in slices of a tenth of a second. */
function throttle(bytesPerSecond: number): Transform {
  const slice = Math.max(1, Math.floor(bytesPerSecond / 10));
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      void (async () => {
        for (let i = 0; i < chunk.length; i += slice) {
          this.push(chunk.subarray(i, i + slice));
          await sleep(100);
        }
        done();
      })();
    },
  });
}

interface PkiFiles {
  ca: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
}

/** The environment's PKI (test/env/certs.ts writes it to rootDir/pki). */
function pkiFiles(env: EnvironmentInfo): PkiFiles {
  const p = (f: string) => path.join(env.rootDir, "pki", f);
  return {
    ca: p("ca.crt"),
    serverCert: p("apiserver.crt"),
    serverKey: p("apiserver.key"),
    adminCert: p("admin.crt"),
    adminKey: p("admin.key"),
  };
}

/** A proxy in front of the environment's kube-apiserver (or a replica's: pass its view). */
export function kubeProxy(env: EnvironmentInfo): Promise<FaultProxy> {
  return FaultProxy.start({ target: env.apiServer, env });
}

/** A proxy in front of the environment's MinIO (or a replica's). */
export function s3Proxy(env: EnvironmentInfo): Promise<FaultProxy> {
  return FaultProxy.start({ target: env.s3.endpoint });
}

/**
 * A copy of a kubeconfig (the environment's admin one by default) whose cluster points at the
 * proxy: same CA, same credentials. Written next to the environment's own, mode 0600.
 */
export function kubeconfigThrough(
  proxy: FaultProxy,
  env: EnvironmentInfo,
  kubeconfig = env.kubeconfig,
): string {
  const config = JSON.parse(readFileSync(kubeconfig, "utf8")) as {
    clusters: { cluster: { server: string } }[];
  };
  for (const c of config.clusters) c.cluster.server = proxy.url;
  const file = path.join(env.rootDir, `kubeconfig-proxy-${new URL(proxy.url).port}`);
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return file;
}

/** The environment's S3 settings with the endpoint at the proxy. */
export function s3Through(proxy: FaultProxy, env: EnvironmentInfo): S3Settings {
  return { ...env.s3, endpoint: proxy.url };
}

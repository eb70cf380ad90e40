import type { IncomingMessage } from "node:http";
import https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";
import { CrdBackupError, KubeApiError } from "../errors.ts";
import { FlowControl } from "./flow-control.ts";
import { RateLimiter } from "./rate-limit.ts";
import { DEFAULT_RETRY, withRetries, type RetryPolicy } from "./retry.ts";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface KubeRequest {
  method?: HttpMethod;
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** A Buffer is sent as it is: a restore sends archived bytes without decoding them. */
  body?: string | Buffer;
  contentType?: string;
  signal?: AbortSignal;
  /** The size the answer is likely to have (the previous page's, say): its buffer starts that big. */
  expectedBytes?: number;
  /** A buffer to receive the answer into (grown if too small): see KubeResponse.reusable. */
  receiveInto?: Buffer;
}

export class KubeResponse {
  readonly status: number;
  /** The body as received: list pages are scanned as bytes, never decoded whole. */
  readonly body: Buffer;
  /**
   * The whole buffer the body was received into, which nothing else holds: once the caller is
   * done with the body, it can pass it as the next request's receiveInto.
   */
  readonly reusable: Buffer | undefined;

  constructor(status: number, body: Buffer, reusable?: Buffer) {
    this.status = status;
    this.body = body;
    this.reusable = reusable;
  }

  get text(): string {
    return this.body.toString("utf8");
  }
}

export interface KubeClientOptions {
  /** Connections kept open to the API server. */
  maxSockets?: number;
  /** Per-request timeout, from send to the last byte of the body. */
  timeoutMs?: number;
  retry?: RetryPolicy;
  /**
   * An explicit client-side cap: requests per second (0: none, the default) and the burst allowed
   * above it. Without one, flow-control.ts adapts to what the server takes.
   */
  qps?: number;
  burst?: number;
}

/**
 * A thin HTTP client for the Kubernetes API that returns raw response bodies: the typed models of
 * @kubernetes/client-node rename and drop fields and lose int64 precision, and a backup must not.
 * KubeConfig supplies TLS material and credentials (refreshed per request, so exec plugins and
 * expiring tokens work); they are never logged or put into error messages.
 */
const DEFAULT_MAX_SOCKETS = 16;

export class KubeClient {
  readonly server: string;
  private readonly kc: KubeConfig;
  private readonly agent: https.Agent;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly limiter: RateLimiter;
  /** How many requests the server takes at once, learnt from its answers (429s, latency). */
  readonly flow: FlowControl;

  private constructor(kc: KubeConfig, agent: https.Agent, options: KubeClientOptions) {
    this.kc = kc;
    this.server = kc.getCurrentCluster()!.server.replace(/\/+$/, "");
    this.agent = agent;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.limiter = new RateLimiter(options.qps ?? 0, options.burst ?? 1);
    this.flow = new FlowControl({ max: options.maxSockets ?? DEFAULT_MAX_SOCKETS });
  }

  static async create(kc: KubeConfig, options: KubeClientOptions = {}): Promise<KubeClient> {
    const tls: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(tls);
    const agent = new https.Agent({
      keepAlive: true,
      maxSockets: options.maxSockets ?? DEFAULT_MAX_SOCKETS,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      pfx: tls.pfx,
      passphrase: tls.passphrase,
      servername: tls.servername,
      rejectUnauthorized: tls.rejectUnauthorized,
    });
    return new KubeClient(kc, agent, options);
  }

  private cached: { at: number; headers: Record<string, string>; basic: string | undefined } | undefined;

  /**
   * Credentials from the kubeconfig, asked for at most every 30 s: client-node rereads certificate
   * files on every call, and exec plugins and token files renew well within that. A 401 drops the
   * cache so a retry asks again.
   */
  private async credentials(): Promise<{ headers: Record<string, string>; basic: string | undefined }> {
    if (this.cached && performance.now() - this.cached.at < 30_000) return this.cached;
    const opts: https.RequestOptions = { headers: {} };
    await this.kc.applyToHTTPSOptions(opts);
    const given = opts.headers as Record<string, string | undefined>;
    const headers: Record<string, string> = {};
    for (const name of ["Authorization", "Impersonate-User"]) if (given[name]) headers[name] = given[name];
    this.cached = {
      at: performance.now(),
      headers,
      basic: typeof opts.auth === "string" ? opts.auth : undefined,
    };
    return this.cached;
  }

  close(): void {
    this.agent.destroy();
  }

  /** One request with retries on transient failures; a non-2xx answer throws KubeApiError. */
  request(req: KubeRequest): Promise<KubeResponse> {
    return withRetries(this.retry, req.signal, () => this.send(req));
  }

  url(path: string, query?: KubeRequest["query"]): URL {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  /**
   * A long-lived request whose answer is read as it comes (a watch): same credentials, TLS and
   * rate limit as request(), no retries and no overall time limit (a watch has timeoutSeconds),
   * only one for the response headers. A non-2xx answer throws KubeApiError; a 2xx one is handed
   * over unread, and the caller must consume or destroy it.
   */
  async stream(req: KubeRequest): Promise<IncomingMessage> {
    await this.limiter.acquire(req.signal);
    const url = this.url(req.path, req.query);
    const auth = await this.credentials();
    const headers: Record<string, string> = { Accept: "application/json", ...auth.headers };
    return new Promise<IncomingMessage>((resolve, reject) => {
      const failed = (e: Error & { code?: string }) => {
        clearTimeout(deadline);
        if (req.signal?.aborted)
          return reject(new CrdBackupError("ABORTED", "cancelled", { path: req.path }));
        reject(
          new CrdBackupError(
            "KUBE_UNREACHABLE",
            `GET ${req.path}: cannot reach the Kubernetes API at ${this.server}: ${e.message}`,
            { method: "GET", path: req.path, cause: e.code },
            { cause: e },
          ),
        );
      };
      const r = https.request(
        url,
        { method: "GET", headers, agent: this.agent, auth: auth.basic, signal: req.signal },
        (res) => {
          clearTimeout(deadline);
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(res);
          if (status === 401) this.cached = undefined;
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", failed);
          res.on("end", () =>
            reject(apiError("GET", req.path, status, Buffer.concat(chunks).toString("utf8"))),
          );
        },
      );
      const deadline = setTimeout(() => {
        r.destroy(Object.assign(new Error(`no answer within ${this.timeoutMs} ms`), { code: "ETIMEDOUT" }));
      }, this.timeoutMs);
      r.on("error", failed);
      r.end();
    });
  }

  private async send(req: KubeRequest): Promise<KubeResponse> {
    await this.limiter.acquire(req.signal);
    await this.flow.acquire(req.signal);
    const started = performance.now();
    try {
      const res = await this.exchange(req);
      this.flow.release(res.status, performance.now() - started);
      return res;
    } catch (e) {
      const api = e instanceof KubeApiError ? e : undefined;
      this.flow.release(api?.status ?? 0, performance.now() - started, api?.retryAfterSeconds);
      throw e;
    }
  }

  private async exchange(req: KubeRequest): Promise<KubeResponse> {
    const method = req.method ?? "GET";
    const url = this.url(req.path, req.query);
    const auth = await this.credentials();
    const headers: Record<string, string> = { Accept: "application/json", ...auth.headers };
    if (req.body !== undefined) {
      headers["Content-Type"] = req.contentType ?? "application/json";
      // Node sends a DELETE's body unframed (it chunks only POST, PUT, PATCH): without a length the
      // API server reads the body as the next request on the connection, and answers it 400
      headers["Content-Length"] = String(Buffer.byteLength(req.body));
    }

    return new Promise<KubeResponse>((resolve, reject) => {
      let timedOut: Error | undefined;
      const failed = (e: Error & { code?: string }, detail = e.message) => {
        clearTimeout(deadline);
        if (timedOut) [e, detail] = [timedOut, timedOut.message];
        if (req.signal?.aborted)
          return reject(new CrdBackupError("ABORTED", "cancelled", { method, path: req.path }));
        reject(
          new CrdBackupError(
            "KUBE_UNREACHABLE",
            `${method} ${req.path}: cannot reach the Kubernetes API at ${this.server}: ${detail}`,
            { method, path: req.path, cause: e.code },
            { cause: e },
          ),
        );
      };
      const r = https.request(
        url,
        { method, headers, agent: this.agent, auth: auth.basic, signal: req.signal },
        (res) => {
          // kube-apiserver streams a list in chunks of a few KiB: each is copied into one buffer as
          // it arrives, so none lives long enough to be promoted and cost an old-generation GC
          const body = new GrowingBuffer(req.receiveInto, req.expectedBytes ?? 0);
          res.on("data", (c: Buffer) => body.append(c));
          // Node says only "aborted": name the request and what happened, like any other lost connection
          res.on("error", (e: Error & { code?: string }) =>
            failed(e, "the connection dropped in the middle of the answer"),
          );
          res.on("end", () => {
            clearTimeout(deadline);
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300)
              return resolve(new KubeResponse(status, body.bytes(), body.buffer));
            if (status === 401) this.cached = undefined; // an expired token: the next attempt asks afresh
            const retryAfter = Number(res.headers["retry-after"]);
            reject(
              apiError(
                method,
                req.path,
                status,
                body.bytes().toString("utf8"),
                Number.isFinite(retryAfter) ? retryAfter : undefined,
              ),
            );
          });
        },
      );
      // one limit from send to the last byte: a socket timeout restarts with every byte that
      // arrives, so an answer trickling in would never time out
      const deadline = setTimeout(() => {
        timedOut = Object.assign(new Error(`no complete answer within ${this.timeoutMs} ms`), {
          code: "ETIMEDOUT",
        });
        r.destroy(timedOut);
      }, this.timeoutMs);
      r.on("error", failed);
      r.end(req.body);
    });
  }
}

/** Bytes appended into one buffer that doubles when full. */
class GrowingBuffer {
  #buffer: Buffer;
  #used = 0;

  constructor(initial: Buffer | undefined, expected: number) {
    this.#buffer = initial ?? Buffer.allocUnsafe(Math.max(16 * 1024, expected));
  }

  get buffer(): Buffer {
    return this.#buffer;
  }

  append(chunk: Buffer): void {
    if (this.#used + chunk.length > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.#buffer.length, this.#used + chunk.length));
      this.#buffer.copy(grown, 0, 0, this.#used);
      this.#buffer = grown;
    }
    this.#used += chunk.copy(this.#buffer, this.#used);
  }

  bytes(): Buffer {
    return this.#buffer.subarray(0, this.#used);
  }
}

function apiError(
  method: string,
  path: string,
  status: number,
  text: string,
  retryAfter?: number,
): KubeApiError {
  let message = `HTTP ${status}`;
  let reason: string | undefined;
  let continueToken: string | undefined;
  try {
    const s = JSON.parse(text) as {
      kind?: string;
      message?: string;
      reason?: string;
      metadata?: { continue?: string };
    };
    if (s.kind === "Status") {
      message = s.message ?? message;
      reason = s.reason;
      continueToken = s.metadata?.continue || undefined;
    }
  } catch {
    // not a Status object (a proxy's page, say): the status code alone has to do
  }
  return new KubeApiError(status, `${method} ${path}: ${status}${reason ? ` ${reason}` : ""}: ${message}`, {
    method,
    path,
    reason,
    retryAfterSeconds: retryAfter,
    continueToken,
  });
}

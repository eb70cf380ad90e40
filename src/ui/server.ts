/**
 * `crd-backup ui`: a read-only web view of a storage location on Node's own HTTP server. It only
 * answers GET and HEAD, reads storage through the same readers the commands use, holds no cluster
 * client at all, and writes nothing but its scratch copies under the system's temp folder.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { CrdBackupError, isCrdBackupError } from "../errors.ts";
import type { Logger } from "../report/log.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { checkAccess, isLoopback, newToken } from "./auth.ts";
import { BrowseCache } from "./browse-cache.ts";
import type { DrillResult, HistoryProvider, Reply, UiContext } from "./context.ts";
import { errorLine, html, page } from "./html.ts";
import type { CommandContext } from "./restore-command.ts";
import { route } from "./routes.ts";

export interface UiOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  commands: CommandContext;
  pageSize: number;
  /** Snapshots and points in time kept browsable on local disk at once. */
  maxOpen: number;
  drills: DrillResult[];
  /** Built once the view's browse cache exists: the provider may read snapshots through it. */
  history?: (cache: BrowseCache) => HistoryProvider;
  log: Logger;
}

export interface UiServer {
  /** The address to open; with the token as a query parameter when one is needed. */
  url: string;
  token: string | undefined;
  close(): Promise<void>;
}

function statusFor(e: unknown): number {
  if (!isCrdBackupError(e)) return 500;
  return { USAGE: 400, NOT_FOUND: 404, DECRYPT: 403 }[e.code as string] ?? 500;
}

const SECURITY_HEADERS = {
  // no inline script or style anywhere: the one stylesheet and script come from this server
  "content-security-policy":
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  // the token may be in the address once: never send it on
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/**
 * A streamed reply: its first piece is read before anything is sent, so an error a reader throws
 * up front (a usage error, a missing object, a refused source) still gets its status and line;
 * one after that can only cut the response short, as the CLI's output stops with a non-zero exit.
 */
async function sendStream(
  res: ServerResponse,
  reply: Extract<Reply, { stream: unknown }>,
  head: boolean,
  api: boolean,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const pieces = reply.stream[Symbol.asyncIterator]();
  let first: IteratorResult<string>;
  try {
    first = await pieces.next();
  } catch (e) {
    if (!isCrdBackupError(e)) log.error("ui request failed", { error: String((e as Error)?.stack ?? e) });
    send(res, errorReply(e, api), head);
    return;
  }
  res.writeHead(reply.status ?? 200, { ...SECURITY_HEADERS, "content-type": reply.type });
  try {
    for (let r = first; !r.done && !head && !res.destroyed; r = await pieces.next())
      if (!res.write(r.value)) await once(res, "drain", { signal });
    res.end();
  } catch (e) {
    if (!signal.aborted) log.warn("ui response cut short", { error: errorLine(e) });
    res.destroy();
  } finally {
    await pieces.return?.();
  }
}

function send(res: ServerResponse, reply: Reply, head: boolean, extra: Record<string, string> = {}): void {
  const headers: Record<string, string> = { ...SECURITY_HEADERS, ...extra };
  if ("stream" in reply) throw new Error("a streamed reply goes through sendStream");
  let body: string;
  if ("redirect" in reply) {
    headers["location"] = reply.redirect;
    res.writeHead(reply.status ?? 303, headers).end();
    return;
  }
  if ("html" in reply) {
    headers["content-type"] = "text/html; charset=utf-8";
    body = reply.html.text;
  } else if ("json" in reply) {
    headers["content-type"] = "application/json; charset=utf-8";
    body = JSON.stringify(reply.json, null, 2) + "\n";
  } else {
    headers["content-type"] = reply.type;
    body = reply.text;
  }
  headers["content-length"] = String(Buffer.byteLength(body));
  res.writeHead(reply.status ?? 200, headers);
  res.end(head ? undefined : body);
}

export function errorReply(e: unknown, api: boolean, status = statusFor(e)): Reply {
  const line = `crd-backup: ${errorLine(e)}`;
  if (api) return { status, json: { error: line } };
  return { status, html: page("Error", [], html`<p class="error">${line}</p>`) };
}

async function handle(
  ctx: UiContext,
  token: string | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  log: Logger,
) {
  const url = new URL(req.url ?? "/", "http://localhost");
  const api = url.pathname.startsWith("/api/");
  const access = checkAccess(req, url, token);
  if (!access.ok) {
    send(
      res,
      errorReply(new CrdBackupError("USAGE", access.reason), api, access.status),
      req.method === "HEAD",
    );
    return;
  }
  if ("setCookie" in access) {
    send(res, { redirect: access.location }, false, { "set-cookie": access.setCookie });
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    const reply = errorReply(
      new CrdBackupError("USAGE", `${req.method} is not allowed: this view is read-only`),
      api,
      405,
    );
    send(res, reply, false, { allow: "GET, HEAD" });
    return;
  }
  let reply: Reply;
  // aborted when the browser goes away (or the answer is complete): a long read stops with it
  const gone = new AbortController();
  res.once("close", () => gone.abort());
  try {
    reply = await route(ctx, { url, segments: pathSegments(url), now: new Date(), signal: gone.signal });
  } catch (e) {
    if (!isCrdBackupError(e))
      log.error("ui request failed", { path: url.pathname, error: String((e as Error)?.stack ?? e) });
    reply = errorReply(e, api);
  }
  if ("stream" in reply) await sendStream(res, reply, req.method === "HEAD", api, log, gone.signal);
  else send(res, reply, req.method === "HEAD");
}

/** The path's non-empty segments, percent-decoded; a malformed escape is a usage error. */
function pathSegments(url: URL): string[] {
  try {
    return url.pathname
      .split("/")
      .filter((s) => s !== "")
      .map((s) => decodeURIComponent(s));
  } catch {
    throw new CrdBackupError("USAGE", `the address ${url.pathname} is not a valid path`);
  }
}

/** Starts the view; it serves until close(). */
export async function startUi(storage: StorageBackend, options: UiOptions): Promise<UiServer> {
  const token = isLoopback(options.host) ? undefined : newToken();
  const cache = new BrowseCache(storage, options.maxOpen);
  const ctx: UiContext = {
    storage,
    cache,
    commands: options.commands,
    pageSize: options.pageSize,
    keepOpen: options.maxOpen,
    drills: options.drills,
    history: options.history?.(cache),
  };
  const server: Server = createServer((req, res) => {
    handle(ctx, token, req, res, options.log).catch((e: unknown) => {
      options.log.error("ui response failed", { error: errorLine(e) });
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new CrdBackupError(
          "USAGE",
          `cannot listen on ${options.host}:${options.port}: ${e.code ?? e.message}`,
        ),
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  const base = `http://${host}:${port}/`;
  return {
    url: token ? `${base}?token=${token}` : base,
    token,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await ctx.history?.close?.();
      await cache.close();
    },
  };
}

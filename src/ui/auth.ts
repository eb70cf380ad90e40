/**
 * Who may read the view. On a loopback address anyone on this machine may (as with any local
 * tool), but only under a loopback Host name, so a web page elsewhere cannot reach it through DNS
 * rebinding. On any other address every request needs the random token printed at start: once as
 * `?token=` (answered with a cookie and a redirect that drops it from the address bar), then the
 * cookie, or `Authorization: Bearer` for scripts calling /api/.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

export const COOKIE = "crd_backup_ui";

export function newToken(): string {
  return randomBytes(24).toString("base64url");
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1";
  return false;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieToken(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === COOKIE) return v.join("=");
  }
  return undefined;
}

export type Access =
  | { ok: true }
  /** The token came in the query: set the cookie, then redirect to `location` (the URL without it). */
  | { ok: true; setCookie: string; location: string }
  | { ok: false; status: 401 | 421; reason: string };

export function checkAccess(req: IncomingMessage, url: URL, token: string | undefined): Access {
  if (token === undefined) {
    // loopback only: the Host a browser sends must name this machine
    const host = (req.headers.host ?? "").replace(/:\d+$/, "");
    if (isLoopback(host)) return { ok: true };
    return {
      ok: false,
      status: 421,
      reason: `this view answers to localhost names only, not ${host || "no Host"}`,
    };
  }
  const auth = req.headers.authorization;
  if (auth?.startsWith("Bearer ") && same(auth.slice(7), token)) return { ok: true };
  const cookie = cookieToken(req);
  if (cookie !== undefined && same(cookie, token)) return { ok: true };
  const given = url.searchParams.get("token");
  if (given !== null && same(given, token)) {
    const clean = new URL(url);
    clean.searchParams.delete("token");
    return {
      ok: true,
      setCookie: `${COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict`,
      // one leading slash: `//host` would send the browser to another site
      location: `/${clean.pathname.replace(/^\/+/, "")}${clean.search}`,
    };
  }
  return {
    ok: false,
    status: 401,
    reason: "this view needs its token: open the URL crd-backup ui printed when it started",
  };
}

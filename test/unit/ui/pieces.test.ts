import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { checkAccess, isLoopback } from "../../../src/ui/auth.ts";
import { escapeHtml, href, html } from "../../../src/ui/html.ts";
import { restoreCommand, shellWord } from "../../../src/ui/restore-command.ts";

const request = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe("html", () => {
  it("escapes every interpolated value and passes only Html through", () => {
    const name = `<script>alert("x")</script>' & more`;
    // prettier-ignore
    const out = html`<td title="${name}">${name}</td>${html`<b>${name}</b>`}`.text;
    expect(out).not.toContain("<script>");
    expect(out).toBe(`<td title="${escapeHtml(name)}">${escapeHtml(name)}</td><b>${escapeHtml(name)}</b>`);
    expect(escapeHtml(`"'<>&`)).toBe("&quot;&#39;&lt;&gt;&amp;");
  });

  it("builds paths whose segments cannot add a segment or a query", () => {
    expect(href("snapshots", "a/b?c#d", "x y")).toBe("/snapshots/a%2Fb%3Fc%23d/x%20y");
  });
});

describe("restore command", () => {
  const ctx = { storageArgs: ["--storage", "s3://bucket/prod"], identityFiles: [] };
  const key = { group: "cert-manager.io", plural: "certificates", namespace: "web", name: "site.tls" };

  it("names the snapshot, the storage, the resource, the namespace and the object, with --dry-run", () => {
    expect(restoreCommand(ctx, { snapshot: "20261122T041500Z-1a2b3c4d" }, key, false)).toBe(
      "crd-backup restore 20261122T041500Z-1a2b3c4d --storage s3://bucket/prod --include-resources certificates.cert-manager.io --include-namespaces web --name site.tls --dry-run",
    );
  });

  it("uses --at and --cluster for a point in time, leaves out the namespace of a cluster-scoped object, asks for an identity when encrypted", () => {
    const at = new Date("2026-12-07T08:00:00Z");
    expect(restoreCommand(ctx, { cluster: "3f2a", at }, { ...key, namespace: "" }, true)).toBe(
      "crd-backup restore --at 2026-12-07T08:00:00.000Z --cluster 3f2a --storage s3://bucket/prod --identity <your-identity-file> --include-resources certificates.cert-manager.io --name site.tls --dry-run",
    );
    expect(
      restoreCommand({ ...ctx, identityFiles: ["/keys/dr key.txt"] }, { snapshot: "x" }, key, true),
    ).toContain("--identity '/keys/dr key.txt'");
  });

  it("quotes every word a shell could misread", () => {
    expect(shellWord("file:///tmp/a b")).toBe("'file:///tmp/a b'");
    expect(shellWord("it's")).toBe(`'it'\\''s'`);
    expect(shellWord("$(rm -rf /)")).toBe("'$(rm -rf /)'");
    expect(shellWord("plain-word.ok")).toBe("plain-word.ok");
  });
});

describe("access", () => {
  const url = (p: string) => new URL(p, "http://x");

  it("on loopback: only loopback Host names (no DNS rebinding)", () => {
    expect(checkAccess(request({ host: "127.0.0.1:8087" }), url("/"), undefined).ok).toBe(true);
    expect(checkAccess(request({ host: "localhost:8087" }), url("/"), undefined).ok).toBe(true);
    expect(checkAccess(request({ host: "[::1]:8087" }), url("/"), undefined).ok).toBe(true);
    expect(checkAccess(request({ host: "evil.example:8087" }), url("/"), undefined)).toMatchObject({
      ok: false,
      status: 421,
    });
    expect(isLoopback("0.0.0.0")).toBe(false);
    expect(isLoopback("127.0.0.5")).toBe(true);
  });

  it("elsewhere: the token as a query (then a cookie and a redirect without it), a cookie or a bearer header", () => {
    const token = "t0ken";
    expect(checkAccess(request({ host: "h" }), url("/"), token)).toMatchObject({ ok: false, status: 401 });
    expect(checkAccess(request({ host: "h" }), url("/?token=wrong"), token)).toMatchObject({ ok: false });
    expect(checkAccess(request({ host: "h" }), url("/clusters/a?token=t0ken&x=1"), token)).toEqual({
      ok: true,
      setCookie: "crd_backup_ui=t0ken; Path=/; HttpOnly; SameSite=Strict",
      location: "/clusters/a?x=1",
    });
    expect(checkAccess(request({ host: "h" }), url("/.//evil.example/?token=t0ken"), token)).toMatchObject({
      location: "/evil.example/",
    });
    expect(checkAccess(request({ host: "h", cookie: "a=b; crd_backup_ui=t0ken" }), url("/"), token)).toEqual({
      ok: true,
    });
    expect(
      checkAccess(request({ host: "h", authorization: "Bearer t0ken" }), url("/api/snapshots"), token),
    ).toEqual({
      ok: true,
    });
    expect(
      checkAccess(request({ host: "h", authorization: "Bearer t0ke" }), url("/api/snapshots"), token).ok,
    ).toBe(false);
  });
});

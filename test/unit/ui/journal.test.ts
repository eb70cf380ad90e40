import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import { checkParams, DEFAULT_SPAN_MS, filtersOf, pageWindow, windowOf } from "../../../src/ui/journal.ts";
import { restoreAtCommand } from "../../../src/ui/restore-command.ts";

const now = new Date("2026-12-07T12:00:00Z");
const q = (s: string) => new URLSearchParams(s);
const usage = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CrdBackupError);
    expect((e as CrdBackupError).code).toBe("USAGE");
    return (e as Error).message;
  }
  throw new Error("no usage error");
};

describe("the journal provider's query", () => {
  it("takes since and until as --since and --until do: RFC 3339 or a duration before now, until now by default", () => {
    expect(windowOf(q(""), now)).toEqual({ until: now });
    expect(windowOf(q("since=2h&until=2026-12-07T11:30:00Z"), now)).toEqual({
      since: new Date("2026-12-07T10:00:00Z"),
      until: new Date("2026-12-07T11:30:00Z"),
    });
    // a blank form field is no value
    expect(windowOf(q("since=&until="), now)).toEqual({ until: now });
    expect(usage(() => windowOf(q("since=yesterday"), now))).toMatch(
      /^--since "yesterday" is neither an RFC 3339 time .* nor a duration before now/,
    );
    expect(usage(() => windowOf(q("until=1h"), now, true))).toMatch(/^--since is required/);
  });

  it("refuses a parameter it does not take, naming those it does", () => {
    checkParams(q("resource=w&name=a&namespace=n"), "/api/history", ["resource", "name", "namespace"]);
    expect(usage(() => checkParams(q("resource=w&nmae=a"), "/api/history", ["resource", "name"]))).toBe(
      '/api/history takes no parameter "nmae" (it takes resource, name)',
    );
  });

  it("reads the changes filters as the flags of the same names, repeated or comma-separated", () => {
    const f = filtersOf(
      q(
        "include-resources=widgets.example.com,gadgets.example.com&exclude-namespaces=kube-system&exclude-namespaces=x&selector=app%3Dweb",
      ),
    );
    expect(f).toEqual({
      includeGroups: [],
      excludeGroups: [],
      includeResources: ["widgets.example.com", "gadgets.example.com"],
      excludeResources: [],
      includeNamespaces: [],
      excludeNamespaces: ["kube-system", "x"],
      selector: "app=web",
    });
  });

  it("opens an object's page on the last 24h recorded, not the last 24h of the clock", () => {
    const recordedTo = new Date("2026-12-01T08:00:00Z"); // a recorder stopped a week ago
    expect(pageWindow(q(""), now, recordedTo)).toEqual({
      since: new Date(recordedTo.getTime() - DEFAULT_SPAN_MS),
      until: recordedTo,
    });
    expect(pageWindow(q("since=2026-11-30T00:00:00Z"), now, recordedTo)).toEqual({
      since: new Date("2026-11-30T00:00:00Z"),
      until: recordedTo,
    });
    expect(pageWindow(q("until=2026-11-30T00:00:00Z"), now, recordedTo)).toEqual({
      since: new Date("2026-11-29T00:00:00Z"),
      until: new Date("2026-11-30T00:00:00Z"),
    });
  });
});

describe("the restore command of a journal version", () => {
  const key = { group: "cert-manager.io", plural: "certificates", namespace: "web", name: "site.tls" };
  const at = new Date("2026-12-07T08:00:00.123Z");

  it("is restore's short form at the version's time, with the cluster, the storage and --dry-run", () => {
    const ctx = { storageArgs: ["--storage", "s3://bucket/prod"], identityFiles: [] };
    expect(restoreAtCommand(ctx, "3f2a-uid", at, key)).toBe(
      "crd-backup restore certificates.cert-manager.io/site.tls -n web --at 2026-12-07T08:00:00.123Z --cluster 3f2a-uid --storage s3://bucket/prod --dry-run",
    );
  });

  it("leaves out -n for a cluster-scoped object and names the identities the view was given", () => {
    const ctx = { storageArgs: ["--storage", "/backups/a b"], identityFiles: ["/keys/dr.txt"] };
    expect(restoreAtCommand(ctx, "u", at, { ...key, namespace: "" })).toBe(
      "crd-backup restore certificates.cert-manager.io/site.tls --at 2026-12-07T08:00:00.123Z --cluster u --storage '/backups/a b' --identity /keys/dr.txt --dry-run",
    );
  });
});

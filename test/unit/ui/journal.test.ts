import { rename } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ChangesSummary } from "../../../src/history/index.ts";
import { CrdBackupError } from "../../../src/errors.ts";
import { createLogger } from "../../../src/report/log.ts";
import {
  checkParams,
  DEFAULT_SPAN_MS,
  filtersOf,
  journalProvider,
  pageWindow,
  windowOf,
} from "../../../src/ui/journal.ts";
import { at, freshLocation, GROUP, key, widget, writeBase, writeChain } from "../history/location.ts";
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

/** A widget `name` of `size` put at `t`. */
const put = (t: string, name: string, size: number) =>
  ({
    t: at(t).toISOString(),
    op: "put",
    ...key(name),
    uid: `uid-${name}`,
    rv: t,
    body: widget(name, { size }),
  }) as const;

/** A location: a base holding w1 (size 1), then one chain of these segments. */
async function withChain(chain: Parameters<typeof writeChain>[2]) {
  const storage = freshLocation();
  const base = "20261203T050000Z-00000001";
  await writeBase(storage, base, at("00:01"), new Map([["w1", widget("w1", { size: 1 })]]));
  return { storage, segments: await writeChain(storage, base, chain) };
}

describe("the journal provider's record indexes", () => {
  it("after a first history, indexes the chain in the background; later answers are the same bytes", async () => {
    const { storage } = await withChain([
      [at("00:01"), at("10:00"), [put("01:00", "w1", 2), put("02:00", "w2", 1)]],
      [at("10:00"), at("20:00"), [put("11:00", "w2", 2), put("12:00", "w1", 3)]],
      // w1's history reads the first two in full (indexing them); this one is indexed after it
      [at("20:00"), at("25:00"), [put("21:00", "w2", 3)]],
    ]);
    const logged: string[] = [];
    let indexed!: () => void;
    const done = new Promise<void>((resolve) => (indexed = resolve));
    const log = createLogger({
      json: true,
      write: (line) => {
        logged.push(line);
        if (line.includes("journal indexed for history")) indexed();
      },
    });
    const provider = journalProvider(storage, undefined, log);
    const ask = async (name: string) => {
      const query = new URLSearchParams({
        resource: `widgets.${GROUP}`,
        namespace: "a",
        name,
        until: at("30:00").toISOString(),
      });
      let text = "";
      for await (const piece of await provider.historyJson(query, at("30:00"), new AbortController().signal))
        text += piece;
      return text;
    };
    const cold = { w1: await ask("w1"), w2: "" };
    await done;
    expect(JSON.parse(logged.find((l) => l.includes("indexed"))!)).toMatchObject({ segments: 1 });
    cold.w2 = await ask("w2");
    expect(await ask("w1")).toBe(cold.w1);
    expect(JSON.parse(cold.w2).items.map((v: { what: string }) => v.what)).toEqual([
      "created",
      "updated",
      "updated",
    ]);
    await provider.close!();
  });
});

describe("the journal provider's changes", () => {
  it("serves the same window's summary again without reading the journal, until a segment lands in it", async () => {
    const {
      storage,
      segments: [, second],
    } = await withChain([
      [at("00:01"), at("10:00"), [put("01:00", "w1", 2)]],
      [at("10:00"), at("20:00"), [put("11:00", "w2", 1)]],
    ]);
    const root = storage.location.replace(/^file:\/\//, "");
    const aside = path.join(os.tmpdir(), `aside-${process.pid}-${Date.now()}`);
    await rename(path.join(root, second!), aside); // not landed yet
    const provider = journalProvider(storage);
    const signal = new AbortController().signal;
    const window = q(`since=${at("00:30").toISOString()}&until=${at("30:00").toISOString()}`);
    const names = (s: ChangesSummary) =>
      s.groups.flatMap((g) => g.objects.map((o) => `${o.name} ${o.change}`));
    // other filters are another summary
    const none = await provider.changes(q(`${window}&include-namespaces=b`), now, signal);
    expect(names(none)).toEqual([]);
    const first = await provider.changes(window, now, signal);
    expect(names(first)).toEqual(["w1 updated"]);
    expect(await provider.changes(window, now, signal)).toBe(first);
    await rename(aside, path.join(root, second!));
    const later = await provider.changes(window, now, signal);
    expect(names(later)).toEqual(["w1 updated", "w2 created"]);
    await provider.close!();
  });
});

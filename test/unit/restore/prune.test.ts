import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import type { JsonValue } from "../../../src/json/json.ts";
import type { Filters } from "../../../src/objects/filters.ts";
import type { LiveObject } from "../../../src/objects/live.ts";
import { finalizersOf } from "../../../src/restore/apply-prune.ts";
import {
  deletePhases,
  pruneCandidates,
  recordedFilters,
  sourceNamespaces,
  SyncScope,
  type PruneItem,
} from "../../../src/restore/prune.ts";
import type { ResourcePlan } from "../../../src/restore/types.ts";

const ALL: Filters = {
  includeGroups: [],
  excludeGroups: [],
  includeResources: [],
  excludeResources: [],
  includeNamespaces: [],
  excludeNamespaces: [],
};
const NO_MAPPING = { namespaceMap: new Map<string, string>() };

function resource(plural: string, namespaced: boolean, live: [string, LiveObject][] = []): ResourcePlan {
  return {
    key: `${plural}.example.com`,
    group: "example.com",
    version: "v1",
    archivedVersion: "v1",
    plural,
    kind: plural,
    namespaced,
    policy: "update",
    crdLive: true,
    statusSubresource: true,
    live: new Map(live),
  };
}

const lv = (uid: string, more: Partial<LiveObject> = {}): LiveObject => ({ uid, digest: "d", ...more });

describe("recordedFilters: what the source covers, from its manifest", () => {
  it("a manifest that records no filters took everything", () => {
    expect(recordedFilters({}, "s")).toEqual(ALL);
    expect(recordedFilters({ filters: null }, "s")).toEqual(ALL);
  });
  it("reads the lists and the selector as crd-backup records them (null: none)", () => {
    const f = recordedFilters(
      { filters: { ...ALL, includeNamespaces: ["a", "b*"], selector: "app=web" } },
      "s",
    );
    expect(f.includeNamespaces).toEqual(["a", "b*"]);
    expect(f.selector).toBe("app=web");
    expect(recordedFilters({ filters: { ...ALL, selector: null } }, "s").selector).toBeUndefined();
  });
  it("refuses a malformed record: a sync cannot tell what the source covers", () => {
    const bad: JsonValue[] = [
      [],
      "x",
      { includeNamespaces: "a" },
      { excludeNamespaces: [1] },
      { selector: 3 },
    ];
    for (const filters of bad)
      expect(() => recordedFilters({ filters }, "snap-1"), JSON.stringify(filters)).toThrow(CrdBackupError);
    expect(() => recordedFilters({ filters: { includeNamespaces: "a" } }, "snap-1")).toThrow(
      /snapshot snap-1: .*options\.filters\.includeNamespaces/,
    );
  });
});

describe("sourceNamespaces: the inverse of the namespace mapping", () => {
  it("without a mapping a namespace is its own source", () => {
    expect(sourceNamespaces(NO_MAPPING, "a")).toEqual(["a"]);
  });
  it("--namespace-map: the sources mapped there; a mapped-away name is not its own source", () => {
    const mapping = {
      namespaceMap: new Map([
        ["prod", "stage"],
        ["qa", "stage"],
        ["stage", "old"],
      ]),
    };
    expect(sourceNamespaces(mapping, "stage").sort()).toEqual(["prod", "qa"]);
    // "old" is not mapped away, so it is restored into itself too
    expect(sourceNamespaces(mapping, "old").sort()).toEqual(["old", "stage"]);
    expect(sourceNamespaces(mapping, "other")).toEqual(["other"]);
  });
  it("--namespace-prefix: only prefixed names have a source", () => {
    const mapping = { namespaceMap: new Map<string, string>(), namespacePrefix: "d-" };
    expect(sourceNamespaces(mapping, "d-a")).toEqual(["a"]);
    expect(sourceNamespaces(mapping, "a")).toEqual([]);
    expect(sourceNamespaces(mapping, "d-")).toEqual([]);
  });
});

describe("SyncScope: where a sync may delete", () => {
  it("a namespace both the restore and the source select", () => {
    const scope = new SyncScope(
      { ...ALL, includeNamespaces: ["a", "b"] },
      { ...ALL, excludeNamespaces: ["b"] },
      NO_MAPPING,
    );
    expect(scope.coversNamespace("a")).toBe(true);
    expect(scope.coversNamespace("b")).toBe(false);
    expect(scope.coversNamespace("c")).toBe(false);
  });
  it("namespaces through the mapping: the source namespace is what the filters judge", () => {
    const scope = new SyncScope({ ...ALL, includeNamespaces: ["prod"] }, ALL, {
      namespaceMap: new Map([["prod", "stage"]]),
    });
    expect(scope.coversNamespace("stage")).toBe(true);
    expect(scope.coversNamespace("prod")).toBe(false);
  });
  it("labels both selectors match", () => {
    const scope = new SyncScope({ ...ALL, selector: "app=web" }, { ...ALL, selector: "tier" }, NO_MAPPING);
    expect(scope.selectsLabels({ app: "web", tier: "1" })).toBe(true);
    expect(scope.selectsLabels({ app: "web" })).toBe(false);
    expect(scope.selectsLabels({ tier: "1" })).toBe(false);
  });
  it("resources both select", () => {
    const scope = new SyncScope(
      { ...ALL, excludeResources: ["gadgets"] },
      { ...ALL, includeGroups: ["example.com"] },
      NO_MAPPING,
    );
    expect(scope.coversResource("example.com", "widgets")).toBe(true);
    expect(scope.coversResource("example.com", "gadgets")).toBe(false);
    expect(scope.coversResource("other.io", "widgets")).toBe(false);
  });
  it("whole CRDs only when every namespace and label is selected on both sides, unmapped", () => {
    expect(new SyncScope(ALL, ALL, NO_MAPPING).partial()).toBeUndefined();
    expect(new SyncScope({ ...ALL, includeNamespaces: ["a"] }, ALL, NO_MAPPING).partial()).toMatch(
      /the restore/,
    );
    expect(new SyncScope(ALL, { ...ALL, selector: "a" }, NO_MAPPING).partial()).toMatch(/the source/);
    expect(new SyncScope(ALL, ALL, { namespaceMap: new Map([["a", "b"]]) }).partial()).toMatch(/maps/);
  });
});

describe("pruneCandidates: the live objects the source does not have, in scope", () => {
  const scope = new SyncScope({ ...ALL, includeNamespaces: ["a"] }, ALL, NO_MAPPING);
  it("deletes only what is live, in scope, selected by labels and not in the source", () => {
    const widgets = resource("widgets", true, [
      ["a/keep", lv("1")],
      ["a/extra", lv("2", { owners: ["9"] })],
      ["b/other-namespace", lv("3")],
      ["a/unlabelled", lv("4", { unselected: true })],
    ]);
    const cluster = resource("clusterthings", false, [
      ["/c-keep", lv("5")],
      ["/c-extra", lv("6")],
    ]);
    const source = new Set([widgets.live.get("a/keep"), cluster.live.get("/c-keep")]);
    const { items, uncovered } = pruneCandidates(
      [widgets, cluster],
      scope,
      (k) => source.has(k),
      () => undefined,
    );
    expect(items.map((i) => [i.resource.plural, i.namespace, i.name, i.uid, i.owners])).toEqual([
      ["widgets", "a", "extra", "2", ["9"]],
      ["clusterthings", undefined, "c-extra", "6", []],
    ]);
    expect(uncovered).toEqual([]);
  });
  it("a resource the source could not list: nothing of it deleted, and said why", () => {
    const widgets = resource("widgets", true, [["a/extra", lv("2")]]);
    const { items, uncovered } = pruneCandidates(
      [widgets],
      scope,
      () => false,
      () => "forbidden",
    );
    expect(items).toEqual([]);
    expect(uncovered).toEqual([
      { resource: "widgets.example.com", reason: "the source could not list it (forbidden)" },
    ]);
  });
});

describe("deletePhases: dependents before owners, namespaced before cluster-scoped", () => {
  const ns = resource("widgets", true);
  const cl = resource("clusterthings", false);
  const item = (r: ResourcePlan, uid: string, owners: string[] = []): PruneItem => ({
    resource: r,
    ...(r.namespaced ? { namespace: "a" } : {}),
    name: uid,
    uid,
    owners,
  });
  const order = (items: PruneItem[]) => deletePhases(items).map((p) => p.map((i) => i.uid).sort());

  it("a chain: the deepest dependent first, its owner last", () => {
    expect(order([item(ns, "root"), item(ns, "child", ["root"]), item(ns, "grandchild", ["child"])])).toEqual(
      [["grandchild"], ["child"], ["root"]],
    );
  });
  it("a cluster-scoped owner of namespaced dependents goes after them; independent objects share a phase", () => {
    expect(
      order([item(cl, "owner"), item(ns, "dep", ["owner"]), item(ns, "free"), item(cl, "lone")]),
    ).toEqual([["dep"], ["free"], ["lone", "owner"]]);
  });
  it("an owner outside the deletes does not order anything; a cycle is cut", () => {
    expect(
      order([item(ns, "x", ["not-deleted"]), item(ns, "p", ["q"]), item(ns, "q", ["p"])])
        .flat()
        .sort(),
    ).toEqual(["p", "q", "x"]);
  });
  it("nothing to delete: no phases", () => {
    expect(deletePhases([])).toEqual([]);
  });
});

describe("finalizersOf: whether a delete's answer is held by finalizers", () => {
  it("an object with a deletionTimestamp and finalizers is held by them", () => {
    expect(
      finalizersOf({
        kind: "Widget",
        metadata: { deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: ["a/b", "c"] },
      }),
    ).toEqual(["a/b", "c"]);
  });
  it("deleted at once: a Status, or the object without finalizers", () => {
    expect(finalizersOf({ kind: "Status", status: "Success" })).toBeUndefined();
    expect(finalizersOf({ kind: "Widget", metadata: { name: "w" } })).toBeUndefined();
    expect(
      finalizersOf({ kind: "Widget", metadata: { deletionTimestamp: "t", finalizers: [] } }),
    ).toBeUndefined();
  });
});

import { describe, expect, it } from "vitest";
import { objectMembers } from "../../../src/json/scan.ts";
import { EntryFilter } from "../../../src/objects/entry-filter.ts";
import type { Filters } from "../../../src/objects/filters.ts";
import { parseSelector } from "../../../src/objects/selector.ts";

const NONE: Filters = {
  includeGroups: [],
  excludeGroups: [],
  includeResources: [],
  excludeResources: [],
  includeNamespaces: [],
  excludeNamespaces: [],
};

const filters = (f: Partial<Filters>): Filters => ({ ...NONE, ...f });

const ref = (plural: string, group: string, namespace?: string, name = "w") => ({
  plural,
  group,
  namespace,
  name,
});

const body = (metadata: unknown, rest = ""): Buffer =>
  Buffer.from(
    `{"apiVersion":"example.com/v1","kind":"Widget",${rest}"metadata":${JSON.stringify(metadata)}}`,
  );

/** Bytes that are no JSON at all: a filter that reads them throws. */
const UNREADABLE = Buffer.from("not an object");

describe("EntryFilter: resource and namespace, from the entry's name alone", () => {
  it("applies the resource and namespace filters without reading the body", () => {
    const f = new EntryFilter(
      filters({
        includeGroups: ["example.com"],
        excludeResources: ["gadgets"],
        excludeNamespaces: ["kube-*"],
      }),
    );
    const cases: [ReturnType<typeof ref>, boolean][] = [
      [ref("widgets", "example.com", "prod"), true],
      [ref("widgets", "example.com"), true], // cluster-scoped: no namespace filter applies
      [ref("gadgets", "example.com", "prod"), false],
      [ref("widgets", "other.io", "prod"), false],
      [ref("widgets", "example.com", "kube-system"), false],
    ];
    for (const [r, want] of cases) {
      expect(f.selectsRef(r), `${r.plural}.${r.group} ${r.namespace}`).toBe(want);
      expect(f.selects({ ref: r, body: UNREADABLE })).toBe(want);
    }
    expect(f.readsLabels).toBe(false);
    expect(f.selectsLabels(UNREADABLE)).toBe(true);
  });

  it("takes only the resources `within` names, on top of the filters, asking once per resource", () => {
    const asked: string[] = [];
    const within = {
      has: (r: string) => {
        asked.push(r);
        return r === "widgets.example.com" || r === "gadgets.example.com";
      },
    };
    const f = new EntryFilter(filters({ excludeResources: ["gadgets"] }), within);
    for (let i = 0; i < 3; i++) {
      expect(f.selectsRef(ref("widgets", "example.com", "a"))).toBe(true);
      expect(f.selectsRef(ref("widgets", "example.com", "b"))).toBe(true);
      expect(f.selectsRef(ref("gadgets", "example.com", "a"))).toBe(false); // excluded by the filters
      expect(f.selectsRef(ref("things", "example.com", "a"))).toBe(false); // not within
    }
    expect(asked.sort()).toEqual(["things.example.com", "widgets.example.com"]);
  });

  it("takes a Map of resources as `within`", () => {
    const f = new EntryFilter(NONE, new Map([["widgets.example.com", {}]]));
    expect(f.selectsRef(ref("widgets", "example.com", "a"))).toBe(true);
    expect(f.selectsRef(ref("widgets", "example.org", "a"))).toBe(false);
  });
});

describe("EntryFilter: --name globs", () => {
  it("picks objects by name, with the other filters, and every name without any", () => {
    const f = new EntryFilter(filters({ names: ["web-*", "db"], includeNamespaces: ["prod"] }));
    const cases: [ReturnType<typeof ref>, boolean][] = [
      [ref("widgets", "example.com", "prod", "web-1"), true],
      [ref("widgets", "example.com", "prod", "db"), true],
      [ref("widgets", "example.com", "prod", "db-2"), false],
      [ref("widgets", "example.com", "prod", "my-web-1"), false],
      [ref("widgets", "example.com", "dev", "web-1"), false],
      [ref("widgets", "example.com", undefined, "web-x"), true],
    ];
    for (const [r, want] of cases) expect(f.selectsRef(r), `${r.namespace}/${r.name}`).toBe(want);
    expect(new EntryFilter(filters({ names: [] })).selectsRef(ref("widgets", "example.com", "a", "x"))).toBe(
      true,
    );
    expect(
      new EntryFilter(filters({ names: ["w?"] })).selectsRef(ref("widgets", "example.com", "a", "w1")),
    ).toBe(true);
  });
});

describe("EntryFilter: the label selector, on metadata.labels only", () => {
  const f = new EntryFilter(filters({ selector: "app=web,tier!=db" }));

  it("selects by the labels, reading the body only for names that are selected", () => {
    expect(f.readsLabels).toBe(true);
    const web = body({ name: "a", labels: { app: "web", tier: "front" } });
    const db = body({ name: "b", labels: { app: "web", tier: "db" } });
    expect(f.selects({ ref: ref("widgets", "example.com", "x"), body: web })).toBe(true);
    expect(f.selects({ ref: ref("widgets", "example.com", "x"), body: db })).toBe(false);
    const excluded = new EntryFilter(filters({ selector: "app=web", excludeNamespaces: ["x"] }));
    expect(excluded.selects({ ref: ref("widgets", "example.com", "x"), body: UNREADABLE })).toBe(false);
  });

  it("treats a missing or malformed metadata or labels as no labels", () => {
    const bare = new EntryFilter(filters({ selector: "!app" }));
    for (const b of [
      Buffer.from('{"kind":"Widget"}'),
      body({ name: "a" }),
      body({ name: "a", labels: null }),
      body({ name: "a", labels: ["app"] }),
      body({ name: "a", labels: "app=web" }),
      body(null),
      body("metadata"),
    ]) {
      expect(bare.selectsLabels(b), b.toString()).toBe(true);
      expect(f.selectsLabels(b), b.toString()).toBe(false);
    }
  });

  it("finds labels wherever they are, however the keys are spelt, the last of a repeated key (as JSON.parse)", () => {
    const big = { "last-applied": "x".repeat(100_000), nested: { labels: { app: "no" } } };
    expect(
      f.selectsLabels(
        body({ annotations: big, name: "a", labels: { app: "web" } }, '"spec":{"metadata":{}},'),
      ),
    ).toBe(true);
    expect(f.selectsLabels(Buffer.from('{"metad\\u0061ta":{"l\\u0061bels":{"app":"web"}}}'))).toBe(true);
    expect(f.selectsLabels(Buffer.from('{"metadata":{"labels":{"app":"db"},"labels":{"app":"web"}}}'))).toBe(
      true,
    );
    expect(
      f.selectsLabels(Buffer.from('{"metadata":{"labels":{"app":"web"}},"metadata":{"name":"a"}}')),
    ).toBe(false);
  });

  it("uses the top-level members a caller has scanned, with the same verdict", () => {
    const bodies = [
      body({ name: "a", labels: { app: "web" } }),
      body({ name: "b", labels: { app: "web", tier: "db" } }),
      body({ name: "c" }),
      Buffer.from('{"metadata":{"labels":{"app":"db"}},"metadata":{"labels":{"app":"web"}}}'),
    ];
    for (const b of bodies) {
      const { members } = objectMembers(b, 0);
      expect(f.selectsLabels(b, members)).toBe(f.selectsLabels(b));
    }
  });

  it("agrees with parsing the whole body, selector by selector", () => {
    const labelSets: Record<string, string>[] = [
      {},
      { app: "web" },
      { app: "web", tier: "db" },
      { app: "api", tier: "front", "example.com/team": "a" },
    ];
    const objects = labelSets.map((labels, i) => ({ metadata: { name: `o${i}`, labels }, spec: { n: i } }));
    for (const selector of ["app=web", "app in (web,api)", "tier notin (db)", "example.com/team", "!tier"]) {
      const filter = new EntryFilter(filters({ selector }));
      const matches = parseSelector(selector);
      for (const o of objects) {
        const b = Buffer.from(JSON.stringify(o));
        expect(filter.selectsLabels(b), `${selector} on ${b}`).toBe(matches(o.metadata.labels));
      }
    }
  });
});

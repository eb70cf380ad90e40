import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import type { JsonObject } from "../../../src/json/json.ts";
import {
  parseVersionMap,
  targetVersions,
  versionLine,
  versionMapProblem,
  versionReport,
  versionVerdict,
  type TargetVersions,
} from "../../../src/restore/versions.ts";

const target = (
  served: string[],
  storage: string,
  source: TargetVersions["source"] = "live",
): TargetVersions => ({
  source,
  servedVersions: served,
  storageVersion: storage,
  strategy: "None",
});

describe("the version verdict", () => {
  const rows: [string, string, TargetVersions, { from: string; to: string } | undefined, string][] = [
    ["served and stored as archived", "v1alpha1", target(["v1alpha1"], "v1alpha1"), undefined, "same"],
    [
      "served, stored as another",
      "v1alpha1",
      target(["v1alpha1", "v1beta1"], "v1beta1"),
      undefined,
      "converted",
    ],
    ["not served", "v1alpha1", target(["v1beta1"], "v1beta1"), undefined, "not-served"],
    ["nothing served", "v1alpha1", target([], ""), undefined, "not-served"],
    [
      "mapped to a served version",
      "v1alpha1",
      target(["v1beta1"], "v1beta1"),
      { from: "v1alpha1", to: "v1beta1" },
      "mapped",
    ],
    // a map is the user's word even where the server would convert
    [
      "mapped though served",
      "v1alpha1",
      target(["v1alpha1", "v1beta1"], "v1beta1"),
      { from: "v1alpha1", to: "v1beta1" },
      "mapped",
    ],
    [
      "a map for another version does not apply",
      "v1",
      target(["v1beta1"], "v1beta1"),
      { from: "v1alpha1", to: "v1beta1" },
      "not-served",
    ],
    [
      "a map to a version not served does not apply",
      "v1alpha1",
      target(["v1alpha1", "v2"], "v2"),
      { from: "v1alpha1", to: "v1beta1" },
      "converted",
    ],
  ];
  it.each(rows)("%s", (_, archived, t, map, kind) => {
    expect(versionVerdict(archived, t, map).kind).toBe(kind);
  });

  it("says what a mapped verdict maps", () => {
    expect(
      versionVerdict("v1alpha1", target(["v1beta1"], "v1beta1"), { from: "v1alpha1", to: "v1beta1" }),
    ).toEqual({
      kind: "mapped",
      from: "v1alpha1",
      to: "v1beta1",
    });
  });
});

describe("whether a --version-map can be used", () => {
  const map = { from: "v1alpha1", to: "v1beta1" };
  it("accepts a map from the archived version to a served one", () => {
    expect(versionMapProblem("v1alpha1", target(["v1beta1"], "v1beta1"), map)).toBeUndefined();
  });
  it("refuses a FROM the snapshot's objects are not at", () => {
    expect(versionMapProblem("v1", target(["v1beta1"], "v1beta1"), map)).toBe(
      "the snapshot's objects are at v1, not v1alpha1",
    );
  });
  it("refuses a TO the cluster's CRD does not serve", () => {
    expect(versionMapProblem("v1alpha1", target(["v1alpha1", "v2"], "v2"), map)).toBe(
      "the cluster's CRD does not serve v1beta1 (it serves v1alpha1, v2)",
    );
  });
  it("refuses a map for a CRD the restore creates from the snapshot", () => {
    expect(
      versionMapProblem("v1alpha1", target(["v1alpha1", "v1beta1"], "v1alpha1", "snapshot"), map),
    ).toMatch(/creates it from the snapshot/);
  });
});

describe("the target's versions, read from a CRD", () => {
  const crd = (conversion?: JsonObject): JsonObject => ({
    metadata: { name: "widgets.example.com" },
    spec: {
      group: "example.com",
      names: { plural: "widgets", kind: "Widget" },
      scope: "Namespaced",
      versions: [
        { name: "v1alpha1", served: true, storage: false },
        { name: "v1beta1", served: true, storage: true },
        { name: "v0", served: false, storage: false },
      ],
      ...(conversion ? { conversion } : {}),
    },
  });
  it("reads served versions, the storage version and strategy None by default", () => {
    expect(targetVersions(crd(), "live")).toEqual({
      source: "live",
      servedVersions: ["v1alpha1", "v1beta1"],
      storageVersion: "v1beta1",
      strategy: "None",
    });
  });
  it("names a webhook's service in the line and the report", () => {
    const t = targetVersions(
      crd({
        strategy: "Webhook",
        webhook: {
          conversionReviewVersions: ["v1"],
          clientConfig: { service: { namespace: "widget-system", name: "widget-webhook", path: "/convert" } },
        },
      }),
      "live",
    );
    expect(t.strategy).toBe("Webhook");
    const r = versionReport("widgets.example.com", "v1alpha1", t, versionVerdict("v1alpha1", t));
    expect(r).toEqual({
      resource: "widgets.example.com",
      archivedVersion: "v1alpha1",
      crd: "live",
      servedVersions: ["v1alpha1", "v1beta1"],
      storageVersion: "v1beta1",
      conversion: "Webhook",
      webhook: "service widget-system/widget-webhook:443/convert",
      verdict: "converted",
    });
    expect(versionLine(r)).toBe(
      "widgets.example.com v1alpha1: converted by the server; the cluster's CRD serves v1alpha1, v1beta1, stores v1beta1, conversion Webhook (service widget-system/widget-webhook:443/convert)",
    );
  });
  it("says a mapped and a not-served verdict on one line", () => {
    const t = target(["v1beta1"], "v1beta1");
    const map = { from: "v1alpha1", to: "v1beta1" };
    expect(
      versionLine(versionReport("w.example.com", "v1alpha1", t, versionVerdict("v1alpha1", t, map))),
    ).toBe(
      "w.example.com v1alpha1: mapped v1alpha1->v1beta1; the cluster's CRD serves v1beta1, stores v1beta1, conversion None",
    );
    expect(versionLine(versionReport("w.example.com", "v1alpha1", t, versionVerdict("v1alpha1", t)))).toMatch(
      /^w\.example\.com v1alpha1: not served \(a conflict/,
    );
  });
});

describe("--version-map parsing", () => {
  it("parses repeated maps by resource", () => {
    expect(parseVersionMap(["widgets.example.com=v1alpha1:v1beta1", "gadgets.example.com=v1:v2"])).toEqual(
      new Map([
        ["widgets.example.com", { from: "v1alpha1", to: "v1beta1" }],
        ["gadgets.example.com", { from: "v1", to: "v2" }],
      ]),
    );
  });
  const bad: [string, RegExp][] = [
    ["widgets.example.com", /takes RESOURCE=FROM:TO/],
    ["widgets.example.com=v1alpha1", /takes RESOURCE=FROM:TO/],
    ["widgets.example.com=v1alpha1:", /takes RESOURCE=FROM:TO/],
    ["=v1:v2", /takes RESOURCE=FROM:TO/],
    ["widgets.example.com=v1:v2:v3", /takes RESOURCE=FROM:TO/],
    ["widgets=v1alpha1:v1beta1", /plural\.group/],
    ["widgets.example.com=v1:v1", /FROM and TO are the same version/],
  ];
  it.each(bad)("refuses %s as a usage error", (value, message) => {
    let thrown: unknown;
    try {
      parseVersionMap([value]);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(CrdBackupError);
    expect((thrown as CrdBackupError).code).toBe("USAGE");
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message).not.toContain("\n");
  });
  it("refuses one resource mapped twice", () => {
    expect(() => parseVersionMap(["w.example.com=v1:v2", "w.example.com=v1:v3"])).toThrow(/mapped twice/);
  });
});

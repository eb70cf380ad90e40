import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import {
  globToRegExp,
  namespaceSelected,
  resourceSelected,
  splitList,
  validateSelector,
  type Filters,
} from "../../../src/objects/filters.ts";

const NONE: Filters = {
  includeGroups: [],
  excludeGroups: [],
  includeResources: [],
  excludeResources: [],
  includeNamespaces: [],
  excludeNamespaces: [],
};

const filters = (f: Partial<Filters>): Filters => ({ ...NONE, ...f });

/** [group, plural] of the resources a cluster might serve. */
const RESOURCES: [string, string][] = [
  ["example.com", "widgets"],
  ["example.com", "gadgets"],
  ["apps.example.com", "widgets"],
  ["cert-manager.io", "certificates"],
  ["cert-manager.io", "issuers"],
  ["monitoring.coreos.com", "servicemonitors"],
];

function taken(f: Partial<Filters>): string[] {
  return RESOURCES.filter(([g, p]) => resourceSelected(filters(f), g, p)).map(([g, p]) => `${p}.${g}`);
}

describe("globToRegExp: shell-style globs", () => {
  it("* matches any run, ? one character, both within the whole name only", () => {
    const star = globToRegExp("*.example.com");
    expect(star.test("apps.example.com")).toBe(true);
    expect(star.test(".example.com")).toBe(true);
    expect(star.test("example.com")).toBe(false);
    expect(star.test("apps.example.com.evil")).toBe(false);
    const one = globToRegExp("v?");
    expect(one.test("v1")).toBe(true);
    expect(one.test("v")).toBe(false);
    expect(one.test("v10")).toBe(false);
    expect(globToRegExp("*").test("")).toBe(true);
    expect(globToRegExp("a*b*c").test("a--b--c")).toBe(true);
    expect(globToRegExp("a*b*c").test("a--c--b")).toBe(false);
  });

  it("takes every other character literally, regular-expression syntax included", () => {
    expect(globToRegExp("example.com").test("exampleXcom")).toBe(false);
    expect(globToRegExp("a+b").test("aab")).toBe(false);
    expect(globToRegExp("a+b").test("a+b")).toBe(true);
    for (const literal of ["(a|b)", "[ab]", "a{2}", "^a$", "a\\d", "$x", "a|b"]) {
      expect(globToRegExp(literal).test(literal), literal).toBe(true);
    }
    expect(globToRegExp("[ab]").test("a")).toBe(false);
    expect(globToRegExp("a|b").test("a")).toBe(false);
    expect(globToRegExp("a\\d").test("a1")).toBe(false);
  });

  it("gives the same answer however often a glob is used (cached, no global-flag state)", () => {
    expect(globToRegExp("w*")).toBe(globToRegExp("w*"));
    for (let i = 0; i < 3; i++) expect(globToRegExp("w*").test("widgets")).toBe(true);
  });
});

describe("resourceSelected: include and exclude groups and resources", () => {
  it("takes everything when no list is given", () => {
    expect(taken({})).toHaveLength(RESOURCES.length);
  });

  it("includes groups by name or glob, and nothing else", () => {
    expect(taken({ includeGroups: ["example.com"] })).toEqual(["widgets.example.com", "gadgets.example.com"]);
    expect(taken({ includeGroups: ["*.example.com"] })).toEqual(["widgets.apps.example.com"]);
    expect(taken({ includeGroups: ["*example.com"] })).toEqual([
      "widgets.example.com",
      "gadgets.example.com",
      "widgets.apps.example.com",
    ]);
    expect(taken({ includeGroups: ["cert-manager.io", "monitoring.*"] })).toEqual([
      "certificates.cert-manager.io",
      "issuers.cert-manager.io",
      "servicemonitors.monitoring.coreos.com",
    ]);
    expect(taken({ includeGroups: ["nothing.io"] })).toEqual([]);
  });

  it("excludes groups, an exclusion winning over an inclusion", () => {
    expect(taken({ excludeGroups: ["*.io", "*.com"] })).toEqual([]);
    expect(taken({ excludeGroups: ["cert-manager.io"] })).toHaveLength(RESOURCES.length - 2);
    expect(taken({ includeGroups: ["*example.com"], excludeGroups: ["apps.*"] })).toEqual([
      "widgets.example.com",
      "gadgets.example.com",
    ]);
    expect(taken({ includeGroups: ["example.com"], excludeGroups: ["example.com"] })).toEqual([]);
  });

  it("matches resources as plural.group or as the plural alone", () => {
    expect(taken({ includeResources: ["widgets"] })).toEqual([
      "widgets.example.com",
      "widgets.apps.example.com",
    ]);
    expect(taken({ includeResources: ["widgets.example.com"] })).toEqual(["widgets.example.com"]);
    expect(taken({ includeResources: ["*.cert-manager.io"] })).toEqual([
      "certificates.cert-manager.io",
      "issuers.cert-manager.io",
    ]);
    expect(taken({ includeResources: ["*s.*.example.com"] })).toEqual(["widgets.apps.example.com"]);
    expect(taken({ excludeResources: ["widgets"] })).toEqual([
      "gadgets.example.com",
      "certificates.cert-manager.io",
      "issuers.cert-manager.io",
      "servicemonitors.monitoring.coreos.com",
    ]);
    expect(taken({ excludeResources: ["widgets.apps.example.com"] })).toHaveLength(RESOURCES.length - 1);
    // a plural is not matched against the group alone
    expect(taken({ includeResources: ["example.com"] })).toEqual([]);
  });

  it("needs both the group and the resource to be taken", () => {
    expect(taken({ includeGroups: ["example.com"], includeResources: ["widgets"] })).toEqual([
      "widgets.example.com",
    ]);
    expect(taken({ includeGroups: ["cert-manager.io"], excludeResources: ["issuers"] })).toEqual([
      "certificates.cert-manager.io",
    ]);
    expect(taken({ excludeGroups: ["example.com"], includeResources: ["widgets.example.com"] })).toEqual([]);
  });
});

describe("namespaceSelected", () => {
  const names = ["default", "team-a", "team-b", "kube-system", "prod"];
  const picked = (f: Partial<Filters>) => names.filter((n) => namespaceSelected(filters(f), n));

  it("takes every namespace when no list is given, and includes or excludes by name or glob", () => {
    expect(picked({})).toEqual(names);
    expect(picked({ includeNamespaces: ["team-*"] })).toEqual(["team-a", "team-b"]);
    expect(picked({ includeNamespaces: ["team-?", "prod"] })).toEqual(["team-a", "team-b", "prod"]);
    expect(picked({ excludeNamespaces: ["kube-*", "default"] })).toEqual(["team-a", "team-b", "prod"]);
    expect(picked({ includeNamespaces: ["team-*"], excludeNamespaces: ["*-b"] })).toEqual(["team-a"]);
    expect(picked({ includeNamespaces: ["team"] })).toEqual([]);
  });

  it("always takes cluster-scoped objects, whatever the namespace filters", () => {
    expect(namespaceSelected(filters({ includeNamespaces: ["team-a"] }), undefined)).toBe(true);
    expect(namespaceSelected(filters({ excludeNamespaces: ["*"] }), undefined)).toBe(true);
    expect(namespaceSelected(filters({ excludeNamespaces: ["*"] }), "")).toBe(false);
  });
});

describe("splitList: repeated and comma-separated flag values", () => {
  it("splits, trims and drops empty entries, in order", () => {
    expect(splitList(["a,b", "c"])).toEqual(["a", "b", "c"]);
    expect(splitList(" a , b ,, ")).toEqual(["a", "b"]);
    expect(splitList(["x", "", " , "])).toEqual(["x"]);
    expect(splitList("*.example.com")).toEqual(["*.example.com"]);
    expect(splitList(undefined)).toEqual([]);
    expect(splitList("")).toEqual([]);
    expect(splitList([])).toEqual([]);
  });
});

describe("validateSelector", () => {
  it("passes a selector, or none, through unchanged", () => {
    expect(validateSelector(undefined)).toBeUndefined();
    expect(validateSelector("app=web")).toBe("app=web");
    expect(validateSelector(" app ")).toBe(" app ");
  });

  it("refuses an empty selector as a usage error", () => {
    for (const empty of ["", "  ", "\t\n"]) {
      expect(() => validateSelector(empty)).toThrow(CrdBackupError);
      try {
        validateSelector(empty);
      } catch (e) {
        expect((e as CrdBackupError).code).toBe("USAGE");
        expect((e as CrdBackupError).message).toBe("--selector is empty");
      }
    }
  });
});

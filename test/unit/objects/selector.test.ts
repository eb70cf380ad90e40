import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import { parseSelector } from "../../../src/objects/selector.ts";

/** Label sets, each named, to see which a selector picks. */
const OBJECTS: Record<string, Record<string, string>> = {
  web: { app: "web", tier: "frontend", "app.kubernetes.io/name": "web" },
  api: { app: "api", tier: "backend" },
  db: { app: "db", tier: "backend", critical: "" },
  bare: {},
  blank: { app: "" },
};

function picks(selector: string): string[] {
  const matches = parseSelector(selector);
  return Object.entries(OBJECTS)
    .filter(([, labels]) => matches(labels))
    .map(([name]) => name);
}

describe("parseSelector: Kubernetes label selectors for archived objects", () => {
  it("equality: = and == the same, and != also picking objects without the label", () => {
    expect(picks("app=web")).toEqual(["web"]);
    expect(picks("app==web")).toEqual(["web"]);
    expect(picks("app!=web")).toEqual(["api", "db", "bare", "blank"]);
    expect(picks("tier=backend")).toEqual(["api", "db"]);
    expect(picks("app=nothing")).toEqual([]);
    // an empty value is a value: it matches the empty label, not a missing one
    expect(picks("app=")).toEqual(["blank"]);
    expect(picks("critical=")).toEqual(["db"]);
    expect(picks("app!=")).toEqual(["web", "api", "db", "bare"]);
  });

  it("set-based: in needs the label and one of the values, notin also picks objects without it", () => {
    expect(picks("app in (web,api)")).toEqual(["web", "api"]);
    expect(picks("app in (db)")).toEqual(["db"]);
    expect(picks("app notin (web,api)")).toEqual(["db", "bare", "blank"]);
    expect(picks("tier notin (backend)")).toEqual(["web", "bare", "blank"]);
    expect(picks("app in ( web , db )")).toEqual(["web", "db"]);
    expect(picks("missing in (x)")).toEqual([]);
    expect(picks("missing notin (x)")).toEqual(Object.keys(OBJECTS));
  });

  it("existence: key and !key", () => {
    expect(picks("critical")).toEqual(["db"]);
    expect(picks("!critical")).toEqual(["web", "api", "bare", "blank"]);
    expect(picks("! critical")).toEqual(["web", "api", "bare", "blank"]);
    expect(picks("app")).toEqual(["web", "api", "db", "blank"]);
    expect(picks("!app")).toEqual(["bare"]);
  });

  it("prefixed keys, with dots, slashes and dashes", () => {
    expect(picks("app.kubernetes.io/name=web")).toEqual(["web"]);
    expect(picks("app.kubernetes.io/name")).toEqual(["web"]);
    expect(picks("!app.kubernetes.io/name")).toEqual(["api", "db", "bare", "blank"]);
    expect(parseSelector("my-org.io/team_x in (a.b-c_d)")({ "my-org.io/team_x": "a.b-c_d" })).toBe(true);
  });

  it("ANDs comma-separated requirements, commas inside (...) belonging to the set", () => {
    expect(picks("tier=backend,app!=db")).toEqual(["api"]);
    expect(picks("app in (web,api,db), tier notin (frontend)")).toEqual(["api", "db"]);
    expect(picks(" tier = backend , !critical ")).toEqual(["api"]);
    expect(picks("app,!critical,app notin (blank,)")).toEqual(["web", "api"]);
    expect(picks("app=web,app=api")).toEqual([]);
  });

  it("an empty selector picks everything", () => {
    expect(picks("")).toEqual(Object.keys(OBJECTS));
    expect(picks("   ")).toEqual(Object.keys(OBJECTS));
  });

  it.each([
    "app=web=x",
    "=web",
    "app in web",
    "app in (web",
    "app notin web,api)",
    "app>1",
    "app=we b",
    "app=a/b",
    "!",
    "!app=web",
    "app in (x), tier ~ y",
    "app in (a) (b)",
  ])("refuses %j as a usage error naming what it could not read", (selector) => {
    let error: unknown;
    try {
      parseSelector(selector);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CrdBackupError);
    expect((error as CrdBackupError).code).toBe("USAGE");
    expect((error as CrdBackupError).message).toMatch(/^--selector: cannot parse "[^"]+"$/);
  });

  it("names the one requirement it could not read, not the whole selector", () => {
    expect(() => parseSelector("app=web, tier ~ y, !critical")).toThrow(
      '--selector: cannot parse "tier ~ y"',
    );
  });

  it("label keys named like Object.prototype's members are labels like any other", () => {
    expect(parseSelector("!constructor")({ app: "web" })).toBe(true);
    expect(parseSelector("toString")({})).toBe(false);
    expect(parseSelector("constructor in (x)")({})).toBe(false);
    expect(parseSelector("constructor notin (x)")({})).toBe(true);
    expect(parseSelector("hasOwnProperty=x")({ hasOwnProperty: "x" })).toBe(true);
  });
});

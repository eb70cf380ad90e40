import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import {
  AmbiguousResourceError,
  parseObjectArg,
  resolveResource,
  type ResourceInfo,
} from "../../../src/history/resource.ts";

const r = (plural: string, group: string, kind: string): ResourceInfo => ({
  plural,
  group,
  kind,
  namespaced: true,
  version: "v1",
});
const known = [
  r("certificates", "cert-manager.io", "Certificate"),
  r("certificates", "acme.example.com", "Certificate"),
  r("applications", "argoproj.io", "Application"),
  r("widgets", "example.com", "Gadget"),
];

describe("resolving a resource as kubectl names it", () => {
  it("takes plural, kind, plural.group and kind.group, in any letter case", () => {
    for (const name of [
      "applications",
      "Application",
      "application",
      "applications.argoproj.io",
      "Application.argoproj.io",
    ])
      expect(resolveResource(known, name).group, name).toBe("argoproj.io");
    expect(resolveResource(known, "gadget").plural).toBe("widgets");
  });

  it("an exact plural.group is never ambiguous", () => {
    expect(resolveResource(known, "certificates.cert-manager.io").group).toBe("cert-manager.io");
    expect(resolveResource(known, "Certificate.acme.example.com").group).toBe("acme.example.com");
  });

  it("an ambiguous name is a usage error listing every candidate", () => {
    const e = (() => {
      try {
        resolveResource(known, "certificate");
      } catch (err) {
        return err;
      }
    })() as AmbiguousResourceError;
    expect(e).toBeInstanceOf(AmbiguousResourceError);
    expect(e.code).toBe("USAGE");
    expect(e.candidates).toEqual(["certificates.acme.example.com", "certificates.cert-manager.io"]);
    expect(e.message).toContain("certificates.acme.example.com, certificates.cert-manager.io");
  });

  it("an unknown one is a usage error naming what is archived", () => {
    expect(() => resolveResource(known, "sprockets")).toThrow(
      /unknown resource "sprockets": no archived CRD serves it \(archived: applications\.argoproj\.io/,
    );
    expect(() => resolveResource([], "x")).toThrow(CrdBackupError);
  });

  it("parses <resource>/<name>", () => {
    expect(parseObjectArg("widgets.example.com/w1")).toEqual({ resource: "widgets.example.com", name: "w1" });
    for (const bad of ["widgets", "/w1", "widgets/", "a/b/c"])
      expect(() => parseObjectArg(bad), bad).toThrow(/<resource>\/<name>/);
  });
});

/**
 * resources[] of a manifest: group, version and plural become entry names and API paths, so they
 * obey the archive entry grammar; kind is an identifier. A forged value refuses the whole manifest.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CrdBackupError } from "../../../src/errors.ts";
import {
  parseManifest,
  plainManifest,
  serializeManifest,
  type Manifest,
} from "../../../src/archive/index.ts";

/** The documented example (docs/format.md), with resources[0] changed by `change`. */
function withResource(change: Record<string, unknown>): string {
  const doc = readFileSync(new URL("../../../docs/format.md", import.meta.url), "utf8");
  const section = doc.slice(doc.indexOf("## Manifest format"));
  const json = /```json\n([\s\S]*?)\n```/.exec(section)![1]!;
  const m = JSON.parse(json) as { resources: Record<string, unknown>[] };
  m.resources[0] = { ...m.resources[0], ...change };
  return JSON.stringify(m);
}

function refusal(text: string): CrdBackupError {
  try {
    parseManifest(text);
  } catch (e) {
    expect(e).toBeInstanceOf(CrdBackupError);
    return e as CrdBackupError;
  }
  throw new Error("expected the manifest to be refused");
}

describe("manifest resources[]", () => {
  it.each([
    ["version", "v1/../../api/v1/namespaces/x/secrets"],
    ["version", "v1?dryRun=All"],
    ["version", "v1#x"],
    ["version", ""],
    ["version", "V1"],
    ["group", "cert-manager.io/v1/namespaces"],
    ["group", ".."],
    ["group", ""],
    ["group", "a..b"],
    ["plural", "certificates/status"],
    ["plural", "certificates%2Fstatus"],
    ["plural", "x".repeat(254)],
    ["kind", ""],
    ["kind", "Certificate\n"],
    ["kind", "Cert ificate"],
    ["kind", "1Certificate"],
    ["kind", "Certificate\u001b[31m"],
    ["kind", "C".repeat(64)],
  ])("refuses %s %j as ARCHIVE_INVALID, in one line naming the resource", (field, value) => {
    const e = refusal(withResource({ [field]: value }));
    expect(e.code).toBe("ARCHIVE_INVALID");
    expect(e.message).not.toMatch(/[\n\r]/);
    expect(e.message).not.toContain("\u001b");
    expect(e.message).toMatch(
      new RegExp(
        `^manifest of snapshot 20261122T041500Z-1a2b3c4d: resources\\[0\\]\\.${field} of resource "`,
      ),
    );
    if (field !== "group" && field !== "plural")
      expect(e.message).toContain('"certificates.cert-manager.io"');
  });

  it.each([
    ["kind", "X509Certificate"],
    ["kind", "Web-Site"],
    ["version", "v1beta1"],
    ["group", "gateway.networking.k8s.io"],
    ["plural", "policies_v2"],
  ])("accepts %s %j, as a CRD may have it", (field, value) => {
    expect(
      plainManifest(parseManifest(withResource({ [field]: value }))).resources[0]![field as "kind"],
    ).toBe(value);
  });

  it("the writer side refuses the same: a manifest that would be refused is never written", () => {
    const m = plainManifest(parseManifest(withResource({})));
    const forged: Manifest = {
      ...m,
      resources: [{ ...m.resources[0]!, version: "v1/../../api" }, m.resources[1]!],
    };
    expect(() => serializeManifest(forged)).toThrow(/resources\[0\]\.version of resource/);
  });
});

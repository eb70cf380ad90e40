import { describe, expect, it } from "vitest";
import {
  acceptingSigners,
  matchPatternList,
  parseAllowedSigners,
} from "../../../src/signing/allowed-signers.ts";

// a fixed ed25519 public key (ssh-keygen output), and its fingerprint as ssh-keygen -l prints it
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJTIyV1AJTBcoCsNi7s/EveF7FjCfUAvTCBrXsFZWTUa";
const FINGERPRINT = "SHA256:I5zwwlWDOAL1W5L2+4DFZwSV1m0rh74u+nD+lVg6Ujw";
const blob = Buffer.from(KEY.split(" ")[1]!, "base64");

describe("allowed_signers", () => {
  it("reads principals, options, key and comment; skips comments and blank lines", () => {
    const t = parseAllowedSigners(
      [
        "# backups",
        "",
        `ops@example.com,*@backup.example.com ${KEY} the CronJob's key`,
        `"quoted principal" namespaces="file,crd-backup",valid-after="20200101Z" ${KEY}`,
        "rsa@example.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7",
      ].join("\n"),
      "f",
    );
    expect(t.signers.map((s) => [s.principals, s.fingerprint, s.namespaces, s.line])).toEqual([
      ["ops@example.com,*@backup.example.com", FINGERPRINT, undefined, 3],
      ["quoted principal", FINGERPRINT, "file,crd-backup", 4],
      ["rsa@example.com", expect.stringMatching(/^SHA256:/), undefined, 5],
    ]);
    expect(t.signers[1]!.validAfter?.toISOString()).toBe("2020-01-01T00:00:00.000Z");
    expect(acceptingSigners(t, blob).map((s) => s.line)).toEqual([3, 4]);
  });

  it("honours namespaces= and valid-after/valid-before as ssh-keygen does", () => {
    const accept = (options: string, now = new Date("2026-12-07T00:00:00Z")) =>
      acceptingSigners(parseAllowedSigners(`p ${options} ${KEY}`, "f"), blob, now).length === 1;
    expect(accept('namespaces="file"')).toBe(false);
    expect(accept('namespaces="crd-*"')).toBe(true);
    expect(accept('namespaces="*,!crd-backup"')).toBe(false);
    expect(accept('valid-before="20261206Z"')).toBe(false);
    expect(accept('valid-before="202612070000Z"')).toBe(true);
    expect(accept('valid-after="20261208000001Z"')).toBe(false);
    expect(accept("VALID-AFTER=20261201Z")).toBe(true);
  });

  it("pattern-lists: *, ?, negation", () => {
    expect(matchPatternList("crd-backup", "file,crd-backup")).toBe(true);
    expect(matchPatternList("crd-backup", "crd-backu?")).toBe(true);
    expect(matchPatternList("crd-backup", "*,!crd*")).toBe(false);
    expect(matchPatternList("crd-backup", "file")).toBe(false);
  });

  it("refuses what it cannot honour in one line naming the line", () => {
    const bad: [string, string][] = [
      [`*@example.com cert-authority ${KEY}`, "f line 1: cert-authority is not supported"],
      [`p no-touch-required ${KEY}`, 'f line 1: option "no-touch-required" is not supported'],
      [`p valid-after="2026" ${KEY}`, 'f line 1: valid-after="2026" is not YYYYMMDD[Z]'],
      ["p ssh-ed25519", 'f line 1: not "principals [options] keytype base64-key"'],
      [KEY, 'f line 1: not "principals [options] keytype base64-key"'],
      ["p ssh-ed25519 !!!!", "f line 1: the key is not base64"],
      [`p ssh-rsa ${KEY.split(" ")[1]}`, "f line 1: the key is ssh-ed25519, the line says ssh-rsa"],
      [`p namespaces="unclosed ${KEY}`, "f line 1: an unclosed double quote"],
      ["# nothing", "f: no signer in it"],
    ];
    for (const [line, message] of bad) expect(() => parseAllowedSigners(line, "f"), line).toThrow(message);
  });
});

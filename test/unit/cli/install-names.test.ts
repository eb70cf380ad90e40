import { describe, expect, it } from "vitest";
import { packageDirOf } from "../../../cli/bundle.ts";
import { programName } from "../../../cli/program.ts";

describe("programName: how help and usage lines name the CLI", () => {
  it("is `kubectl crd-backup` when run as the kubectl plugin's executable, on any path", () => {
    expect(programName("/usr/local/bin/kubectl-crd_backup")).toBe("kubectl crd-backup");
    expect(programName("kubectl-crd_backup")).toBe("kubectl crd-backup");
    expect(programName("C:\\npm\\kubectl-crd_backup.cmd")).toBe("kubectl crd-backup");
  });

  it("is crd-backup otherwise", () => {
    for (const argv1 of ["/usr/local/bin/crd-backup", "/app/dist/cli/main.js", "cli/main.ts", undefined, ""])
      expect(programName(argv1)).toBe("crd-backup");
    // only the plugin's exact name: kubectl's own binary, or a look-alike, is not it
    expect(programName("/usr/bin/kubectl")).toBe("crd-backup");
    expect(programName("/bin/kubectl-crd_backup-old")).toBe("crd-backup");
  });
});

describe("packageDirOf: the package a bundled module comes from", () => {
  it("is the innermost node_modules/<name>, scoped or not", () => {
    expect(packageDirOf("/r/node_modules/commander/lib/command.js")).toBe("/r/node_modules/commander");
    expect(packageDirOf("/r/node_modules/@aws-sdk/client-s3/dist-es/index.js")).toBe(
      "/r/node_modules/@aws-sdk/client-s3",
    );
    // a nested copy belongs to itself, not to the package it is nested in
    expect(packageDirOf("/r/node_modules/a/node_modules/@s/b/x.js")).toBe(
      "/r/node_modules/a/node_modules/@s/b",
    );
  });

  it("is undefined for the project's own modules", () => {
    expect(packageDirOf("/r/src/index.ts")).toBeUndefined();
    expect(packageDirOf("/r/node_modules")).toBeUndefined();
  });
});

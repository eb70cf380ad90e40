import { describe, expect, it } from "vitest";
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

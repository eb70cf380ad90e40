import { readFileSync } from "node:fs";

/** The tool's version, read from package.json so it cannot drift from the release. */
export const TOOL_VERSION: string = (() => {
  for (const rel of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "crd-backup" && pkg.version) return pkg.version;
    } catch {
      // try the next location: the source tree and dist/ sit at different depths
    }
  }
  return "0.0.0-unknown";
})();

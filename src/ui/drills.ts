/**
 * Drill results for the fleet page. A storage location holds none (`drill` writes its outcome to
 * --report and --metrics-file only), so the view reads the JSON reports it is given.
 */
import { readFile } from "node:fs/promises";
import { CrdBackupError } from "../errors.ts";
import type { DrillResult } from "./context.ts";

function bad(file: string, why: string): CrdBackupError {
  return new CrdBackupError("USAGE", `--drill-report ${file}: ${why}`, { file });
}

/** One report as `drill --report` writes it: a full report, or `{snapshot, result: "fail", reasons}` when it could not run. */
export async function readDrillReport(file: string): Promise<DrillResult> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, "utf8"));
  } catch (e) {
    throw bad(file, (e as NodeJS.ErrnoException).code ?? "not JSON");
  }
  if (typeof doc !== "object" || doc === null) throw bad(file, "not a drill report");
  const r = doc as Record<string, unknown>;
  if ((r["result"] !== "pass" && r["result"] !== "fail") || typeof r["finishedAt"] !== "string") {
    throw bad(file, "not a drill report (no result and finishedAt)");
  }
  const id =
    typeof r["snapshotId"] === "string"
      ? r["snapshotId"]
      : typeof r["snapshot"] === "string"
        ? r["snapshot"]
        : undefined;
  const timings = r["timings"] as { rto?: unknown } | undefined;
  return {
    file,
    snapshotId: id,
    result: r["result"],
    finishedAt: r["finishedAt"],
    rtoSeconds: typeof timings?.rto === "number" ? timings.rto : undefined,
    reasons: Array.isArray(r["reasons"]) ? r["reasons"].map(String) : [],
  };
}

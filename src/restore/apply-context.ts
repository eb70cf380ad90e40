/** What every step of carrying out a restore plan shares (apply.ts, apply-prerequisites.ts). */
import { KubeApiError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import type { Logger } from "../report/log.ts";
import type { OwnerLookup } from "../objects/live.ts";
import type { RestoreOptions } from "./options.ts";
import type { RestorePlan } from "./plan.ts";
import type { ReportBuilder } from "./report.ts";

export const FIELD_MANAGER = "crd-backup";
/** Reports carry a field-level diff for this many differing objects; the rest say only that they differ. */
export const MAX_DIFFS = 200;

export interface Context {
  client: KubeClient;
  plan: RestorePlan;
  options: RestoreOptions;
  report: ReportBuilder;
  log: Logger;
  /** Source uid -> uid in the target cluster, for the objects some other object names as owner. */
  uids: Map<string, string>;
  owners: OwnerLookup;
  diffs: number;
}

export function query(options: RestoreOptions, extra: Record<string, string> = {}) {
  return { ...(options.dryRun ? { dryRun: "All" } : {}), ...extra };
}

export function serverMessage(e: unknown): string {
  return e instanceof KubeApiError ? e.message.replace(/^\S+ \S+: /, "") : (e as Error).message;
}

/** Permanent answers fail one object; anything else (unreachable, aborted, storage) ends the restore. */
export function isPerObject(e: unknown): boolean {
  return e instanceof KubeApiError;
}

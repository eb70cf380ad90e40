/** crd-backup as a library: the same operations the CLI runs, with explicit exports. */
export { CrdBackupError, KubeApiError, SourceRefusedError, isCrdBackupError } from "./errors.ts";
export type { ErrorCode, RefusedSource } from "./errors.ts";
export { TOOL_VERSION } from "./version.ts";

export { KubeClient } from "./kube/client.ts";
export type { KubeClientOptions, KubeRequest, KubeResponse } from "./kube/client.ts";
export { loadKubeConfig } from "./kube/config.ts";
export type { KubeConfigOptions } from "./kube/config.ts";
export { parseJson, stringifyJson } from "./json/json.ts";
export type { JsonObject, JsonValue } from "./json/json.ts";

export { takeSnapshot } from "./snapshot/take.ts";
export type { SnapshotOptions, SnapshotProgress, SnapshotResult } from "./snapshot/take.ts";
export type { Filters } from "./objects/filters.ts";

export { restoreSnapshot } from "./restore/restore.ts";
export type { ExistingPolicy, RestoreOptions } from "./restore/options.ts";
export type { RestoreReport, ReportEntry, Outcome } from "./restore/report.ts";

export { diffSnapshot } from "./diff/snapshot-diff.ts";
export type { DiffOptions, DiffResult, ResourceDiff } from "./diff/snapshot-diff.ts";

export { exportSnapshot } from "./export/export.ts";
export type { ExportOptions, ExportResult } from "./export/export.ts";

export { loadModifiers, parseModifiers } from "./modifiers/parse.ts";
export { applyModifiers } from "./modifiers/apply.ts";
export type { ModifierResult } from "./modifiers/apply.ts";
export type { ModifierRule, ModifierSet } from "./modifiers/types.ts";
export { testModifiers } from "./modifiers/test-run.ts";
export type { ModifierTestResult } from "./modifiers/test-run.ts";

export { runDrill, DRILL_LABEL } from "./drill/drill.ts";
export type { DrillOptions, DrillReport } from "./drill/drill.ts";

export { applyPolicy } from "./retention/policy.ts";
export type { RetentionPolicy, Decision } from "./retention/policy.ts";
export { prune } from "./retention/prune.ts";
export type { PruneOptions, PruneReport } from "./retention/prune.ts";
export { deleteSnapshots } from "./retention/delete.ts";
export type { DeleteOptions, DeleteReport } from "./retention/delete.ts";
export { runSnapshotJob } from "./schedule/job.ts";
export { runOnSchedule } from "./schedule/scheduler.ts";
export { record } from "./journal/record/recorder.ts";
export type { RecordOptions } from "./journal/record/recorder.ts";
export type { SnapshotRef } from "./source/open.ts";
export type { PointInTimeRef } from "./journal/replay/plan.ts";
export { listChains, summarizeChain } from "./journal/chains.ts";
export type { Chain, ChainSummary, Gap, Window } from "./journal/chains.ts";
export { JournalStats, journalMetrics } from "./report/journal-metrics.ts";

export { buildClusterRole } from "./rbac/role.ts";
export { clusterRoleFor } from "./rbac/discover.ts";
export type { ClusterRole, RbacMode } from "./rbac/role.ts";

export type { StorageBackend } from "./storage/backend.ts";
export { openStorage } from "./storage/location.ts";
export { listSnapshots, resolveSnapshot } from "./storage/snapshots.ts";
export type { StoredSnapshot } from "./storage/snapshots.ts";
export { parseRetention } from "./storage/lock.ts";
export type { ObjectLockRetention, RetentionMode } from "./storage/lock.ts";

export {
  generateKey,
  resolveIdentities,
  resolveRecipients,
  RECIPIENTS_ENV,
  IDENTITY_FILE_ENV,
} from "./crypto/keys.ts";
export type { Identities, Recipients } from "./crypto/keys.ts";
export { decryptStream, encryptForStorage, encryptStream } from "./crypto/stream.ts";
export { withIdentities } from "./crypto/keyring.ts";
export { rekeySnapshot } from "./crypto/rekey.ts";
export type { RekeyOptions, RekeyResult } from "./crypto/rekey.ts";

export * as archive from "./archive/index.ts";

/**
 * Looking at the recorded past of one cluster, for the CLI (`history`, `changes`) and the web view
 * alike: open a scope (which chains and snapshots cover a window), resolve a resource as kubectl
 * names it, then read one object's versions or the window's changes; json.ts gives the JSON both print.
 */
export { openScope, parseTimeFlag, gapCovers } from "./scope.ts";
export type { Scope, ScopeGap, Source, TimeWindow } from "./scope.ts";
export {
  AmbiguousResourceError,
  archivedResources,
  parseObjectArg,
  resolveResource,
  resourceName,
} from "./resource.ts";
export type { ResourceInfo } from "./resource.ts";
export { objectHistory, objectOf, objectRefer, diffOf } from "./history.ts";
export type {
  HistoryGap,
  HistoryItem,
  ObjectRefer,
  ObjectVersion,
  SnapshotCopy,
  VersionSource,
} from "./history.ts";
export { indexChain } from "./read.ts";
export { RecordIndexes } from "../journal/record-index.ts";
export { changesBetween, emptyCounts } from "./changes.ts";
export type { ChangeCounts, ChangeGroup, ChangeKind, ChangesSummary, ObjectChange } from "./changes.ts";
export { classify, fieldDiff, changedPaths, isStatusPath, MAX_PATHS, VERSION_WORDS } from "./classify.ts";
export type { Classified, FieldDiff, Observation, ObjectState, VersionKind } from "./classify.ts";
export { changesJson, changesJsonText, historyHeadJson, historyItemJson, historyJsonText } from "./json.ts";
export { changeWord, countsText } from "./change-words.ts";

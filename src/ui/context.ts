/** What every page handler gets: the storage it reads, the browse cache, and the view's settings. */
import type { ChangesSummary, HistoryItem, ObjectRefer, Scope } from "../history/index.ts";
import type { StorageBackend } from "../storage/backend.ts";
import type { BrowseCache } from "./browse-cache.ts";
import type { ObjectKey } from "./browse-index.ts";
import type { Html } from "./html.ts";
import type { CommandContext } from "./restore-command.ts";

/** One object's journal versions over a window, for its /objects/ page. */
export interface ObjectVersions {
  scope: Scope;
  object: ObjectRefer;
  /** The end of what is recorded of the cluster: the newest window a page can move to ends there. */
  recordedTo: Date;
  /** Oldest first, gaps between versions; NOT_FOUND before the first item when there is no version. */
  items: AsyncGenerator<HistoryItem>;
}

/**
 * Where the journal's history and change feed plug in (src/history/, read by one journal reader).
 * The JSON is what `crd-backup history -o json` / `changes -o json` print, as text in pieces; every
 * usage error, missing object or refused source is thrown before the first piece, so the server
 * can still answer it with a status. Until a provider is given, /api/history and /api/changes
 * answer 501 and an object's page says that journal history is not available.
 */
export interface HistoryProvider {
  /** GET /api/history?resource=&namespace=&name=[&since=&until=&cluster=], as `history -o json`. */
  historyJson(query: URLSearchParams, now: Date, signal: AbortSignal): Promise<AsyncIterable<string>>;
  /** GET /api/changes?since=[&until=&cluster=], as `changes -o json`. */
  changesJson(query: URLSearchParams, now: Date, signal: AbortSignal): Promise<AsyncIterable<string>>;
  /** The object's versions in the window the query names (default: the last 24h recorded). */
  objectVersions(
    key: ObjectKey,
    query: URLSearchParams,
    now: Date,
    signal: AbortSignal,
  ): Promise<ObjectVersions>;
  /** What changed cluster-wide in the window the query names (since required). */
  changes(query: URLSearchParams, now: Date, signal: AbortSignal): Promise<ChangesSummary>;
  /** Stops background work (the record indexes' warming). */
  close?(): Promise<void>;
}

/** A drill's outcome as `drill --report` wrote it (the location itself stores none). */
export interface DrillResult {
  file: string;
  snapshotId: string | undefined;
  result: "pass" | "fail";
  finishedAt: string;
  rtoSeconds: number | undefined;
  reasons: string[];
}

export interface UiContext {
  storage: StorageBackend;
  cache: BrowseCache;
  commands: CommandContext;
  /** Rows per page: objects, namespaces. */
  pageSize: number;
  /** Snapshots and points in time the browse cache keeps open at once. */
  keepOpen: number;
  drills: DrillResult[];
  history: HistoryProvider | undefined;
}

/** A handler's answer; the server writes it (and its security headers). */
export type Reply =
  | { status?: number; html: Html }
  | { status?: number; json: unknown }
  | { status?: number; redirect: string }
  | { status?: number; text: string; type: string }
  /** Written a piece at a time; the first piece is awaited before the status is sent. */
  | { status?: number; stream: AsyncIterable<string>; type: string };

export interface UiRequest {
  url: URL;
  /** The path's segments, percent-decoded. */
  segments: string[];
  now: Date;
  /** Aborted when the browser goes away: a long read stops with it. */
  signal: AbortSignal;
}

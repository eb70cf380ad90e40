/** What every page handler gets: the storage it reads, the browse cache, and the view's settings. */
import type { StorageBackend } from "../storage/backend.ts";
import type { BrowseCache } from "./browse-cache.ts";
import type { ObjectKey } from "./browse-index.ts";
import type { Html } from "./html.ts";
import type { CommandContext } from "./restore-command.ts";

/**
 * Where the journal's history and change feed plug in (issue 23 items 1-2, src/history/). Each
 * returns what `crd-backup history -o json` / `changes -o json` print; the web view only renders
 * it. Until a provider is given, /api/history and /api/changes answer 501 and an object's page
 * shows the versions stored snapshots hold, saying that journal history is not available.
 */
export interface HistoryProvider {
  /** GET /api/history?resource=&namespace=&name= (and since/until), as `history -o json`. */
  history(query: URLSearchParams): Promise<unknown>;
  /** GET /api/changes?since=&until=, as `changes -o json`. */
  changes(query: URLSearchParams): Promise<unknown>;
  /** The journal's versions of one object, rendered for its /objects/ page. */
  objectHistory(key: ObjectKey, query: URLSearchParams): Promise<Html>;
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
  | { status?: number; text: string; type: string };

export interface UiRequest {
  url: URL;
  /** The path's segments, percent-decoded. */
  segments: string[];
  now: Date;
}

/**
 * A watch on one collection: the API server's newline-delimited JSON events, handed over as the
 * bytes received (each event's object is cut out with the byte scanner, never parsed whole), so
 * an object's body stays exactly as served, int64 values included.
 */
import { CrdBackupError, KubeApiError } from "../errors.ts";
import type { KubeClient } from "./client.ts";
import { MemberCursor, parseAt, skipWhitespace, stringAt, valueEnd } from "../json/scan.ts";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";

export interface WatchEvent {
  type: WatchEventType;
  /** The event's line; the object is bytes[objectStart, objectEnd). */
  bytes: Buffer;
  objectStart: number;
  objectEnd: number;
}

export interface WatchOptions {
  resourceVersion: string;
  labelSelector?: string;
  /** The API server ends the watch after this; the caller watches again from the last rv. */
  timeoutSeconds: number;
  signal?: AbortSignal;
  /** Called once the API server has accepted the watch (before any event). */
  onOpen?: () => void;
}

/** A 410 Gone: the resourceVersion is older than the API server (or etcd) still has. */
export function isGone(e: unknown): boolean {
  return e instanceof KubeApiError && e.status === 410;
}

/**
 * The events of one watch, from `resourceVersion` on, with bookmarks, until the API server ends
 * it (timeoutSeconds). An ERROR event (410 Gone, say) throws KubeApiError with its code; a dropped
 * connection throws KUBE_UNREACHABLE; a silence longer than the timeout plus a minute is treated
 * as a dropped connection (a half-open TCP connection would otherwise hang forever).
 */
export async function* watchEvents(
  client: KubeClient,
  path: string,
  options: WatchOptions,
): AsyncGenerator<WatchEvent> {
  const res = await client.stream({
    path,
    query: {
      watch: 1,
      resourceVersion: options.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: options.timeoutSeconds,
      labelSelector: options.labelSelector,
    },
    signal: options.signal,
  });
  options.onOpen?.();
  const idleMs = (options.timeoutSeconds + 60) * 1000;
  const idle = setTimeout(() => res.destroy(silent()), idleMs);
  const pending: Buffer[] = [];
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      idle.refresh();
      let from = 0;
      for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
        pending.push(chunk.subarray(from, nl));
        from = nl + 1;
        const line = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
        pending.length = 0;
        const event = decodeEvent(path, line);
        if (event) yield event;
      }
      if (from < chunk.length) pending.push(chunk.subarray(from));
    }
  } catch (e) {
    if (options.signal?.aborted) throw new CrdBackupError("ABORTED", "cancelled", { path });
    if (e instanceof CrdBackupError) throw e;
    const err = e as Error & { code?: string };
    throw new CrdBackupError(
      "KUBE_UNREACHABLE",
      `watch ${path}: the connection dropped: ${err.message}`,
      { path, cause: err.code ?? "ECONNRESET" },
      { cause: e },
    );
  } finally {
    clearTimeout(idle);
    res.destroy();
  }
}

function silent(): Error {
  return Object.assign(new Error("no event or bookmark for longer than the watch's timeout"), {
    code: "ETIMEDOUT",
  });
}

const TYPES = new Set(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]);

/** One event line; undefined for an empty line. ERROR events throw. */
export function decodeEvent(path: string, line: Buffer): WatchEvent | undefined {
  const start = skipWhitespace(line, 0);
  if (start >= line.length) return undefined;
  const m = new MemberCursor(line, start);
  let type: string | undefined;
  let objectStart = -1;
  let objectEnd = -1;
  while (m.next()) {
    if (m.keyIs("type")) type = stringAt(line, m.valueStart, m.end);
    else if (m.keyIs("object")) [objectStart, objectEnd] = [m.valueStart, m.end];
  }
  if (!type || !TYPES.has(type) || objectStart < 0 || line[objectStart] !== 0x7b) {
    throw new CrdBackupError("KUBE_API", `watch ${path}: an event that is not a watch event`, { path });
  }
  if (type === "ERROR") {
    // a Status: small, strings and a code
    const status = parseAt(line, objectStart, objectEnd) as {
      code?: number;
      reason?: string;
      message?: string;
    };
    const code = typeof status.code === "number" ? status.code : 500;
    throw new KubeApiError(code, `watch ${path}: ${code} ${status.reason ?? ""}: ${status.message ?? ""}`, {
      method: "GET",
      path,
      reason: status.reason,
    });
  }
  return { type: type as WatchEventType, bytes: line, objectStart, objectEnd };
}

/** A string in the metadata of the object at `start` (its resourceVersion, say), without parsing it. */
export function metadataString(bytes: Buffer, start: number, field: string): string | undefined {
  const top = new MemberCursor(bytes, start);
  while (top.nextKey()) {
    if (top.keyIs("metadata") && bytes[top.valueStart] === 0x7b) {
      const meta = new MemberCursor(bytes, top.valueStart);
      while (meta.next()) if (meta.keyIs(field)) return stringAt(bytes, meta.valueStart, meta.end);
      return undefined;
    }
    top.end = valueEnd(bytes, top.valueStart);
  }
  return undefined;
}

/**
 * The web view's HistoryProvider, on src/history/: the same scope, resource resolution, journal
 * reader and JSON printers as `crd-backup history` and `changes`, so /api/history and /api/changes
 * answer byte for byte what `-o json` prints for the same query, and an object's page lists the
 * same versions. Encrypted journals open with the identities the storage handle was given
 * (`ui --identity`). The view never reads a segment itself.
 */
import { identitiesFor } from "../crypto/keyring.ts";
import { CrdBackupError, refusalSaying } from "../errors.ts";
import {
  archivedResources,
  changesBetween,
  changesJsonText,
  historyHeadJson,
  historyJsonText,
  indexChain,
  objectHistory,
  objectRefer,
  openScope,
  parseTimeFlag,
  RecordIndexes,
  type ChangesSummary,
  type ObjectRefer,
  type Scope,
  type SnapshotCopy,
  type TimeWindow,
} from "../history/index.ts";
import { splitList, validateSelector, type Filters } from "../objects/filters.ts";
import type { Logger } from "../report/log.ts";
import { segmentKey } from "../journal/segment-key.ts";
import type { StorageBackend } from "../storage/backend.ts";
import type { BrowseCache } from "./browse-cache.ts";
import type { ObjectKey } from "./browse-index.ts";
import type { HistoryProvider, ObjectVersions } from "./context.ts";

/** An object's page shows this much of the journal at once, ending where the recording ends. */
export const DEFAULT_SPAN_MS = 24 * 3600_000;

const HISTORY_PARAMS = ["resource", "namespace", "name", "since", "until", "cluster"];
const FILTER_PARAMS = [
  "include-groups",
  "exclude-groups",
  "include-resources",
  "exclude-resources",
  "include-namespaces",
  "exclude-namespaces",
  "selector",
];
const CHANGES_PARAMS = ["since", "until", "cluster", ...FILTER_PARAMS];

/** A parameter's value; absent and empty (a blank form field) are the same. */
const param = (q: URLSearchParams, name: string) => q.get(name) || undefined;

/** Every parameter is one the address takes: a misspelt one is not silently ignored. */
export function checkParams(q: URLSearchParams, api: string, known: readonly string[]): void {
  for (const name of q.keys())
    if (!known.includes(name))
      throw new CrdBackupError(
        "USAGE",
        `${api} takes no parameter ${JSON.stringify(name)} (it takes ${known.join(", ")})`,
      );
}

/** since/until as `--since`/`--until` take them (RFC 3339 or a duration before now; until: now). */
export function windowOf(q: URLSearchParams, now: Date, sinceRequired = false): TimeWindow {
  const since = param(q, "since");
  const until = param(q, "until");
  if (sinceRequired && since === undefined)
    throw new CrdBackupError("USAGE", "--since is required: since=<RFC 3339 time or a duration such as 2h>");
  return {
    until: until === undefined ? now : parseTimeFlag("--until", until, now),
    ...(since === undefined ? {} : { since: parseTimeFlag("--since", since, now) }),
  };
}

/** The filters `changes` takes as flags (`--include-resources` …, `-l`), as parameters of the same names. */
export function filtersOf(q: URLSearchParams): Filters {
  const list = (name: string) => splitList(q.getAll(name));
  return {
    includeGroups: list("include-groups"),
    excludeGroups: list("exclude-groups"),
    includeResources: list("include-resources"),
    excludeResources: list("exclude-resources"),
    includeNamespaces: list("include-namespaces"),
    excludeNamespaces: list("exclude-namespaces"),
    selector: validateSelector(param(q, "selector")),
  };
}

/**
 * An object page's window: the query's since/until, else the DEFAULT_SPAN_MS before `until`, and
 * `until` defaulting to the end of the recording (not now: a journal stopped last week still opens).
 */
export function pageWindow(q: URLSearchParams, now: Date, recordedTo: Date): Required<TimeWindow> {
  const until =
    param(q, "until") === undefined ? recordedTo : parseTimeFlag("--until", param(q, "until")!, now);
  const since = param(q, "since");
  return {
    since:
      since === undefined
        ? new Date(until.getTime() - DEFAULT_SPAN_MS)
        : parseTimeFlag("--since", since, now),
    until,
  };
}

/**
 * The HistoryProvider reading `storage` (with its identities, for encrypted journals). With the
 * view's browse cache, a snapshot's copy of an object comes from the cache's index of it (verified
 * once, when indexed) rather than from a whole read of the snapshot on every request.
 */
export function journalProvider(storage: StorageBackend, cache?: BrowseCache, log?: Logger): HistoryProvider {
  const known = (snapshots: Parameters<typeof archivedResources>[0]) =>
    archivedResources(snapshots, identitiesFor(storage));
  const copyIn: SnapshotCopy | undefined =
    cache &&
    (async (id, o) => {
      const key = {
        group: o.resource.group,
        plural: o.resource.plural,
        namespace: o.namespace ?? "",
        name: o.name,
      };
      const row = await cache.use({ snapshot: id }, (i) => i.object(key));
      return row && { body: row.body, uid: row.uid ?? "" };
    });
  const warm = warmer(storage, log);
  // the last summary served: the changes page's next pages (the same absolute window) take seconds otherwise
  let last: { key: string; summary: ChangesSummary } | undefined;
  const changes = async (q: URLSearchParams, now: Date, signal: AbortSignal) => {
    const filters = filtersOf(q);
    const scope = await openScope(storage, windowOf(q, now, true), param(q, "cluster"), now);
    const key = summaryKey(scope, filters);
    if (last?.key === key) return last.summary;
    last = undefined; // not held while the next one is built
    const summary = await changesBetween(storage, scope, filters, signal).catch((e: unknown) => {
      throw refusalSaying(e, "no change was shown");
    });
    last = { key, summary };
    return summary;
  };
  const history = async function* (scope: Scope, object: ObjectRefer, signal: AbortSignal) {
    try {
      yield* saying(
        objectHistory(storage, scope, object, signal, copyIn, warm.indexes),
        "the history stops there",
      );
    } finally {
      warm.chains(scope); // also after a page that stopped early
    }
  };

  return {
    async historyJson(q, now, signal) {
      checkParams(q, "/api/history", HISTORY_PARAMS);
      const resource = param(q, "resource");
      const name = param(q, "name");
      if (resource === undefined || name === undefined || name.includes("/"))
        throw new CrdBackupError(
          "USAGE",
          "name the object: /api/history?resource=<resource>&name=<name>[&namespace=<namespace>]",
        );
      const scope = await openScope(storage, windowOf(q, now), param(q, "cluster"), now);
      const object = objectRefer(await known(scope.snapshots), resource, name, param(q, "namespace"));
      return historyJsonText(historyHeadJson(scope, object), history(scope, object, signal));
    },

    async changesJson(q, now, signal) {
      checkParams(q, "/api/changes", CHANGES_PARAMS);
      const summary = await changes(q, now, signal);
      return (async function* () {
        yield* changesJsonText(summary);
      })();
    },

    async objectVersions(key: ObjectKey, q, now, signal): Promise<ObjectVersions> {
      const cluster = param(q, "cluster");
      const whole = await openScope(storage, { until: now }, cluster, now);
      const recordedTo = new Date(
        Math.min(now.getTime(), Math.max(...whole.sources.map((s) => s.end.getTime()))),
      );
      const scope = await openScope(storage, pageWindow(q, now, recordedTo), cluster, now);
      const object = objectRefer(
        await known(scope.snapshots),
        `${key.plural}.${key.group}`,
        key.name,
        key.namespace === "" ? undefined : key.namespace,
      );
      return {
        scope,
        object,
        recordedTo,
        items: history(scope, object, signal),
      };
    },

    changes,
    close: warm.close,
  };
}

/**
 * The view's record indexes (record-index.ts), and their warming: once an object's history has
 * been served, every segment of the chains it read is indexed in the background, one at a time, so
 * the next object's page, whichever it is, parses only that object's records. On the benchmark's
 * journal of 1,000,000 events (50 segments) that takes 8 MiB and about 15 s of one core.
 */
function warmer(storage: StorageBackend, log: Logger | undefined) {
  const indexes = new RecordIndexes();
  const stop = new AbortController();
  const started = new Set<string>();
  let queue = Promise.resolve();
  return {
    indexes,
    chains(scope: Scope): void {
      for (const s of scope.sources) {
        if (s.type !== "chain") continue;
        const { chain } = s;
        const id = `${chain.cluster}/${chain.base}/${chain.segments.length}`;
        if (started.has(id)) continue;
        started.add(id);
        queue = queue.then(async () => {
          const t0 = performance.now();
          const n = await indexChain(storage, chain, indexes, stop.signal).catch(() => 0);
          if (n > 0)
            log?.info("journal indexed for history", {
              base: chain.base,
              segments: n,
              seconds: +((performance.now() - t0) / 1000).toFixed(1),
            });
        });
      }
    },
    close: async () => {
      stop.abort();
      await queue;
    },
  };
}

/**
 * What a changes summary depends on: the window, the filters, and what was stored for it (each
 * source's last segment or snapshot: a journal still recording adds segments).
 */
function summaryKey(scope: Scope, filters: Filters): string {
  const tails = scope.sources.map((s) => {
    if (s.type === "snapshot") return s.snapshot.id;
    const tail = s.chain.segments.at(-1);
    return tail ? segmentKey(tail) : s.chain.base;
  });
  return JSON.stringify([scope.cluster, scope.window.since, scope.window.until, filters, tails]);
}

/** The pieces of `items`, a refused source said with what the reader did not do (as the CLI says it). */
async function* saying<T>(items: AsyncIterable<T>, consequence: string): AsyncGenerator<T> {
  try {
    yield* items;
  } catch (e) {
    throw refusalSaying(e, consequence);
  }
}

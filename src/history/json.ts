/**
 * The JSON `history -o json` and `changes -o json` print, made here so that anything else serving
 * them (the web view's /api/history and /api/changes) returns exactly the same. Object bodies are
 * parsed losslessly, so int64 values beyond 2^53 are written back byte for byte by JSON.stringify.
 */
import type { JsonObject, JsonValue } from "../json/json.ts";
import type { ChangeGroup, ChangesSummary } from "./changes.ts";
import { objectOf, type HistoryItem } from "./history.ts";
import type { ObjectRefer } from "./history.ts";
import { resourceName } from "./resource.ts";
import type { Scope } from "./scope.ts";

/** Everything of a history but its items. */
export function historyHeadJson(scope: Scope, object: ObjectRefer): JsonObject {
  return {
    cluster: scope.cluster,
    resource: resourceName(object.resource),
    kind: object.resource.kind,
    namespace: object.namespace ?? null,
    name: object.name,
    since: scope.window.since?.toISOString() ?? null,
    until: scope.window.until.toISOString(),
  };
}

/** One item: a version with the object as it was after it (null once deleted), or a gap. */
export function historyItemJson(item: HistoryItem): JsonObject {
  if (item.type === "gap")
    return { type: "gap", from: item.from.toISOString(), to: item.to.toISOString(), reason: item.reason };
  const out: JsonObject = { type: "version", time: item.t.toISOString(), what: item.what, uid: item.uid };
  if (item.resourceVersion !== undefined) out["resourceVersion"] = item.resourceVersion;
  out["paths"] = item.paths;
  out["source"] = item.source;
  if (item.before) out["before"] = true;
  out["object"] = (objectOf(item) ?? null) as JsonValue;
  return out;
}

/**
 * The whole history as JSON text, in pieces as the items come (`{...head, "items": [...]}`):
 * a long history is never one string.
 */
export async function* historyJsonText(
  head: JsonObject,
  items: AsyncIterable<HistoryItem>,
): AsyncGenerator<string> {
  const opening = JSON.stringify(head, null, 2).replace(/\n}$/, ',\n  "items": [');
  let n = 0;
  for await (const item of items) {
    // the opening waits for the first item: a history that fails (name not found) prints nothing
    if (n === 0) yield opening;
    yield (
      (n++ > 0 ? "," : "") +
      "\n    " +
      JSON.stringify(historyItemJson(item), null, 2).replaceAll("\n", "\n    ")
    );
  }
  yield n > 0 ? "\n  ]\n}\n" : `${opening}]\n}\n`;
}

/** The summary of changes as one value (a large one: changesJsonText writes it in pieces). */
export function changesJson(s: ChangesSummary): JsonObject {
  return { ...changesHeadJson(s), groups: s.groups.map(groupJson) };
}

function changesHeadJson(s: ChangesSummary): JsonObject {
  return {
    cluster: s.cluster,
    since: s.since.toISOString(),
    until: s.until.toISOString(),
    totals: { ...s.totals },
    gaps: s.gaps.map((g) => ({
      from: g.from.toISOString(),
      to: g.to.toISOString(),
      reason: g.reason,
      resources: g.resources,
    })),
  };
}

function groupJson(g: ChangeGroup): JsonObject {
  return {
    resource: g.resource,
    namespace: g.namespace ?? null,
    counts: { ...g.counts },
    objects: g.objects.map((o) => ({
      name: o.name,
      change: o.change,
      statusOnly: o.statusOnly,
      events: o.events,
      paths: o.paths,
    })),
  };
}

/** changesJson's text (as JSON.stringify(value, null, 2) writes it), a group at a time. */
export function* changesJsonText(s: ChangesSummary): Generator<string> {
  const head = JSON.stringify(changesHeadJson(s), null, 2).replace(/\n}$/, ',\n  "groups": [');
  if (s.groups.length === 0) return yield `${head}]\n}\n`;
  yield head;
  for (const [i, g] of s.groups.entries())
    yield (i > 0 ? "," : "") + "\n    " + JSON.stringify(groupJson(g), null, 2).replaceAll("\n", "\n    ");
  yield "\n  ]\n}\n";
}

/**
 * Server-side apply (restore/object-write.ts) sets every field the source has, but leaves the
 * fields other managers own: a field someone added by hand since the snapshot stays. A sync must
 * end equal to the source, so after its apply it compares the answer with what it sent, in the
 * comparable form `--existing update` decides "unchanged" by, and only when they still differ
 * replaces the object (PUT, conditional on the resourceVersion the apply answered), and its status
 * through /status when status is restored apart. Nothing more is sent for an apply that converged.
 */
import { isJsonObject, parseJson, stringifyJson, type JsonObject, type JsonValue } from "../json/json.ts";
import { digestOf, objectPath } from "../objects/live.ts";
import { query, type Context } from "./apply-context.ts";
import type { ItemPlan } from "./item.ts";

export interface Applied {
  /** The object as sent (status apart when `statusApart`). */
  sent: JsonObject;
  /** The status wanted, when status is restored apart (undefined: none). */
  status: JsonValue | undefined;
  statusApart: boolean;
  /** The server's answer to the last apply: the object as it now is. */
  answer: string;
}

/** Whether the object had to be replaced after its apply (false: the apply alone converged). */
export async function convergeAfterApply(ctx: Context, item: ItemPlan, applied: Applied): Promise<boolean> {
  const { client, options } = ctx;
  const withStatus = options.restoreStatus;
  const wanted: JsonObject = { ...applied.sent };
  if (applied.statusApart) {
    delete wanted["status"];
    if (applied.status !== undefined) wanted["status"] = applied.status;
  }
  const now = parseJson(applied.answer) as JsonObject;
  if (digestOf(now, withStatus) === digestOf(wanted, withStatus)) return false;

  const r = item.resource;
  const path = objectPath(r.group, r.version, r.plural, item.namespace, item.name);
  const replaced = await client.request({
    method: "PUT",
    path,
    query: query(options),
    body: stringifyJson(withVersion(applied.sent, now)),
    signal: options.signal,
  });
  if (!applied.statusApart) return true;
  const after = parseJson(replaced.text) as JsonObject;
  if (digestOf(after, withStatus) === digestOf(wanted, withStatus)) return true;
  const { status: _live, ...rest } = after;
  await client.request({
    method: "PUT",
    path: `${path}/status`,
    query: query(options),
    body: stringifyJson(applied.status === undefined ? rest : { ...rest, status: applied.status }),
    signal: options.signal,
  });
  return true;
}

/** `body` carrying the resourceVersion of `live`: a replace that fails if it changed meanwhile. */
function withVersion(body: JsonObject, live: JsonObject): JsonObject {
  const md = isJsonObject(body["metadata"]) ? body["metadata"] : {};
  const liveMd = isJsonObject(live["metadata"]) ? live["metadata"] : {};
  return { ...body, metadata: { ...md, resourceVersion: liveMd["resourceVersion"] ?? null } };
}

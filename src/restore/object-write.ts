/** The writes of one object: the object itself (create, or server-side apply), then its status. */
import { KubeApiError } from "../errors.ts";
import { collectionPath } from "../kube/discovery.ts";
import { isJsonObject, parseJson, stringifyJson, type JsonObject, type JsonValue } from "../json/json.ts";
import { digestOf, getJson, objectPath } from "../objects/live.ts";
import { FIELD_MANAGER, query, type Context } from "./apply-context.ts";
import type { ItemPlan } from "./item.ts";
import type { WriteAction } from "./object-step.ts";

/**
 * What writing an object came to: the write that was done last (a create that finds the object
 * there becomes an update under --existing update) and the new uid, when an owner's is needed;
 * or the error that refused that write.
 */
export type Written =
  | { action: WriteAction; uid: string | undefined; warning?: string; answer?: string }
  | { action: WriteAction; error: unknown };

const objectPathOf = (item: ItemPlan) => {
  const r = item.resource;
  return objectPath(r.group, r.version, r.plural, item.namespace, item.name);
};

export async function writeObject(
  ctx: Context,
  item: ItemPlan,
  action: WriteAction,
  text: string | Buffer,
): Promise<Written> {
  const { client, options } = ctx;
  const r = item.resource;
  // only an owner's new uid is needed later: other answers need not be parsed
  const isOwner = item.uid !== undefined && ctx.plan.owned.has(item.uid);
  if (action === "create") {
    try {
      const res = await client.request({
        method: "POST",
        path: collectionPath(r.group, r.version, r.plural, item.namespace),
        query: query(options),
        body: text,
      });
      return { action, uid: isOwner ? readUid(res.text) : undefined };
    } catch (e) {
      if (!(e instanceof KubeApiError && e.status === 409)) return { action, error: e };
      try {
        // a create whose answer was lost (a reset, a time-out) and was retried finds its own object
        const mine = options.dryRun ? undefined : await sameAsSent(ctx, objectPathOf(item), text);
        if (mine)
          return {
            action,
            uid: mine.uid,
            warning: "the create's answer was lost and its retry found the object already there, as sent",
          };
      } catch (lookup) {
        return { action, error: lookup };
      }
      // otherwise it appeared since the plan was made: only --existing update writes over it
      if (r.policy !== "update") return { action, error: e };
    }
  }
  try {
    const res = await client.request({
      method: "PATCH",
      path: objectPathOf(item),
      query: query(options, { fieldManager: FIELD_MANAGER, force: "true" }),
      body: text,
      contentType: "application/apply-patch+yaml",
    });
    return { action: "update", uid: isOwner ? readUid(res.text) : undefined, answer: res.text };
  } catch (e) {
    return { action: "update", error: e };
  }
}

/** Status through the /status subresource, after the object (server-side apply, forced). */
export async function writeStatus(
  ctx: Context,
  item: ItemPlan,
  body: JsonObject,
  status: JsonValue,
): Promise<string> {
  const md = body["metadata"] as JsonObject;
  const res = await ctx.client.request({
    method: "PATCH",
    path: `${objectPathOf(item)}/status`,
    query: { fieldManager: FIELD_MANAGER, force: "true" },
    contentType: "application/apply-patch+yaml",
    body: stringifyJson({
      apiVersion: body["apiVersion"] ?? null,
      kind: body["kind"] ?? null,
      metadata: { name: md["name"] ?? null, ...(item.namespace ? { namespace: item.namespace } : {}) },
      status,
    }),
  });
  return res.text;
}

/** The live object at `path` when it is what `sent` would have created (the comparable form restore uses). */
async function sameAsSent(
  ctx: Context,
  path: string,
  sent: string | Buffer,
): Promise<{ uid: string } | undefined> {
  const live = await getJson(ctx.client, path, ctx.options.signal);
  if (!live) return undefined;
  const wanted = parseJson(sent.toString()) as JsonObject;
  if (digestOf(live, false) !== digestOf(wanted, false)) return undefined;
  const uid = isJsonObject(live["metadata"]) ? live["metadata"]["uid"] : undefined;
  return typeof uid === "string" ? { uid } : undefined;
}

function readUid(text: string): string | undefined {
  const obj = parseJson(text);
  return isJsonObject(obj) && isJsonObject(obj["metadata"]) && typeof obj["metadata"]["uid"] === "string"
    ? obj["metadata"]["uid"]
    : undefined;
}

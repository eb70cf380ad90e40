import { cleanObject } from "../objects/clean.ts";
import { isJsonObject, parseJson, type JsonObject, type JsonValue } from "../json/json.ts";
import type { Context } from "./apply-context.ts";
import type { ItemPlan } from "./item.ts";
import { mappedApiVersion } from "./versions.ts";

/** An object as it will be sent, its status apart (written after it, when asked for). */
export interface PreparedBody {
  body: JsonObject | Buffer;
  status: JsonValue | undefined;
  warnings: string[];
}

/**
 * The object as it will be sent: mapped namespace, apiVersion through a --version-map, relinked
 * owners, status apart.
 */
export async function prepareBody(ctx: Context, item: ItemPlan, raw: Buffer): Promise<PreparedBody> {
  const apiVersion = mappedApiVersion(item.resource);
  // the common case needs no rewrite: the archived bytes are sent as they are, unparsed
  if (
    !apiVersion &&
    !item.hasStatus &&
    item.ownerUids.length === 0 &&
    item.namespace === item.sourceNamespace &&
    !ctx.options.createdLabel
  ) {
    return { body: raw, status: undefined, warnings: [] };
  }
  const obj = parseJson(raw.toString("utf8")) as JsonObject;
  const { object } = cleanObject(obj);
  const status = object["status"];
  delete object["status"];
  if (apiVersion) object["apiVersion"] = apiVersion;
  const metadata = object["metadata"] as JsonObject;
  if (item.namespace) metadata["namespace"] = item.namespace;
  const warnings: string[] = [];
  if (ctx.options.createdLabel) {
    metadata["labels"] = {
      ...(isJsonObject(metadata["labels"]) ? metadata["labels"] : {}),
      [ctx.options.createdLabel.key]: ctx.options.createdLabel.value,
    };
  }
  if (Array.isArray(metadata["ownerReferences"])) {
    const kept: JsonValue[] = [];
    for (const ref of metadata["ownerReferences"]) {
      if (!isJsonObject(ref)) continue;
      const oldUid = String(ref["uid"]);
      let uid = ctx.uids.get(oldUid);
      if (!uid)
        uid = await ctx.owners.uidOf(
          String(ref["apiVersion"]),
          String(ref["kind"]),
          item.namespace,
          String(ref["name"]),
        );
      const inRestore = ctx.plan.owners.has(oldUid);
      if (uid) kept.push({ ...ref, uid });
      else if (ctx.options.dryRun && inRestore)
        kept.push(ref); // a dry run creates no owner to link to
      else {
        const why = inRestore
          ? "could not be restored and is not in the cluster"
          : "is neither in the restore nor in the cluster";
        warnings.push(`owner ${ref["kind"]} ${ref["name"]} ${why}: ownerReference dropped`);
      }
    }
    if (kept.length > 0) metadata["ownerReferences"] = kept;
    else delete metadata["ownerReferences"];
  }
  return { body: object, status, warnings };
}

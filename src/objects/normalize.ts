import { isJsonObject, type JsonObject } from "../json/json.ts";
import { cleanObject } from "./clean.ts";

/**
 * The part of an object a restore is responsible for: no server-owned metadata, owner references
 * without uids (those are relinked to whatever the owners' uids are now), status only when it is
 * being restored. A live object and a snapshot object with equal forms are "unchanged".
 */
export function comparableForm(obj: JsonObject, options: { withStatus: boolean }): JsonObject {
  const { object } = cleanObject(obj, { dropStatus: !options.withStatus });
  const metadata = object["metadata"] as JsonObject;
  if (Array.isArray(metadata["ownerReferences"])) {
    metadata["ownerReferences"] = metadata["ownerReferences"].map((r) => {
      if (!isJsonObject(r)) return r;
      const { uid: _uid, ...rest } = r;
      return rest;
    });
  }
  return object;
}

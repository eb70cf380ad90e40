import { isJsonObject, type JsonObject } from "../json/json.ts";

/**
 * Metadata the API server owns: it assigns these on create, so a restore must not send them.
 * Everything else (labels, annotations, finalizers, ownerReferences, status) is kept.
 */
export const SERVER_OWNED_METADATA = [
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "managedFields",
  "selfLink",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
] as const;

export interface Cleaned {
  object: JsonObject;
  /** The uid the object had in the source cluster, kept in the archive index to relink owners. */
  uid: string | undefined;
}

/** A copy of `obj` without server-owned metadata (and without status when `dropStatus`). */
export function cleanObject(obj: JsonObject, options: { dropStatus?: boolean } = {}): Cleaned {
  const metadata = isJsonObject(obj["metadata"]) ? { ...obj["metadata"] } : {};
  const uid = typeof metadata["uid"] === "string" ? metadata["uid"] : undefined;
  for (const field of SERVER_OWNED_METADATA) delete metadata[field];
  const object: JsonObject = { ...obj, metadata };
  if (options.dropStatus) delete object["status"];
  return { object, uid };
}

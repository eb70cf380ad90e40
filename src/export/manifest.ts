/**
 * One archive entry as a manifest file: parsed losslessly (numbers keep their exact text),
 * optionally cleaned for `kubectl apply`, and written as YAML or indented JSON.
 */
import { isJsonObject, parseJson, type JsonObject } from "../json/json.ts";
import { cleanObject } from "../objects/clean.ts";
import { archiveInvalid } from "../archive/format.ts";
import { CrdBackupError } from "../errors.ts";
import type { ExportFormat } from "./layout.ts";
import { checkDepth, toYaml } from "./yaml.ts";

export interface RenderOptions {
  format: ExportFormat;
  cleanForApply: boolean;
}

/** A copy of the whole object as JSON that kubectl wrote on a client-side apply: stale, and noise in a review. */
export const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/** CRD and Namespace entries carry these (in the archive's order, which is kept); added first if one does not. */
const TYPE_META = {
  crd: { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition" },
  namespace: { apiVersion: "v1", kind: "Namespace" },
} as const;

/**
 * What `--clean-for-apply` leaves out, beyond what every snapshot already dropped (uid,
 * resourceVersion and the other server-owned metadata, removed again here in case an archive
 * has them: a resourceVersion makes an apply fail as a conflict):
 * - `status`: the API server ignores or rejects it on apply, and it is the controller's to write;
 * - `metadata.ownerReferences`: they name the owners by their uid in the source cluster; applied
 *   anywhere else (or after the owner was recreated) the garbage collector deletes the object;
 * - the `kubectl.kubernetes.io/last-applied-configuration` annotation (and `annotations` if that
 *   leaves it empty).
 */
export function cleanForApply(obj: JsonObject): JsonObject {
  const { object } = cleanObject(obj, { dropStatus: true });
  const metadata = object["metadata"] as JsonObject;
  delete metadata["ownerReferences"];
  const annotations = metadata["annotations"];
  if (isJsonObject(annotations) && LAST_APPLIED in annotations) {
    const { [LAST_APPLIED]: _dropped, ...rest } = annotations;
    if (Object.keys(rest).length > 0) metadata["annotations"] = rest;
    else delete metadata["annotations"];
  }
  return object;
}

/** The manifest file's text for an entry body (one JSON object, checked by the archive reader). */
export function renderManifest(
  kind: "crd" | "namespace" | "object",
  entry: string,
  body: Buffer,
  options: RenderOptions,
): string {
  const parsed = parseJson(body.toString("utf8"));
  if (!isJsonObject(parsed)) throw archiveInvalid(`archive entry ${entry}: the body is not a JSON object`);
  const typed = kind === "object" || ("apiVersion" in parsed && "kind" in parsed);
  let obj: JsonObject = typed ? parsed : { ...TYPE_META[kind], ...parsed };
  if (options.cleanForApply) obj = cleanForApply(obj);
  try {
    if (options.format === "yaml") return toYaml(obj);
    checkDepth(obj);
    return `${JSON.stringify(obj, null, 2)}\n`;
  } catch (e) {
    if (e instanceof CrdBackupError) throw archiveInvalid(`archive entry ${entry}: ${e.message}`);
    throw e;
  }
}

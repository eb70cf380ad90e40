import { diffJson } from "../json/diff.ts";
import { CrdBackupError, KubeApiError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { collectionPath } from "../kube/discovery.ts";
import { isJsonObject, parseJson, stringifyJson, type JsonObject, type JsonValue } from "../json/json.ts";
import type { Logger } from "../report/log.ts";
import { cleanObject } from "../objects/clean.ts";
import { digestOf, getJson, objectPath, OwnerLookup } from "../objects/live.ts";
import { comparableForm } from "../objects/normalize.ts";
import type { RestoreOptions } from "./options.ts";
import { identify, patchedObject, type ItemPlan } from "./item.ts";
import type { RestorePlan } from "./plan.ts";
import { Pool } from "./pool.ts";
import type { ReportBuilder } from "./report.ts";
import {
  FIELD_MANAGER,
  isPerObject,
  MAX_DIFFS,
  query,
  serverMessage,
  type Context,
} from "./apply-context.ts";
import { restoreCrds, restoreNamespaces } from "./apply-prerequisites.ts";
import { webhookTarget } from "./guards.ts";

export async function executePlan(
  client: KubeClient,
  plan: RestorePlan,
  options: RestoreOptions,
  report: ReportBuilder,
  log: Logger,
): Promise<void> {
  const ctx: Context = {
    client,
    plan,
    options,
    report,
    log,
    uids: new Map(plan.liveOwners),
    owners: new OwnerLookup(client),
    diffs: 0,
  };
  if (plan.refused.count > 0) {
    throw new CrdBackupError(
      "CONFLICT",
      `${plan.refused.count} objects already exist and --existing fail was given (first: ${plan.refused.first}); nothing was written`,
    );
  }
  // a CRD from the archive can point the API server anywhere: say where, before it is created
  for (const crd of plan.crds)
    if (crd.webhook)
      log.warn("restoring a CRD with a conversion webhook: the API server calls it for the CRD's objects", {
        crd: crd.name,
        webhook: webhookTarget(crd.webhook),
      });
  await restoreCrds(ctx);
  await restoreNamespaces(ctx);

  for (const phase of plan.objects.phases()) {
    const pool = new Pool(options.concurrency);
    // one pass over the verified local copy per phase: bodies are read as they are needed
    let ordinal = -1;
    for await (const entry of plan.snapshot.entries()) {
      if (entry.kind !== "object") continue;
      ordinal++;
      const decision = plan.objects.get(ordinal);
      if (!decision || plan.objects.phase(ordinal) !== phase) continue;
      // the identity again, as planning derived it (modifiers are pure), with the plan's decision
      const identity = identify(entry, plan.resources, options, plan.modifiers, false)!;
      const item: ItemPlan = { ...identity, ...decision };
      const patched = patchedObject(identity);
      const body = patched ? Buffer.from(stringifyJson(patched)) : entry.body;
      await pool.submit(() => restoreObject(ctx, item, body));
    }
    await pool.drain();
  }
}

/** The object as it will be sent: mapped namespace, relinked owners, status apart. */
async function prepareBody(
  ctx: Context,
  item: ItemPlan,
  raw: Buffer,
): Promise<{ body: JsonObject | Buffer; status: JsonValue | undefined; warnings: string[] }> {
  // the common case needs no rewrite: the archived bytes are sent as they are, unparsed
  if (
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

async function restoreObject(ctx: Context, item: ItemPlan, raw: Buffer): Promise<void> {
  const { client, options, report } = ctx;
  const r = item.resource;
  const entry = {
    kind: "object" as const,
    resource: r.key,
    namespace: item.namespace,
    name: item.name,
    ...(item.modifiers ? { modifiers: item.modifiers } : {}),
  };
  if (item.action === "conflict") return report.add({ ...entry, outcome: "conflict", reason: item.reason });
  if (item.action === "failed") return report.add({ ...entry, outcome: "failed", reason: item.reason });
  if (item.modifiers?.droppedBy !== undefined)
    return report.add({ ...entry, outcome: "skipped", reason: item.reason });
  if (item.action === "unchanged") return report.add({ ...entry, outcome: "unchanged" });
  if (item.action === "skip")
    return report.add({
      ...entry,
      outcome: "skipped",
      reason: item.reason,
      diff: await liveDiff(ctx, item, raw),
    });

  let prepared: Awaited<ReturnType<typeof prepareBody>>;
  try {
    prepared = await prepareBody(ctx, item, raw);
  } catch (e) {
    if (!isPerObject(e)) throw e;
    return report.add({ ...entry, outcome: "failed", reason: serverMessage(e) });
  }
  const { body, status, warnings } = prepared;
  const path = objectPath(r.group, r.version, r.plural, item.namespace, item.name);
  const unvalidated = !r.crdLive
    ? "its CRD is not installed yet"
    : item.namespace && ctx.plan.namespaces.some((n) => n.name === item.namespace && !n.exists)
      ? "its namespace does not exist yet"
      : undefined;
  if (options.dryRun && unvalidated) {
    // the server cannot validate an object whose kind or namespace a dry run did not really create
    return report.add({
      ...entry,
      outcome: item.action === "create" ? "would-create" : "would-update",
      reason: `not validated: ${unvalidated}`,
      ...(warnings.length ? { warnings } : {}),
    });
  }
  if (!options.restoreStatus || !r.statusSubresource) {
    // without a status subresource status is an ordinary field: it goes with the object only on request
    if (options.restoreStatus && status !== undefined && !Buffer.isBuffer(body)) body["status"] = status;
  }
  const text = Buffer.isBuffer(body) ? body : stringifyJson(body);
  // only an owner's new uid is needed later: other answers need not be parsed
  const isOwner = item.uid !== undefined && ctx.plan.owned.has(item.uid);
  try {
    let uid: string | undefined;
    if (item.action === "create") {
      try {
        const res = await client.request({
          method: "POST",
          path: collectionPath(r.group, r.version, r.plural, item.namespace),
          query: query(options),
          body: text,
        });
        uid = isOwner ? readUid(res.text) : undefined;
      } catch (e) {
        if (!(e instanceof KubeApiError && e.status === 409)) throw e;
        // a create whose answer was lost (a reset, a time-out) and was retried finds its own object
        const mine = options.dryRun ? undefined : await sameAsSent(ctx, path, text);
        if (mine) {
          uid = mine.uid;
          warnings.push("the create's answer was lost and its retry found the object already there, as sent");
        } else if (r.policy === "update")
          item.action = "update"; // appeared since the plan was made
        else throw e;
      }
    }
    if (item.action === "update") {
      const res = await client.request({
        method: "PATCH",
        path,
        query: query(options, { fieldManager: FIELD_MANAGER, force: "true" }),
        body: text,
        contentType: "application/apply-patch+yaml",
      });
      uid = isOwner ? readUid(res.text) : undefined;
    }
    if (uid && item.uid && !options.dryRun) ctx.uids.set(item.uid, uid);
    if (
      options.restoreStatus &&
      r.statusSubresource &&
      status !== undefined &&
      !options.dryRun &&
      !Buffer.isBuffer(body)
    ) {
      const md = body["metadata"] as JsonObject;
      await client.request({
        method: "PATCH",
        path: `${path}/status`,
        query: { fieldManager: FIELD_MANAGER, force: "true" },
        contentType: "application/apply-patch+yaml",
        body: stringifyJson({
          apiVersion: body["apiVersion"] ?? null,
          kind: body["kind"] ?? null,
          metadata: { name: md["name"] ?? null, ...(item.namespace ? { namespace: item.namespace } : {}) },
          status,
        }),
      });
    }
    const outcome = options.dryRun
      ? item.action === "create"
        ? "would-create"
        : "would-update"
      : item.action === "create"
        ? "created"
        : "updated";
    report.add({ ...entry, outcome, ...(warnings.length ? { warnings } : {}) });
  } catch (e) {
    if (!isPerObject(e)) throw e;
    const reason =
      e instanceof KubeApiError && e.status === 409
        ? "already exists (appeared after the plan was made)"
        : serverMessage(e);
    report.add({
      ...entry,
      outcome:
        item.action === "create" && e instanceof KubeApiError && e.status === 409 ? "skipped" : "failed",
      reason,
    });
  }
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

async function liveDiff(ctx: Context, item: ItemPlan, raw: Buffer) {
  if (ctx.diffs >= MAX_DIFFS) return undefined;
  ctx.diffs++;
  const r = item.resource;
  const live = await getJson(ctx.client, objectPath(r.group, r.version, r.plural, item.namespace, item.name));
  if (!live) return undefined;
  const snap = parseJson(raw.toString("utf8")) as JsonObject;
  const md = isJsonObject(snap["metadata"]) ? snap["metadata"] : {};
  const withStatus = ctx.options.restoreStatus;
  return diffJson(
    comparableForm(live, { withStatus }),
    comparableForm(
      { ...snap, metadata: { ...md, ...(item.namespace ? { namespace: item.namespace } : {}) } },
      { withStatus },
    ),
  );
}

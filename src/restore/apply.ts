import { diffJson } from "../json/diff.ts";
import { CrdBackupError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { isJsonObject, parseJson, stringifyJson, type JsonObject } from "../json/json.ts";
import type { Logger } from "../report/log.ts";
import { Limiter } from "../concurrency.ts";
import { getJson, objectPath, OwnerLookup } from "../objects/live.ts";
import { comparableForm } from "../objects/normalize.ts";
import type { RestoreOptions } from "./options.ts";
import { patchedObject, type ItemPlan } from "./item.ts";
import { objectEntries, type RestorePlan } from "./plan.ts";
import type { ReportBuilder, ReportEntry } from "./report.ts";
import { isPerObject, MAX_DIFFS, serverMessage, type Context } from "./apply-context.ts";
import { restoreCrds, restoreNamespaces } from "./apply-prerequisites.ts";
import { executePrune } from "./apply-prune.ts";
import { webhookTarget } from "./guards.ts";
import { prepareBody, type PreparedBody } from "./object-body.ts";
import { objectStep, refusedOutcome, unvalidated, writtenOutcome } from "./object-step.ts";
import { writeObject, writeStatus } from "./object-write.ts";
import { convergeAfterApply } from "./object-converge.ts";
import { validateMapped, writesMapped } from "./validate-map.ts";

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
  // a --version-map is checked by the server before any object is written (a dry run checks every write anyway)
  const mapped = !options.dryRun && writesMapped(plan);
  const namespacesExist = plan.namespaces.every((n) => n.exists);
  if (mapped && namespacesExist) await validateMapped(ctx, "nothing was written");
  await restoreCrds(ctx);
  await restoreNamespaces(ctx);
  // the server validates an object only in a namespace that exists: those come first
  if (mapped && !namespacesExist)
    await validateMapped(ctx, "no object was written (only the namespaces the restore needs were created)");

  for (const phase of plan.objects.phases()) {
    const limiter = new Limiter(options.concurrency);
    // the entries planning kept, or one pass over the verified local copy per phase
    for await (const { ordinal, entry } of plan.kept ?? objectEntries(plan.snapshot)) {
      const decision = plan.objects.get(ordinal);
      if (!decision || plan.objects.phase(ordinal) !== phase) continue;
      // the identity again, as planning derived it (modifiers are pure), with the plan's decision
      const identity = plan.identities.written(entry)!;
      const item: ItemPlan = { ...identity, ...decision };
      const patched = patchedObject(identity);
      const body = patched ? Buffer.from(stringifyJson(patched)) : entry.body;
      await limiter.submit(() => restoreObject(ctx, item, body));
    }
    await limiter.drain();
    log.debug("objects written", { phase });
  }
  if (plan.prune) await executePrune(ctx, plan.prune);
  if (plan.prune) log.debug("deletes done", { deletes: plan.prune.count });
}

/** One object: reported as planned, or written (then its status), and reported as the answers say. */
async function restoreObject(ctx: Context, item: ItemPlan, raw: Buffer): Promise<void> {
  const { options, report } = ctx;
  const entry: Omit<ReportEntry, "outcome"> = {
    kind: "object",
    resource: item.resource.key,
    namespace: item.namespace,
    name: item.name,
    ...(item.modifiers ? { modifiers: item.modifiers } : {}),
    ...(item.resource.version !== item.resource.archivedVersion
      ? { versionMap: { from: item.resource.archivedVersion, to: item.resource.version } }
      : {}),
  };
  const step = objectStep(item);
  if (step.kind === "report") {
    if (step.outcome === "unchanged") return report.add({ ...entry, outcome: step.outcome });
    if (!step.liveDiff) return report.add({ ...entry, outcome: step.outcome, reason: step.reason });
    return report.add({
      ...entry,
      outcome: step.outcome,
      reason: step.reason,
      diff: await liveDiff(ctx, item, raw),
    });
  }

  let prepared: PreparedBody;
  try {
    prepared = await prepareBody(ctx, item, raw);
  } catch (e) {
    if (!isPerObject(e)) throw e;
    return report.add({ ...entry, outcome: "failed", reason: serverMessage(e) });
  }
  const { body, status, warnings } = prepared;
  const withWarnings = (more?: string) => {
    const all = more ? [...warnings, more] : warnings;
    return all.length ? { warnings: all } : {};
  };
  const notValidated = options.dryRun ? unvalidated(item, ctx.plan) : undefined;
  if (notValidated) {
    // the server cannot validate an object whose kind or namespace a dry run did not really create
    return report.add({
      ...entry,
      outcome: writtenOutcome(step.action, true),
      reason: `not validated: ${notValidated}`,
      ...withWarnings(),
    });
  }
  // without a status subresource status is an ordinary field: it goes with the object only on request
  const statusApart = options.restoreStatus && item.resource.statusSubresource;
  if (options.restoreStatus && !statusApart && status !== undefined && !Buffer.isBuffer(body))
    body["status"] = status;

  const written = await writeObject(
    ctx,
    item,
    step.action,
    Buffer.isBuffer(body) ? body : stringifyJson(body),
  );
  if ("error" in written) {
    if (!isPerObject(written.error)) throw written.error;
    return report.add({ ...entry, ...refusedOutcome(written.action, written.error) });
  }
  // only owners' new uids are looked up later: one map entry per written object was 45 MB at 300k
  if (written.uid && item.uid && !options.dryRun && ctx.plan.owned.has(item.uid))
    ctx.uids.set(item.uid, written.uid);
  let answer = written.answer;
  try {
    if (statusApart && status !== undefined && !options.dryRun && !Buffer.isBuffer(body))
      answer = await writeStatus(ctx, item, body, status);
    // a sync ends equal to the source: an apply leaves fields other managers own
    if (options.sync && written.action === "update" && !options.dryRun && answer !== undefined) {
      const sent = Buffer.isBuffer(body) ? (parseJson(body.toString("utf8")) as JsonObject) : body;
      await convergeAfterApply(ctx, item, { sent, status, statusApart, answer });
    }
  } catch (e) {
    if (!isPerObject(e)) throw e;
    return report.add({ ...entry, ...refusedOutcome(written.action, e) });
  }
  report.add({
    ...entry,
    outcome: writtenOutcome(written.action, options.dryRun),
    ...withWarnings(written.warning),
  });
}

/** The fields in which the live object differs from the snapshot's, for the first MAX_DIFFS skips. */
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

/**
 * --version-map's promise: the target's schema for the map's version accepts every mapped object
 * before any object is written. The user says the schemas agree; the API server checks it. Each
 * mapped object the restore would write is sent once with dryRun=All, as it will be sent; any it
 * refuses fails the whole restore, naming the first few.
 */
import { CrdBackupError, KubeApiError } from "../errors.ts";
import { Limiter } from "../concurrency.ts";
import { stringifyJson } from "../json/json.ts";
import { isPerObject, serverMessage, type Context } from "./apply-context.ts";
import { patchedObject, type ItemPlan } from "./item.ts";
import { prepareBody } from "./object-body.ts";
import { objectStep } from "./object-step.ts";
import { writeObject } from "./object-write.ts";
import type { RestorePlan } from "./plan.ts";

/** Refused objects named in the error: one line must stay readable. */
const NAMED = 5;
/** Characters kept of each refusal's server message. */
const MESSAGE_CAP = 240;

/** Whether the plan writes any object through a --version-map. */
export function writesMapped(plan: Pick<RestorePlan, "resources">): boolean {
  for (const r of plan.resources.values()) if (r.version !== r.archivedVersion && !r.conflict) return true;
  return false;
}

/**
 * Sends every mapped object the restore would write with dryRun=All; throws CONFLICT naming the
 * first NAMED the server refuses. `written`: what the restore has written before this (the error
 * says so). A 409 is not the schema's answer: the real write reports it as usual.
 */
export async function validateMapped(ctx: Context, written: string): Promise<void> {
  const { plan, options } = ctx;
  const dry: Context = { ...ctx, options: { ...options, dryRun: true } };
  // the first NAMED in archive order, whatever order the answers come in
  let named: { ordinal: number; text: string }[] = [];
  let refused = 0;
  let checked = 0;
  const limiter = new Limiter(options.concurrency);
  let ordinal = -1;
  for await (const entry of plan.snapshot.entries()) {
    if (entry.kind !== "object") continue;
    ordinal++;
    const decision = plan.objects.get(ordinal);
    if (!decision) continue;
    const identity = plan.identities.written(entry)!;
    const r = identity.resource;
    if (r.version === r.archivedVersion) continue;
    const item: ItemPlan = { ...identity, ...decision };
    const step = objectStep(item);
    if (step.kind !== "write") continue;
    const patched = patchedObject(identity);
    const raw = patched ? Buffer.from(stringifyJson(patched)) : entry.body;
    checked++;
    const at = ordinal;
    await limiter.submit(async () => {
      let prepared;
      try {
        prepared = await prepareBody(dry, item, raw);
      } catch (e) {
        if (!isPerObject(e)) throw e;
        return; // not the schema's answer: the real write reports it
      }
      const { body, status } = prepared;
      // status goes with the object when the CRD has no status subresource (as restoreObject sends it)
      if (options.restoreStatus && !r.statusSubresource && status !== undefined && !Buffer.isBuffer(body))
        body["status"] = status;
      const answer = await writeObject(
        dry,
        item,
        step.action,
        Buffer.isBuffer(body) ? body : stringifyJson(body),
      );
      if (!("error" in answer)) return;
      const e = answer.error;
      if (!isPerObject(e)) throw e;
      if (e instanceof KubeApiError && e.status === 409) return;
      refused++;
      named.push({ ordinal: at, text: `${where(item)} (${oneLine(serverMessage(e))})` });
      if (named.length > NAMED) named = named.sort((a, b) => a.ordinal - b.ordinal).slice(0, NAMED);
    });
  }
  await limiter.drain();
  ctx.log.info("version map validated", { objects: checked, refused });
  if (refused === 0) return;
  const more = refused > named.length ? `; and ${refused - named.length} more` : "";
  throw new CrdBackupError(
    "CONFLICT",
    `--version-map: the target refuses ${refused} of ${checked} mapped objects in a server-side dry run: ${named
      .sort((a, b) => a.ordinal - b.ordinal)
      .map((n) => n.text)
      .join("; ")}${more}; ${written}`,
    { refused },
  );
}

function where(item: ItemPlan): string {
  return `${item.resource.key} ${item.namespace ? `${item.namespace}/` : ""}${item.name}`;
}

/** The server's reason on one line, without what the line says already (status, kind and name). */
function oneLine(message: string): string {
  const line = message
    .replace(/\s+/g, " ")
    .trim()
    .replace(/^\d{3} \w+: /, "")
    .replace(/^\S+ "[^"]*" is invalid: /, "");
  return line.length > MESSAGE_CAP ? `${line.slice(0, MESSAGE_CAP)}…` : line;
}

/**
 * The journal's versions of one object on its /objects/ page, a window at a time (default: the
 * last 24h recorded; links page to earlier and later windows), oldest first as `history` lists
 * them, gaps as rows of their own; each update links to a side-by-side diff against the version
 * before (/objects/…/diff?at=<time>), and every version has the restore command that puts the
 * object back as it was then. At most a page of versions is rendered: a busy object pages on
 * inside its window, and the reader stops where the page ends.
 */
import { toYaml } from "../../export/yaml.ts";
import { CrdBackupError, isCrdBackupError } from "../../errors.ts";
import { objectOf, VERSION_WORDS, type HistoryItem, type ObjectVersion } from "../../history/index.ts";
import { isRfc3339 } from "../../units/time.ts";
import { resourceKey, type ObjectKey } from "../browse-index.ts";
import type { Reply, UiContext, UiRequest } from "../context.ts";
import { errorLine, html, page, withQuery, type Html } from "../html.ts";
import { restoreAtCommand, restoreCommand } from "../restore-command.ts";
import { commandBlock } from "./browse.ts";
import { sideBySideTable } from "./compare.ts";

const iso = (d: Date) => d.toISOString();
const errorBlock = (e: unknown) => html`<p class="error">crd-backup: ${errorLine(e)}</p>`;

function paths(list: string[]): Html {
  if (list.length === 0) return html``;
  return html`<ul class="paths">
    ${list.map((p) => html`<li><code>${p}</code></li>`)}
  </ul>`;
}

/** What restores the object as a version left it: the snapshot it was read from, or the journal at its time. */
function restoreFor(ctx: UiContext, cluster: string, key: ObjectKey, v: ObjectVersion, at: Date): string {
  if ("snapshot" in v.source)
    return restoreCommand(
      ctx.commands,
      { snapshot: v.source.snapshot },
      key,
      ctx.commands.identityFiles.length > 0,
    );
  return restoreAtCommand(ctx.commands, cluster, at, key);
}

/** The journal section of an object's page; errors (no version in the window, a refused segment) said inline. */
export async function journalSection(
  ctx: UiContext,
  req: UiRequest,
  key: ObjectKey,
  objectHref: string,
): Promise<Html> {
  const provider = ctx.history!;
  const q = req.url.searchParams;
  const cluster = q.get("cluster") || undefined;
  let versions;
  try {
    versions = await provider.objectVersions(key, q, req.now, req.signal);
  } catch (e) {
    if (isCrdBackupError(e)) return html`${errorBlock(e)}${pagerAfterError(q, objectHref)}`;
    throw e;
  }
  const { scope, recordedTo, items } = versions;
  const since = scope.window.since!;
  const until = scope.window.until;
  const span = until.getTime() - since.getTime();
  const rows: Html[] = [];
  let shown = 0;
  let last: ObjectVersion | undefined; // the newest version with a body: what a delete restores
  let more: Date | undefined;
  let failure: Html | undefined;
  try {
    for await (const item of items) {
      if (item.type === "version" && shown === ctx.pageSize) {
        more = item.t;
        break; // the generator's return closes the reader here
      }
      rows.push(row(ctx, req, scope.cluster, key, objectHref, item, last));
      if (item.type === "version") {
        shown++;
        if (item.body !== undefined) last = item;
      }
    }
  } catch (e) {
    if (!isCrdBackupError(e)) throw e;
    failure = errorBlock(e);
  }
  const link = (s: Date, u: Date) => withQuery(objectHref, { cluster, since: iso(s), until: iso(u) });
  const later = new Date(Math.min(until.getTime() + span, recordedTo.getTime()));
  return html`<p>
      Cluster <span class="mono">${scope.cluster}</span>, from ${iso(since)} to ${iso(until)} ·
      <a href="${withQuery("/changes", { cluster, since: iso(since), until: iso(until) })}"
        >what changed cluster-wide then</a
      >
    </p>
    ${
      rows.length
        ? html`<table class="journal">
            <thead>
              <tr>
                <th>Time</th>
                <th>What happened</th>
                <th>Changed paths</th>
                <th>Diff · restore as it was then (dry run)</th>
              </tr>
            </thead>
            <tbody>
              ${rows}
            </tbody>
          </table>`
        : ""
    }
    ${failure}
    <div class="pager">
      <a rel="prev" class="earlier" href="${link(new Date(since.getTime() - span), since)}">earlier</a>
      ${more ? html`<a class="more" href="${link(more, until)}">more in this window, from ${iso(more)}</a>` : ""}
      ${until < recordedTo ? html`<a class="later" href="${link(until, later)}">later</a>` : ""}
      ${q.get("since") || q.get("until") ? html`<a href="${withQuery(objectHref, { cluster })}">latest</a>` : ""}
    </div>`;
}

/** A window that could not be opened (outside everything recorded) still pages on from the times it asked for. */
function pagerAfterError(q: URLSearchParams, objectHref: string): Html {
  const cluster = q.get("cluster") || undefined;
  const since = Date.parse(q.get("since") ?? "");
  const until = Date.parse(q.get("until") ?? "");
  const link = (s: number, u: number) =>
    withQuery(objectHref, { cluster, since: iso(new Date(s)), until: iso(new Date(u)) });
  const span = until - since;
  return html`<div class="pager">
    ${
      span > 0
        ? html`<a rel="prev" class="earlier" href="${link(since - span, since)}">earlier</a>
            <a class="later" href="${link(until, until + span)}">later</a>`
        : ""
    }
    <a href="${withQuery(objectHref, { cluster })}">latest</a>
  </div>`;
}

function row(
  ctx: UiContext,
  req: UiRequest,
  cluster: string,
  key: ObjectKey,
  objectHref: string,
  item: HistoryItem,
  last: ObjectVersion | undefined,
): Html {
  if (item.type === "gap")
    return html`<tr class="gap">
      <td colspan="4">not recorded from ${iso(item.from)} to ${iso(item.to)} (${item.reason})</td>
    </tr>`;
  const q = req.url.searchParams;
  const diff =
    item.previous !== undefined && item.body !== undefined && item.paths.length > 0
      ? html`<a
          class="diff"
          href="${withQuery(`${objectHref}/diff`, {
            cluster: q.get("cluster") || undefined,
            at: iso(item.t),
            rv: item.resourceVersion,
          })}"
          >side by side</a
        >`
      : "";
  const id = `restore-${item.t.getTime()}-${item.resourceVersion ?? "s"}`;
  const restore =
    item.body !== undefined
      ? commandBlock(restoreFor(ctx, cluster, key, item, item.t), id)
      : last
        ? html`<span class="muted">as it was before the delete:</span
            >${commandBlock(restoreFor(ctx, cluster, key, last, last.t), id)}`
        : "";
  const source = "snapshot" in item.source ? `snapshot ${item.source.snapshot}` : "journal";
  return html`<tr class="version">
    <td class="when mono">${iso(item.t)}</td>
    <td>
      <span class="what">${VERSION_WORDS[item.what]}</span
      >${item.before ? html`<br /><span class="muted">in effect at the window's start</span>` : ""}<br /><span
        class="muted"
        >${source}</span
      >
    </td>
    <td>${paths(item.paths)}</td>
    <td>${diff}${restore}</td>
  </tr>`;
}

/** /objects/…/diff?at=<time>[&rv=]: a journal version beside the version before it. */
export async function journalDiffPage(
  ctx: UiContext,
  req: UiRequest,
  key: ObjectKey,
  objectHref: string,
): Promise<Reply> {
  const q = req.url.searchParams;
  const at = q.get("at") ?? "";
  if (!isRfc3339(at))
    throw new CrdBackupError("USAGE", `give at= as the version's RFC 3339 time, not ${JSON.stringify(at)}`);
  const rv = q.get("rv") || undefined;
  const cluster = q.get("cluster") || undefined;
  const window = new URLSearchParams({ since: at, until: at, ...(cluster ? { cluster } : {}) });
  const { items } = await ctx.history!.objectVersions(key, window, req.now, req.signal);
  const t = Date.parse(at);
  let found: ObjectVersion | undefined;
  for await (const item of items)
    if (item.type === "version" && !item.before && item.t.getTime() === t)
      if (rv === undefined || item.resourceVersion === rv) found = item;
  const where = key.namespace ? `${key.namespace}/${key.name}` : key.name;
  if (!found)
    throw new CrdBackupError(
      "NOT_FOUND",
      `no version of ${resourceKey(key.group, key.plural)} ${where} was recorded at ${at}${rv ? ` with resourceVersion ${rv}` : ""}`,
    );
  const yaml = (b: Buffer | undefined) => (b === undefined ? "" : toYaml(objectOf({ ...found, body: b })!));
  const left = yaml(found.previous);
  const right = yaml(found.body);
  const body = html`<p><a href="${withQuery(objectHref, { cluster })}">every version of this object</a></p>
    <p>Changed: ${found.paths.map((p) => html`<code>${p}</code> `)}</p>
    ${sideBySideTable("the version before", left, `${VERSION_WORDS[found.what]} at ${at}`, right)}`;
  return {
    html: page(
      `${resourceKey(key.group, key.plural)} ${where} at ${at}`,
      [{ label: "fleet", href: "/" }, { label: "objects", href: objectHref }, { label: "diff" }],
      body,
    ),
  };
}

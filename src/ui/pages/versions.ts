/**
 * /objects/<group>/<plural>/<namespace>/<name> (`_` for cluster-scoped): one object across time.
 * First the journal's versions (pages/journal.ts, through the HistoryProvider: a window of every
 * recorded change with diffs and restore commands), then the version each stored snapshot holds,
 * newest first, a page of snapshots at a time (`?before=<id>` pages back, `?cluster=<uid prefix>`
 * keeps one cluster), with the paths that changed between successive versions and the command
 * that restores each. Without a provider the page says the journal is not shown.
 */
import { identitiesFor } from "../../crypto/keyring.ts";
import { openManifest } from "../../crypto/manifest.ts";
import { CrdBackupError } from "../../errors.ts";
import { diffJson, type FieldChange } from "../../json/diff.ts";
import { parseJson, type JsonValue } from "../../json/json.ts";
import { listSnapshots, type StoredSnapshot } from "../../storage/snapshots.ts";
import { resourceKey, type ObjectKey, type ObjectRow } from "../browse-index.ts";
import type { Reply, UiContext, UiRequest } from "../context.ts";
import { formatBytes, href, html, page, withQuery, type Html } from "../html.ts";
import { restoreCommand } from "../restore-command.ts";
import { CLUSTER_SCOPE_SEGMENT, commandBlock } from "./browse.ts";
import { comparePage } from "./compare.ts";
import { journalDiffPage, journalSection } from "./journal.ts";

/**
 * Snapshots looked at per page: each not yet browsable is read once, so a page is bounded work.
 * A page needs one more than it shows (what the oldest shown changed from), and all of them must
 * fit among the copies kept open, or paging back and forth would read every one again each time.
 */
const SNAPSHOTS_PER_PAGE = 8;

function perPage(ctx: UiContext): number {
  return Math.max(1, Math.min(SNAPSHOTS_PER_PAGE, ctx.keepOpen - 1));
}

type Found =
  | { state: "present"; row: ObjectRow; doc: JsonValue; encrypted: boolean }
  | { state: "absent"; why: string }
  | { state: "sealed" };

interface Version {
  snapshot: StoredSnapshot;
  found: Found;
}

/** What one snapshot holds of the object (the manifest first: a resource it lacks needs no read). */
async function versionIn(ctx: UiContext, s: StoredSnapshot, key: ObjectKey): Promise<Found> {
  const keys = identitiesFor(ctx.storage);
  if (s.manifest.sealed && !keys) return { state: "sealed" };
  const m = await openManifest(s.manifest, keys);
  if (!m.resources.some((r) => r.group === key.group && r.plural === key.plural)) {
    return { state: "absent", why: "resource not in this snapshot" };
  }
  const o = await ctx.cache.use({ snapshot: s.id }, (i) => i.object(key));
  if (!o) return { state: "absent", why: "not in this snapshot" };
  return {
    state: "present",
    row: o,
    doc: parseJson(o.body.toString("utf8")),
    encrypted: m.encryption !== undefined,
  };
}

/** The journal's versions of the object: the HistoryProvider's, or a plain statement that there are none. */
async function journalHistory(
  ctx: UiContext,
  req: UiRequest,
  key: ObjectKey,
  objectHref: string,
): Promise<Html> {
  if (ctx.history) return journalSection(ctx, req, key, objectHref);
  return html`<p class="muted">
    The journal's record of every change to this object is not shown by this version of the view; the versions
    below are those stored snapshots hold.
  </p>`;
}

function changes(list: FieldChange[]): Html {
  if (list.length === 0) return html`<span class="muted">unchanged</span>`;
  return html`<ul class="paths">
    ${list.map((c) => html`<li><code>${c.path}</code> ${c.op}</li>`)}
  </ul>`;
}

export async function versionsPage(ctx: UiContext, req: UiRequest, rest: string[]): Promise<Reply> {
  if (rest.length === 5 && rest[4] === "diff") {
    const [group, plural, ns, name] = rest as [string, string, string, string];
    const key = { group, plural, namespace: ns === CLUSTER_SCOPE_SEGMENT ? "" : ns, name };
    const objectHref = href("objects", group, plural, ns, name);
    if (ctx.history && req.url.searchParams.has("at")) return journalDiffPage(ctx, req, key, objectHref);
    return comparePage(ctx, req, key, objectHref);
  }
  if (rest.length !== 4) {
    throw new CrdBackupError(
      "USAGE",
      "an object's address is /objects/<group>/<resource>/<namespace or _>/<name>",
    );
  }
  const [group, plural, ns, name] = rest as [string, string, string, string];
  const key: ObjectKey = { group, plural, namespace: ns === CLUSTER_SCOPE_SEGMENT ? "" : ns, name };
  const q = req.url.searchParams;
  const cluster = q.get("cluster") ?? "";
  const before = q.get("before") ?? "";
  const all = (await listSnapshots(ctx.storage, () => undefined))
    .filter((s) => s.manifest.cluster.uid.startsWith(cluster) && (before === "" || s.id < before))
    .reverse();
  const n = perPage(ctx);
  const shown = all.slice(0, n + 1); // one more: what the last shown changed from
  const versions: Version[] = [];
  for (const s of shown) versions.push({ snapshot: s, found: await versionIn(ctx, s, key) });
  const where = key.namespace ? `${key.namespace}/${name}` : name;
  const rows = versions.slice(0, n).map((v, i) => {
    const s = v.snapshot;
    const older = versions[i + 1]?.found;
    const f = v.found;
    let state: Html;
    let detail: Html = html``;
    if (f.state === "sealed")
      state = html`<span class="muted">encrypted: start the view with --identity</span>`;
    else if (f.state === "absent") state = html`<span class="muted">${f.why}</span>`;
    else {
      const link = href("snapshots", s.id, group, plural, ns, name);
      state = html`<a href="${link}">present</a> · ${formatBytes(f.row.size)} ·
        <span class="mono">${f.row.sha256.slice(0, 12)}</span>`;
      const diff =
        older === undefined
          ? html`<span class="muted">oldest shown</span>`
          : older.state === "present"
            ? older.row.sha256 === f.row.sha256
              ? changes([])
              : html`${changes(diffJson(older.doc, f.doc))}<a
                    class="compare"
                    href="${withQuery(href("objects", group, plural, ns, name, "diff"), { from: versions[i + 1]!.snapshot.id, to: s.id })}"
                    >side by side</a
                  >`
            : html`<span class="ok">appears</span>`;
      const cmd = restoreCommand(ctx.commands, { snapshot: s.id }, key, f.encrypted);
      detail = html`${diff}${commandBlock(cmd, `restore-${s.id}`)}`;
    }
    return html`<tr>
      <td>
        <a class="mono" href="${href("snapshots", s.id)}">${s.id}</a><br /><span class="muted mono"
          >${s.manifest.cluster.uid.slice(0, 8)}</span
        >
      </td>
      <td>${s.manifest.finishedAt}</td>
      <td>${state}</td>
      <td>${detail}</td>
    </tr>`;
  });
  const next = all.length > n ? all[n - 1]!.id : undefined;
  const body = html`<dl class="facts">
      <dt>resource</dt>
      <dd>${resourceKey(group, plural)}</dd>
      <dt>namespace</dt>
      <dd>${key.namespace || "(cluster-scoped)"}</dd>
      <dt>name</dt>
      <dd>${name}</dd>
    </dl>
    <h2>Journal history</h2>
    ${await journalHistory(ctx, req, key, href("objects", group, plural, ns, name))}
    <h2>In stored snapshots${cluster ? html` of cluster ${cluster}…` : ""}</h2>
    ${
      rows.length
        ? html`<table class="versions">
            <thead>
              <tr>
                <th>Snapshot</th>
                <th>Finished</th>
                <th>Object</th>
                <th>Changed since the older one · restore (dry run)</th>
              </tr>
            </thead>
            <tbody>
              ${rows}
            </tbody>
          </table>`
        : html`<p class="muted">No snapshot${before ? " older than that" : ""}.</p>`
    }
    <div class="pager">
      ${before ? html`<a href="${withQuery(req.url.pathname, { cluster: cluster || undefined })}">newest</a>` : ""}${
        next
          ? html`<a
              rel="next"
              href="${withQuery(req.url.pathname, { cluster: cluster || undefined, before: next })}"
              >older snapshots</a
            >`
          : ""
      }
    </div>`;
  return {
    html: page(
      `${resourceKey(group, plural)} ${where}`,
      [{ label: "fleet", href: "/" }, { label: "objects" }, { label: where }],
      body,
    ),
  };
}

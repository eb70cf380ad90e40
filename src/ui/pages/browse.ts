/**
 * Browsing a snapshot or a point in time: resources, then namespaces, then objects (a page at a
 * time, `?after=` the last key shown), then one object as YAML with the command that restores it.
 * URLs: /snapshots/<id>/<group>/<plural>/<namespace>/<name>, and /at/<cluster uid>/<time>/… for
 * the state at a time; `_` is the namespace of cluster-scoped objects.
 */
import type { ManifestResource, PlainManifest } from "../../archive/manifest.ts";
import { identitiesFor } from "../../crypto/keyring.ts";
import { openManifest } from "../../crypto/manifest.ts";
import { CrdBackupError } from "../../errors.ts";
import { toYaml } from "../../export/yaml.ts";
import { parseJson } from "../../json/json.ts";
import { parseAt, planPointInTime } from "../../journal/replay/plan.ts";
import { isSnapshotId } from "../../storage/layout.ts";
import { resolveSnapshot } from "../../storage/snapshots.ts";
import type { BrowseRef } from "../browse-cache.ts";
import { resourceKey, type ObjectKey } from "../browse-index.ts";
import type { Reply, UiContext, UiRequest } from "../context.ts";
import { formatBytes, href, html, page, withQuery, type Crumb, type Html } from "../html.ts";
import { restoreCommand } from "../restore-command.ts";

/** `_` stands for "cluster-scoped" in URLs: no namespace can be named so. */
export const CLUSTER_SCOPE_SEGMENT = "_";

export function nsSegment(namespace: string): string {
  return namespace === "" ? CLUSTER_SCOPE_SEGMENT : namespace;
}

function nsOf(segment: string): string {
  return segment === CLUSTER_SCOPE_SEGMENT ? "" : segment;
}

/** The URL segments that name a source. */
export function refSegments(ref: BrowseRef): string[] {
  return "snapshot" in ref ? ["snapshots", ref.snapshot] : ["at", ref.cluster, ref.at.toISOString()];
}

function refLabel(ref: BrowseRef): string {
  return "snapshot" in ref ? ref.snapshot : `${ref.cluster.slice(0, 8)} at ${ref.at.toISOString()}`;
}

/** The manifest of a source: a snapshot's alone is cheap; a point in time's needs the rebuild. */
async function manifestOf(ctx: UiContext, ref: BrowseRef): Promise<PlainManifest> {
  if ("snapshot" in ref) {
    const { manifest } = await resolveSnapshot(ctx.storage, ref.snapshot);
    return openManifest(manifest, identitiesFor(ctx.storage));
  }
  return ctx.cache.use(ref, (index) => index.manifest);
}

function resourceOf(m: PlainManifest, group: string, plural: string): ManifestResource {
  const r = m.resources.find((x) => x.group === group && x.plural === plural);
  if (!r) {
    throw new CrdBackupError("NOT_FOUND", `${m.snapshotId} holds no resource ${resourceKey(group, plural)}`);
  }
  return r;
}

function after(req: UiRequest): string {
  return req.url.searchParams.get("after") ?? "";
}

function pager(req: UiRequest, next: string | undefined): Html {
  const first = after(req) !== "";
  if (!first && next === undefined) return html``;
  return html`<div class="pager">
    ${first ? html`<a href="${req.url.pathname}">first page</a>` : ""}${
      next !== undefined
        ? html`<a rel="next" href="${withQuery(req.url.pathname, { after: next })}">next page</a>`
        : ""
    }
  </div>`;
}

function crumbs(
  ref: BrowseRef,
  parts: { group?: string; plural?: string; namespace?: string; name?: string },
): Crumb[] {
  const base = refSegments(ref);
  const out: Crumb[] = [{ label: "fleet", href: "/" }];
  if ("cluster" in ref) out.push({ label: ref.cluster.slice(0, 8), href: href("clusters", ref.cluster) });
  out.push({ label: refLabel(ref), href: href(...base) });
  if (parts.group !== undefined && parts.plural !== undefined) {
    out.push({
      label: resourceKey(parts.group, parts.plural),
      href: href(...base, parts.group, parts.plural),
    });
    if (parts.namespace !== undefined) {
      const ns = nsSegment(parts.namespace);
      out.push({
        label: parts.namespace || "(cluster-scoped)",
        href: href(...base, parts.group, parts.plural, ns),
      });
      if (parts.name !== undefined) out.push({ label: parts.name });
    }
  }
  return out;
}

async function overview(ctx: UiContext, req: UiRequest, ref: BrowseRef): Promise<Reply> {
  const m = await manifestOf(ctx, ref);
  const base = refSegments(ref);
  const rows = [...m.resources]
    .sort((a, b) => (resourceKey(a.group, a.plural) < resourceKey(b.group, b.plural) ? -1 : 1))
    .map((r) => {
      const link = r.namespaced
        ? href(...base, r.group, r.plural)
        : href(...base, r.group, r.plural, CLUSTER_SCOPE_SEGMENT);
      return html`<tr>
        <td><a href="${link}">${resourceKey(r.group, r.plural)}</a></td>
        <td>${r.kind}</td>
        <td>${r.version}</td>
        <td>${r.namespaced ? "Namespaced" : "Cluster"}</td>
        <td class="num">${r.count}</td>
        <td class="num">${formatBytes(r.bytes)}</td>
        <td>${r.consistent ? "yes" : html`<span class="warn">no</span>`}</td>
        <td>${r.errors.map((e) => html`<span class="bad">${e.reason}: ${e.message}</span> `)}</td>
      </tr>`;
    });
  const body = html`<dl class="facts">
      <dt>cluster</dt>
      <dd>
        <a class="mono" href="${href("clusters", m.cluster.uid)}">${m.cluster.uid}</a> (${m.cluster.server},
        ${m.cluster.serverVersion})
      </dd>
      <dt>status</dt>
      <dd>${m.status}${m.encryption ? " · encrypted" : ""}</dd>
      <dt>taken</dt>
      <dd>${m.startedAt} .. ${m.finishedAt}</dd>
      <dt>contents</dt>
      <dd>
        ${m.counts.crds} CRDs, ${m.counts.namespaces} namespaces, ${m.counts.objects} objects; archive
        ${formatBytes(m.archive.size)}
      </dd>
      ${
        "snapshot" in ref
          ? ""
          : html`<dt>rebuilt from</dt>
              <dd>base snapshot and journal, as <code>restore --at</code> does</dd>`
      }
    </dl>
    ${m.namespaceErrors.map((e) => html`<p class="warn">namespace not captured: ${e.namespace}: ${e.reason}: ${e.message}</p>`)}
    <table>
      <thead>
        <tr>
          <th>Resource</th>
          <th>Kind</th>
          <th>Version</th>
          <th>Scope</th>
          <th class="num">Objects</th>
          <th class="num">Size</th>
          <th>Consistent</th>
          <th>Errors</th>
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>`;
  return {
    html: page(
      "snapshot" in ref ? `Snapshot ${m.snapshotId}` : `State at ${m.finishedAt}`,
      crumbs(ref, {}),
      body,
    ),
  };
}

async function namespaces(
  ctx: UiContext,
  req: UiRequest,
  ref: BrowseRef,
  group: string,
  plural: string,
): Promise<Reply> {
  const r = resourceOf(await manifestOf(ctx, ref), group, plural);
  const base = refSegments(ref);
  if (!r.namespaced) return { redirect: href(...base, group, plural, CLUSTER_SCOPE_SEGMENT) };
  const list = await ctx.cache.use(ref, (i) => i.namespaces(group, plural, after(req), ctx.pageSize));
  const rows = list.items.map(
    (n) =>
      html`<tr>
        <td><a href="${href(...base, group, plural, n.namespace)}">${n.namespace}</a></td>
        <td class="num">${n.count}</td>
      </tr>`,
  );
  const body = html`<p>${r.kind} · ${r.count} objects in all</p>
    <table>
      <thead>
        <tr>
          <th>Namespace</th>
          <th class="num">Objects</th>
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>
    ${pager(req, list.next)}`;
  return { html: page(resourceKey(group, plural), crumbs(ref, { group, plural }), body) };
}

async function objects(
  ctx: UiContext,
  req: UiRequest,
  ref: BrowseRef,
  group: string,
  plural: string,
  ns: string,
): Promise<Reply> {
  const r = resourceOf(await manifestOf(ctx, ref), group, plural);
  const base = refSegments(ref);
  const namespace = nsOf(ns);
  const list = await ctx.cache.use(ref, (i) => i.objects(group, plural, namespace, after(req), ctx.pageSize));
  const rows = list.items.map(
    (o) =>
      html`<tr>
        <td><a href="${href(...base, group, plural, ns, o.name)}">${o.name}</a></td>
        <td>${o.kind}</td>
        <td class="num">${formatBytes(o.size)}</td>
        <td class="mono muted">${o.sha256.slice(0, 12)}</td>
      </tr>`,
  );
  const body = html`<p>${r.kind} in ${namespace || "no namespace (cluster-scoped)"}</p>
    <table class="objects">
      <thead>
        <tr>
          <th>Name</th>
          <th>Kind</th>
          <th class="num">Size</th>
          <th>SHA-256</th>
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>
    ${list.items.length === 0 && after(req) === "" ? html`<p class="muted">No objects here.</p>` : ""}${pager(req, list.next)}`;
  return {
    html: page(
      `${resourceKey(group, plural)} in ${namespace || "(cluster-scoped)"}`,
      crumbs(ref, { group, plural, namespace }),
      body,
    ),
  };
}

/** The copyable command: a code element and a button the page's one script copies it with. */
export function commandBlock(command: string, id: string): Html {
  return html`<div class="cmd">
    <code id="${id}">${command}</code><button type="button" data-copy="${id}">copy</button>
  </div>`;
}

async function object(ctx: UiContext, ref: BrowseRef, key: ObjectKey): Promise<Reply> {
  const found = await ctx.cache.use(ref, async (i) => ({
    manifest: i.manifest,
    object: await i.object(key),
  }));
  const where = key.namespace ? `${key.namespace}/${key.name}` : key.name;
  if (!found.object) {
    throw new CrdBackupError(
      "NOT_FOUND",
      `${refLabel(ref)} holds no ${resourceKey(key.group, key.plural)} ${where}`,
    );
  }
  const o = found.object;
  const yaml = toYaml(parseJson(o.body.toString("utf8")));
  const encrypted =
    found.manifest.encryption !== undefined || ("cluster" in ref && ctx.commands.identityFiles.length > 0);
  const command = restoreCommand(ctx.commands, ref, key, encrypted);
  const body = html`<dl class="facts">
      <dt>kind</dt>
      <dd>${o.kind} (${key.group}/${o.version})</dd>
      <dt>uid at backup</dt>
      <dd class="mono">${o.uid ?? "-"}</dd>
      <dt>size</dt>
      <dd>${formatBytes(o.size)}</dd>
      <dt>SHA-256</dt>
      <dd class="mono">${o.sha256}</dd>
      <dt>versions</dt>
      <dd>
        <a href="${href("objects", key.group, key.plural, nsSegment(key.namespace), key.name)}"
          >this object in every snapshot</a
        >
      </dd>
    </dl>
    <h2>Restore it as it is here (dry run)</h2>
    ${commandBlock(command, "restore-command")}
    <h2>YAML</h2>
    <pre class="yaml">${yaml}</pre>`;
  return { html: page(`${o.kind} ${where}`, crumbs(ref, { ...key }), body) };
}

/** The browse routes under a source: [] | [group, plural] | [.., namespace] | [.., name]. */
async function browse(ctx: UiContext, req: UiRequest, ref: BrowseRef, rest: string[]): Promise<Reply> {
  const [group, plural, ns, name, ...extra] = rest;
  if (extra.length > 0 || (group !== undefined && plural === undefined)) {
    throw new CrdBackupError("NOT_FOUND", `no page at ${req.url.pathname}`);
  }
  if (group === undefined) return overview(ctx, req, ref);
  if (ns === undefined) return namespaces(ctx, req, ref, group, plural!);
  if (name === undefined) return objects(ctx, req, ref, group, plural!, ns);
  return object(ctx, ref, { group, plural: plural!, namespace: nsOf(ns), name });
}

/** /snapshots/<id>/…; `latest` and `latest@<uid>` redirect to the id they name now. */
export async function snapshotRoute(
  ctx: UiContext,
  req: UiRequest,
  id: string,
  rest: string[],
): Promise<Reply> {
  if (!isSnapshotId(id)) {
    const resolved = await resolveSnapshot(ctx.storage, id);
    return { redirect: href("snapshots", resolved.id, ...rest) };
  }
  return browse(ctx, req, { snapshot: id }, rest);
}

/** /at/<uid>/<time>/…; `now` redirects to the end of the newest window (a time that stays put). */
export async function atRoute(
  ctx: UiContext,
  req: UiRequest,
  cluster: string,
  time: string,
  rest: string[],
): Promise<Reply> {
  const at = parseAt(time);
  if (at === "now" || !isCanonical(time, at)) {
    const plan = at === "now" ? await planPointInTime(ctx.storage, { at, cluster }) : { at, cluster };
    return { redirect: href("at", plan.cluster, plan.at.toISOString(), ...rest) };
  }
  return browse(ctx, req, { cluster, at }, rest);
}

function isCanonical(text: string, at: Date): boolean {
  return text === at.toISOString();
}

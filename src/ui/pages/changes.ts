/**
 * What differs between two states of the location: /changes?from=<ref>&to=<ref>, each a snapshot
 * id or `<cluster uid>@<RFC 3339 time>` (the state at that time, rebuilt as `restore --at` does).
 * The states are compared object by object (added, removed, changed), a page at a time; the
 * journal's record of each change in between plugs in with HistoryProvider.changes (/api/changes).
 */
import { CrdBackupError } from "../../errors.ts";
import { parseAt } from "../../journal/replay/plan.ts";
import { isSnapshotId } from "../../storage/layout.ts";
import type { BrowseRef } from "../browse-cache.ts";
import type { ChangeKey } from "../browse-index.ts";
import type { Reply, UiContext, UiRequest } from "../context.ts";
import { href, html, page, withQuery } from "../html.ts";
import { CLUSTER_SCOPE_SEGMENT, refSegments } from "./browse.ts";

/** A snapshot id, or `<uid>@<time>`. */
export function parseRef(text: string, which: string): BrowseRef {
  const id: unknown = text; // isSnapshotId narrows its argument: a string that is not one would be `never`
  if (isSnapshotId(id)) return { snapshot: id };
  const at = text.lastIndexOf("@");
  if (at > 0) {
    const time = parseAt(text.slice(at + 1));
    if (time !== "now") return { cluster: text.slice(0, at), at: time };
  }
  throw new CrdBackupError(
    "USAGE",
    `${which}=${JSON.stringify(text)} is neither a snapshot id nor <cluster uid>@<RFC 3339 time>`,
  );
}

export function refText(ref: BrowseRef): string {
  return "snapshot" in ref ? ref.snapshot : `${ref.cluster}@${ref.at.toISOString()}`;
}

/** `res/ns/name` in a URL: none of the three can hold a `/`. */
function parseAfter(text: string | null): ChangeKey | undefined {
  if (!text) return undefined;
  const [res, ns, name, ...extra] = text.split("/");
  if (res === undefined || ns === undefined || name === undefined || extra.length > 0) {
    throw new CrdBackupError("USAGE", `after=${JSON.stringify(text)} is not <resource>/<namespace>/<name>`);
  }
  return { res, ns, name };
}

function splitResource(res: string): { plural: string; group: string } {
  const dot = res.indexOf(".");
  return { plural: res.slice(0, dot), group: res.slice(dot + 1) };
}

export async function changesPage(ctx: UiContext, req: UiRequest): Promise<Reply> {
  const q = req.url.searchParams;
  const fromText = q.get("from") ?? "";
  const toText = q.get("to") ?? "";
  const from = parseRef(fromText, "from");
  const to = parseRef(toText, "to");
  const list = await ctx.cache.use(from, (older) =>
    ctx.cache.use(to, (newer) => older.changesTo(newer, parseAfter(q.get("after")), ctx.pageSize)),
  );
  const link = (ref: BrowseRef, c: ChangeKey, label: string) => {
    const { plural, group } = splitResource(c.res);
    return html`<a href="${href(...refSegments(ref), group, plural, c.ns || CLUSTER_SCOPE_SEGMENT, c.name)}"
      >${label}</a
    >`;
  };
  const rows = list.items.map((c) => {
    const { plural, group } = splitResource(c.res);
    const ns = c.ns || CLUSTER_SCOPE_SEGMENT;
    const bothSnapshots = "snapshot" in from && "snapshot" in to;
    return html`<tr>
      <td>${c.res}</td>
      <td>${c.ns || "(cluster-scoped)"}</td>
      <td><a href="${href("objects", group, plural, ns, c.name)}">${c.name}</a></td>
      <td class="${c.change === "added" ? "ok" : c.change === "removed" ? "bad" : "warn"}">${c.change}</td>
      <td>
        ${c.change !== "added" ? link(from, c, "before") : ""}
        ${c.change !== "removed" ? link(to, c, "after") : ""}
        ${c.change === "changed" && bothSnapshots ? html` · <a href="${withQuery(href("objects", group, plural, ns, c.name, "diff"), { from: refText(from), to: refText(to) })}">side by side</a>` : ""}
      </td>
    </tr>`;
  });
  const next = list.next ? `${list.next.res}/${list.next.ns}/${list.next.name}` : undefined;
  const body = html`<p>
      Objects that differ from <code>${refText(from)}</code> to <code>${refText(to)}</code>, by resource,
      namespace and name.
    </p>
    ${
      rows.length
        ? html`<table class="changes">
            <thead>
              <tr>
                <th>Resource</th>
                <th>Namespace</th>
                <th>Name</th>
                <th>Change</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              ${rows}
            </tbody>
          </table>`
        : html`<p class="muted">${q.get("after") ? "No more changes." : "Nothing differs."}</p>`
    }
    <div class="pager">
      ${q.get("after") ? html`<a href="${withQuery("/changes", { from: fromText, to: toText })}">first page</a>` : ""}${
        next
          ? html`<a rel="next" href="${withQuery("/changes", { from: fromText, to: toText, after: next })}"
              >next page</a
            >`
          : ""
      }
    </div>`;
  return { html: page("What changed", [{ label: "fleet", href: "/" }, { label: "changes" }], body) };
}

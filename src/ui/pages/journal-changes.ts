/**
 * /changes?since=<time>[&until=&cluster=]: what the journal recorded cluster-wide between two
 * times, as `crd-backup changes` summarises it (HistoryProvider.changes, the same function as
 * /api/changes): by resource and namespace, with counts, each object's change and changed paths,
 * and the gaps. A page of objects at a time (`skip=`); each object links to its history then.
 */
import { changeWord, countsText } from "../../history/index.ts";
import type { Reply, UiContext, UiRequest } from "../context.ts";
import { href, html, page, withQuery, type Html } from "../html.ts";
import { CLUSTER_SCOPE_SEGMENT } from "./browse.ts";

/** The form that picks the two times (RFC 3339 or a duration before now, as --since takes them). */
export function windowForm(since: string, until: string, cluster: string | undefined): Html {
  return html`<form class="at" method="get" action="/changes">
    <label>since <input name="since" value="${since}" placeholder="2h or 2026-12-03T05:20:00Z" /></label>
    <label>until <input name="until" value="${until}" placeholder="now" /></label>
    ${cluster ? html`<input type="hidden" name="cluster" value="${cluster}" />` : ""}
    <button type="submit">show changes</button>
  </form>`;
}

export async function journalChangesPage(ctx: UiContext, req: UiRequest): Promise<Reply> {
  const q = req.url.searchParams;
  const cluster = q.get("cluster") || undefined;
  const skip = Math.max(0, Number.parseInt(q.get("skip") ?? "0", 10) || 0);
  const s = await ctx.history!.changes(q, req.now, req.signal);
  const since = s.since.toISOString();
  const until = s.until.toISOString();
  const rows: Html[] = [];
  let n = 0; // objects before this one, over every group
  for (const g of s.groups) {
    const inPage = g.objects.slice(Math.max(0, skip - n), Math.max(0, skip + ctx.pageSize - n));
    n += g.objects.length;
    if (inPage.length === 0) continue;
    const [plural, group] = [
      g.resource.slice(0, g.resource.indexOf(".")),
      g.resource.slice(g.resource.indexOf(".") + 1),
    ];
    const ns = g.namespace ?? CLUSTER_SCOPE_SEGMENT;
    rows.push(
      html`<tr class="group">
        <th colspan="2">
          ${g.resource} ${g.namespace === undefined ? "(cluster-scoped)" : html`in ${g.namespace}`}
        </th>
        <th colspan="2" class="counts">${countsText(g.counts)}</th>
      </tr>`,
    );
    for (const o of inPage) {
      const what = changeWord(o);
      rows.push(
        html`<tr class="object">
          <td>
            <a href="${withQuery(href("objects", group, plural, ns, o.name), { cluster, since, until })}"
              >${o.name}</a
            >
          </td>
          <td class="${o.change === "deleted" ? "bad" : o.change === "updated" ? "warn" : "ok"}">${what}</td>
          <td class="num">${o.events}</td>
          <td>${o.paths.map((p) => html`<code>${p}</code> `)}</td>
        </tr>`,
      );
    }
  }
  const link = (skipTo: number) =>
    withQuery("/changes", { cluster, since, until, skip: skipTo || undefined });
  const body = html`${windowForm(q.get("since") ?? "", q.get("until") ?? "", cluster)}
    <p>
      Cluster <span class="mono">${s.cluster}</span>, ${since} to ${until}:
      <strong class="totals">${countsText(s.totals)}</strong>
    </p>
    ${
      rows.length
        ? html`<table class="journal-changes">
            <thead>
              <tr>
                <th>Name</th>
                <th>Change</th>
                <th class="num">Events</th>
                <th>Changed paths</th>
              </tr>
            </thead>
            <tbody>
              ${rows}
            </tbody>
          </table>`
        : html`<p class="muted">${skip ? "No more changes." : "Nothing changed."}</p>`
    }
    ${s.gaps.map(
      (g) =>
        html`<p class="error">
          not recorded from ${g.from.toISOString()} to ${g.to.toISOString()} (${g.reason};
          ${g.resources.join(", ")})
        </p>`,
    )}
    <div class="pager">
      ${skip ? html`<a href="${link(Math.max(0, skip - ctx.pageSize))}">previous page</a>` : ""}
      ${n > skip + ctx.pageSize ? html`<a rel="next" href="${link(skip + ctx.pageSize)}">next page</a>` : ""}
    </div>`;
  return {
    html: page("What the journal recorded", [{ label: "fleet", href: "/" }, { label: "changes" }], body),
  };
}

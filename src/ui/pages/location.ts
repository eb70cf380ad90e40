/**
 * The location's pages: the fleet (every cluster, how fresh its snapshots and journal are, its
 * last drill) and one cluster's timeline (snapshots, recorded windows, gaps). Both read only the
 * listing that `list -o json` prints (retention/listing.ts): manifests and segment keys.
 */
import { CrdBackupError } from "../../errors.ts";
import type { ChainSummary } from "../../journal/chains.ts";
import { listLocation, type SnapshotListing } from "../../retention/listing.ts";
import type { DrillResult, Reply, UiContext, UiRequest } from "../context.ts";
import { formatAge, formatBytes, href, html, page, withQuery, type Html } from "../html.ts";

/** A journal whose newest record is older than this is shown as falling behind. */
const JOURNAL_STALE_MS = 10 * 60_000;
/** A newest snapshot older than this is shown as falling behind (a daily schedule plus slack). */
const SNAPSHOT_STALE_MS = 26 * 3600_000;

interface ClusterView {
  uid: string;
  server: string | undefined;
  snapshots: SnapshotListing[];
  chains: ChainSummary[];
  drill: DrillResult | undefined;
}

async function clusters(ctx: UiContext): Promise<ClusterView[]> {
  const listing = await listLocation(ctx.storage, { onUnreadable: () => undefined });
  const byUid = new Map<string, ClusterView>();
  const view = (uid: string) => {
    let v = byUid.get(uid);
    if (!v) byUid.set(uid, (v = { uid, server: undefined, snapshots: [], chains: [], drill: undefined }));
    return v;
  };
  for (const row of listing.rows) {
    const v = view(row.cluster.uid);
    v.snapshots.push(row);
    // an encrypted snapshot's server is sealed; the newest plain one says it
    if ("server" in row.cluster) v.server = row.cluster.server;
  }
  for (const c of listing.chains.values()) view(c.cluster).chains.push(c);
  for (const v of byUid.values()) {
    const ids = new Set(v.snapshots.map((s) => s.id));
    v.drill = ctx.drills
      .filter((d) => d.snapshotId !== undefined && ids.has(d.snapshotId))
      .sort((a, b) => (a.finishedAt < b.finishedAt ? -1 : 1))
      .at(-1);
  }
  return [...byUid.values()].sort((a, b) => (a.uid < b.uid ? -1 : 1));
}

function age(iso: string, now: Date, staleMs: number): Html {
  const old = now.getTime() - Date.parse(iso) > staleMs;
  return html`<span class="${old ? "warn" : "ok"}" title="${iso}">${formatAge(iso, now)}</span>`;
}

function journalCell(chains: ChainSummary[], now: Date): Html {
  const newest = chains.filter((c) => c.from !== null).at(-1);
  if (!newest) return html`<span class="muted">not recorded</span>`;
  if (newest.broken) return html`<span class="bad">broken: ${newest.broken}</span>`;
  const end = newest.windows.at(-1)?.to;
  return html`recorded to
  ${age(newest.to, now, JOURNAL_STALE_MS)}${end && end !== newest.to ? html`, recoverable to ${end}` : ""}`;
}

function drillCell(d: DrillResult | undefined, now: Date): Html {
  if (!d) return html`<span class="muted">none stored</span>`;
  return html`<span class="${d.result === "pass" ? "ok" : "bad"}">${d.result.toUpperCase()}</span>
    ${formatAge(d.finishedAt, now)}${
      d.rtoSeconds !== undefined ? html`, RTO ${d.rtoSeconds}s` : ""
    }${d.reasons.length ? html` <span class="muted">(${d.reasons[0]})</span>` : ""}`;
}

export async function fleetPage(ctx: UiContext, req: UiRequest): Promise<Reply> {
  const all = await clusters(ctx);
  const rows = all.map((c) => {
    const latest = c.snapshots.at(-1);
    return html`<tr>
      <td><a class="mono" href="${href("clusters", c.uid)}">${c.uid}</a></td>
      <td>${c.server ?? html`<span class="muted">(encrypted)</span>`}</td>
      <td class="num">${c.snapshots.length}</td>
      <td>
        ${latest ? html`<a class="mono" href="${href("snapshots", latest.id)}">${latest.id}</a> ${age(latest.finishedAt, req.now, SNAPSHOT_STALE_MS)}${latest.status === "partial" ? html` <span class="warn">partial</span>` : ""}` : html`<span class="muted">none</span>`}
      </td>
      <td>${journalCell(c.chains, req.now)}</td>
      <td>${drillCell(c.drill, req.now)}</td>
    </tr>`;
  });
  const body = all.length
    ? html`<table class="fleet">
          <thead>
            <tr>
              <th>Cluster (kube-system uid)</th>
              <th>Server</th>
              <th class="num">Snapshots</th>
              <th>Latest snapshot</th>
              <th>Journal</th>
              <th>Last drill</th>
            </tr>
          </thead>
          <tbody>
            ${rows}
          </tbody>
        </table>
        ${ctx.drills.length ? "" : html`<p class="muted">Drill results: a location stores none (drill writes --report and --metrics-file); start the view with --drill-report FILE to show them.</p>`}`
    : html`<p>No snapshots or journals in ${ctx.storage.location}.</p>`;
  return { html: page(`Fleet: ${ctx.storage.location}`, [{ label: "fleet" }], body) };
}

/** x positions on the timeline bar: an SVG 1000 units wide, so geometry is attributes, not inline styles (the CSP allows none). */
function scale(start: number, end: number) {
  const span = Math.max(1, end - start);
  const x = (iso: string) => Math.min(1000, Math.max(0, ((Date.parse(iso) - start) / span) * 1000));
  return {
    x: (iso: string) => x(iso).toFixed(1),
    width: (from: string, to: string) => Math.max(2, x(to) - x(from)).toFixed(1),
  };
}

function bar(c: ClusterView): Html {
  const times = [
    ...c.snapshots.flatMap((s) => [s.startedAt, s.finishedAt]),
    ...c.chains.flatMap((ch) => [ch.from ?? ch.to, ch.to]),
  ].map((t) => Date.parse(t));
  const s = scale(Math.min(...times), Math.max(...times));
  const range = (cls: string, from: string, to: string, title: string) =>
    html`<rect class="${cls}" x="${s.x(from)}" y="18" width="${s.width(from, to)}" height="14"
      ><title>${title}</title></rect
    >`;
  return html`<svg
      class="timeline"
      viewBox="-4 0 1008 46"
      preserveAspectRatio="none"
      role="img"
      aria-label="timeline"
    >
      ${c.chains.flatMap((ch) => ch.windows.map((w) => range("window", w.from, w.to, `recoverable ${w.from} .. ${w.to}`)))}
      ${c.chains.flatMap((ch) => ch.gaps.map((g) => range("gap", g.from, g.to, `gap ${g.from} .. ${g.to}: ${g.reason}`)))}
      ${c.snapshots.map((sn) => html`<rect class="snap" x="${s.x(sn.finishedAt)}" y="4" width="3" height="38"><title>snapshot ${sn.id}</title></rect>`)}
    </svg>
    <div class="legend">
      <span><i class="snap"></i>snapshot</span><span><i class="window"></i>recoverable with --at</span
      ><span><i class="gap"></i>gap</span>
    </div>`;
}

/** The last hour of a recorded window (or all of it, when shorter): a change feed that opens quickly. */
function lastHour(w: { from: string; to: string }): string {
  return new Date(Math.max(Date.parse(w.from), Date.parse(w.to) - 3_600_000)).toISOString();
}

export async function clusterPage(ctx: UiContext, req: UiRequest, uid: string): Promise<Reply> {
  const all = await clusters(ctx);
  const matches = all.filter((c) => c.uid.startsWith(uid));
  if (matches.length !== 1) {
    throw new CrdBackupError(
      matches.length ? "USAGE" : "NOT_FOUND",
      matches.length
        ? `cluster ${uid}… is ambiguous: ${matches.map((c) => c.uid).join(", ")}`
        : `no snapshot or journal of a cluster ${uid}… in ${ctx.storage.location}`,
    );
  }
  const c = matches[0]!;
  if (c.uid !== uid) return { redirect: href("clusters", c.uid) };
  const snapshots = [...c.snapshots].reverse().map(
    (s, i, newestFirst) =>
      html`<tr>
        <td><a class="mono" href="${href("snapshots", s.id)}">${s.id}</a></td>
        <td>
          ${s.status === "complete" ? s.status : html`<span class="warn">${s.status}</span>`}${s.encrypted ? " · encrypted" : ""}
        </td>
        <td title="${s.finishedAt}">
          ${s.finishedAt} <span class="muted">(${formatAge(s.finishedAt, req.now)})</span>
        </td>
        <td class="num">${s.counts ? s.counts.objects : "-"}</td>
        <td class="num">${formatBytes(s.size)}</td>
        <td>${s.journal ? html`base of a journal to ${s.journal.to}` : ""}</td>
        <td>
          ${
            newestFirst[i + 1]
              ? html`<a
                  class="since"
                  href="${withQuery("/changes", { from: newestFirst[i + 1]!.id, to: s.id })}"
                  >changes since the one before</a
                >`
              : ""
          }
        </td>
      </tr>`,
  );
  const windows = c.chains.flatMap((ch) => [
    ...ch.windows.map(
      (w) =>
        html`<tr>
          <td class="ok">recoverable</td>
          <td>${w.from}</td>
          <td>${w.to}</td>
          <td>
            <a href="${href("at", c.uid, w.from)}">browse at start</a> ·
            <a href="${href("at", c.uid, w.to)}">browse at end</a>${
              ctx.history
                ? html` ·
                    <a
                      class="journal-changes"
                      href="${withQuery("/changes", { cluster: c.uid, since: lastHour(w), until: w.to })}"
                      >changes in its last hour</a
                    >`
                : ""
            }
          </td>
          <td class="mono">${ch.base}</td>
        </tr>`,
    ),
    ...ch.gaps.map(
      (g) =>
        html`<tr>
          <td class="bad">gap</td>
          <td>${g.from}</td>
          <td>${g.to}</td>
          <td>${g.reason} <span class="muted">(${g.resources.join(", ")})</span></td>
          <td class="mono">${ch.base}</td>
        </tr>`,
    ),
    ...(ch.broken
      ? [
          html`<tr>
            <td class="bad">broken</td>
            <td colspan="3">${ch.broken}</td>
            <td class="mono">${ch.base}</td>
          </tr>`,
        ]
      : []),
  ]);
  const body = html`<dl class="facts">
      <dt>server</dt>
      <dd>${c.server ?? "(encrypted)"}</dd>
      <dt>snapshots</dt>
      <dd>${c.snapshots.length}</dd>
      <dt>journal</dt>
      <dd>${journalCell(c.chains, req.now)}</dd>
      <dt>last drill</dt>
      <dd>${drillCell(c.drill, req.now)}</dd>
    </dl>
    ${bar(c)}
    <form class="at" method="get" action="${href("at", c.uid)}">
      <label for="t">Browse the state at</label>
      <input id="t" name="t" placeholder="2026-12-07T08:00:00Z or now" /><button>open</button>
    </form>
    <h2>Journal windows and gaps</h2>
    ${
      windows.length
        ? html`<table>
            <thead>
              <tr>
                <th></th>
                <th>From</th>
                <th>To</th>
                <th></th>
                <th>Base snapshot</th>
              </tr>
            </thead>
            <tbody>
              ${windows}
            </tbody>
          </table>`
        : html`<p class="muted">Not recorded: crd-backup record writes a journal.</p>`
    }
    <form class="at" method="get" action="/changes">
      <label for="from">What changed from</label>
      <input id="from" name="from" value="${c.snapshots.at(-2)?.id ?? ""}" />
      <label for="to">to</label><input id="to" name="to" value="${c.snapshots.at(-1)?.id ?? ""}" />
      <button>compare</button>
    </form>
    <p class="muted">
      Each side: a snapshot id, or ${c.uid}@&lt;RFC 3339 time&gt; for the state at that time.
    </p>
    <h2>Snapshots</h2>
    <table>
      <thead>
        <tr>
          <th>Snapshot</th>
          <th>Status</th>
          <th>Finished</th>
          <th class="num">Objects</th>
          <th class="num">Size</th>
          <th>Journal</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${snapshots}
      </tbody>
    </table>`;
  return {
    html: page(`Cluster ${c.uid}`, [{ label: "fleet", href: "/" }, { label: c.uid }], body),
  };
}

/** `/at/<uid>?t=…`: the form's answer, redirected to the canonical `/at/<uid>/<time>`. */
export function atForm(uid: string, t: string | null): Reply {
  if (!t) throw new CrdBackupError("USAGE", "give a time: an RFC 3339 time or now");
  return { redirect: withQuery(href("at", uid, t.trim()), {}) };
}

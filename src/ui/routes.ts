/**
 * Every address the view answers, in one table:
 *   /                                   the fleet
 *   /clusters/<uid>                     a cluster's timeline
 *   /snapshots/<id>[/<group>/<plural>[/<ns>[/<name>]]]   browse a snapshot
 *   /at/<uid>/<time>[/…]                browse the state at a time (as restore --at rebuilds it)
 *   /objects/<group>/<plural>/<ns>/<name>[/diff]          one object across time; two of its versions
 *                                       (diff?from=&to= two snapshots; diff?at=<time> a journal version)
 *   /changes?from=<ref>&to=<ref>        what differs between two snapshots or points in time
 *   /changes?since=<time>[&until=]      what the journal recorded in a window (HistoryProvider)
 *   /api/snapshots                      what `list -o json` prints
 *   /api/history, /api/changes          what `history -o json` / `changes -o json` print (HistoryProvider)
 */
import { CrdBackupError } from "../errors.ts";
import { listLocation } from "../retention/listing.ts";
import { COPY_JS, FAVICON_SVG, STYLE_CSS } from "./assets.ts";
import type { Reply, UiContext, UiRequest } from "./context.ts";
import { atRoute, snapshotRoute } from "./pages/browse.ts";
import { changesPage } from "./pages/changes.ts";
import { journalChangesPage } from "./pages/journal-changes.ts";
import { atForm, clusterPage, fleetPage } from "./pages/location.ts";
import { versionsPage } from "./pages/versions.ts";

function notFound(req: UiRequest): never {
  throw new CrdBackupError("NOT_FOUND", `no page at ${req.url.pathname}`);
}

async function api(ctx: UiContext, req: UiRequest, name: string | undefined, rest: string[]): Promise<Reply> {
  if (rest.length > 0) notFound(req);
  const q = req.url.searchParams;
  switch (name) {
    case "snapshots":
      return { json: (await listLocation(ctx.storage, { onUnreadable: () => undefined })).rows };
    case "history":
    case "changes": {
      if (!ctx.history) {
        return {
          status: 501,
          json: { error: `crd-backup: /api/${name} is not available in this version of the view` },
        };
      }
      const pieces =
        name === "history"
          ? await ctx.history.historyJson(q, req.now, req.signal)
          : await ctx.history.changesJson(q, req.now, req.signal);
      // the CLI's own text, a version or a group at a time
      return { stream: pieces, type: "application/json; charset=utf-8" };
    }
    default:
      return notFound(req);
  }
}

export async function route(ctx: UiContext, req: UiRequest): Promise<Reply> {
  const [first, ...rest] = req.segments;
  switch (first) {
    case undefined:
      return fleetPage(ctx, req);
    case "style.css":
      return { text: STYLE_CSS, type: "text/css; charset=utf-8" };
    case "favicon.svg":
    case "favicon.ico":
      return { text: FAVICON_SVG, type: "image/svg+xml" };
    case "copy.js":
      return { text: COPY_JS, type: "text/javascript; charset=utf-8" };
    case "clusters":
      return rest.length === 1 ? clusterPage(ctx, req, rest[0]!) : notFound(req);
    case "snapshots":
      return rest.length >= 1 ? snapshotRoute(ctx, req, rest[0]!, rest.slice(1)) : notFound(req);
    case "at":
      if (rest.length === 1) return atForm(rest[0]!, req.url.searchParams.get("t"));
      return rest.length >= 2 ? atRoute(ctx, req, rest[0]!, rest[1]!, rest.slice(2)) : notFound(req);
    case "objects":
      return versionsPage(ctx, req, rest);
    case "changes":
      if (rest.length > 0) return notFound(req);
      // since=: the journal's record of a window; from=&to=: two states compared
      return ctx.history && req.url.searchParams.has("since")
        ? journalChangesPage(ctx, req)
        : changesPage(ctx, req);
    case "api":
      return api(ctx, req, rest[0], rest.slice(1));
    default:
      return notFound(req);
  }
}

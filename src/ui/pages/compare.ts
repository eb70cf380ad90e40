/**
 * Two versions of one object side by side, as YAML with the changed lines marked:
 * /objects/<group>/<plural>/<namespace>/<name>/diff?from=<snapshot id>&to=<snapshot id>.
 * sideBySideTable renders any two versions, so journal versions (HistoryProvider) can use it too.
 */
import { CrdBackupError } from "../../errors.ts";
import { toYaml } from "../../export/yaml.ts";
import { parseJson } from "../../json/json.ts";
import { isSnapshotId } from "../../storage/layout.ts";
import { resourceKey, type ObjectKey } from "../browse-index.ts";
import type { Reply, UiContext, UiRequest } from "../context.ts";
import { href, html, page, type Html } from "../html.ts";
import { sideBySide } from "../line-diff.ts";

export function sideBySideTable(
  leftTitle: Html | string,
  left: string,
  rightTitle: Html | string,
  right: string,
): Html {
  const rows = sideBySide(left, right).map((r) => {
    if (r.kind === "fold")
      return html`<tr class="fold">
        <td colspan="4">… ${r.lines} unchanged lines</td>
      </tr>`;
    if (r.kind === "same") {
      return html`<tr>
        <td class="n">${r.left}</td>
        <td><code>${r.text}</code></td>
        <td class="n">${r.right}</td>
        <td><code>${r.text}</code></td>
      </tr>`;
    }
    return html`<tr>
      <td class="n">${r.left?.n}</td>
      <td class="${r.left ? "del" : "none"}"><code>${r.left?.text}</code></td>
      <td class="n">${r.right?.n}</td>
      <td class="${r.right ? "add" : "none"}"><code>${r.right?.text}</code></td>
    </tr>`;
  });
  return html`<table class="sbs">
    <colgroup>
      <col class="n" />
      <col />
      <col class="n" />
      <col />
    </colgroup>
    <thead>
      <tr>
        <th colspan="2">${leftTitle}</th>
        <th colspan="2">${rightTitle}</th>
      </tr>
    </thead>
    <tbody>
      ${rows}
    </tbody>
  </table>`;
}

async function yamlIn(ctx: UiContext, id: string, key: ObjectKey): Promise<string> {
  const o = await ctx.cache.use({ snapshot: id }, (i) => i.object(key));
  if (!o) {
    const where = key.namespace ? `${key.namespace}/${key.name}` : key.name;
    throw new CrdBackupError("NOT_FOUND", `${id} holds no ${resourceKey(key.group, key.plural)} ${where}`);
  }
  return toYaml(parseJson(o.body.toString("utf8")));
}

export async function comparePage(
  ctx: UiContext,
  req: UiRequest,
  key: ObjectKey,
  objectHref: string,
): Promise<Reply> {
  const from = req.url.searchParams.get("from") ?? "";
  const to = req.url.searchParams.get("to") ?? "";
  for (const id of [from, to]) {
    if (!isSnapshotId(id))
      throw new CrdBackupError("USAGE", `give from= and to= as snapshot ids, not ${JSON.stringify(id)}`);
  }
  const left = await yamlIn(ctx, from, key);
  const right = await yamlIn(ctx, to, key);
  const where = key.namespace ? `${key.namespace}/${key.name}` : key.name;
  const title = (id: string) =>
    html`<a
      class="mono"
      href="${href("snapshots", id, key.group, key.plural, key.namespace || "_", key.name)}"
      >${id}</a
    >`;
  const body = html`<p><a href="${objectHref}">every version of this object</a></p>
    ${left === right ? html`<p class="muted">The two versions are identical.</p>` : ""}
    ${sideBySideTable(title(from), left, title(to), right)}`;
  return {
    html: page(
      `${resourceKey(key.group, key.plural)} ${where}: ${from} → ${to}`,
      [{ label: "fleet", href: "/" }, { label: "objects", href: objectHref }, { label: "compare" }],
      body,
    ),
  };
}

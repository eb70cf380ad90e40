/**
 * HTML built as text, with every interpolated value escaped unless it is already Html: object
 * names, namespaces, labels and messages are user data, so the `html` tag escapes by default and
 * only markup built by this module passes through whole.
 */

export class Html {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | boolean | undefined | null | readonly Value[];

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function render(v: Value): string {
  if (v === undefined || v === null || v === false) return "";
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return (v as readonly Value[]).map(render).join("");
  return escapeHtml(String(v as string | number | boolean));
}

/** The template tag: literal parts are markup, every value is escaped (arrays are joined). */
export function html(parts: TemplateStringsArray, ...values: Value[]): Html {
  let out = parts[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + parts[i + 1]!;
  return new Html(out);
}

/** The error as one line, as the CLI prints it (its first line, never a stack trace). */
export function errorLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.split("\n")[0]!.trim() || (e instanceof Error ? e.name : "unknown error");
}

/** A URL path from segments, each percent-encoded (a name can never add a segment or a query). */
export function href(...segments: string[]): string {
  return "/" + segments.map(encodeURIComponent).join("/");
}

/** `path?k=v&...`, leaving out undefined values. */
export function withQuery(path: string, query: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export { formatBytes } from "../units/size.ts";

/** "3m ago", "2h 5m ago", "4d 3h ago": how old a time is against `now`. */
export function formatAge(iso: string, now: Date): string {
  const s = Math.round((now.getTime() - Date.parse(iso)) / 1000);
  if (s < 0) return `in ${formatSpan(-s)}`;
  return `${formatSpan(s)} ago`;
}

function formatSpan(s: number): string {
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export interface Crumb {
  label: string;
  href?: string;
}

/** The page shell: title, breadcrumbs, the one stylesheet and the one small script. */
export function page(title: string, crumbs: Crumb[], body: Html): Html {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · crd-backup</title>
        <link rel="stylesheet" href="/style.css" />
        <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
        <script src="/copy.js" defer></script>
      </head>
      <body>
        <header>
          <a class="brand" href="/">crd-backup</a>
          <nav>
            ${crumbs.map(
              (c, i) =>
                html`${i > 0 ? html`<span class="sep">/</span>` : ""}${c.href ? html`<a href="${c.href}">${c.label}</a>` : html`<span>${c.label}</span>`}`,
            )}
          </nav>
          <span class="ro">read-only</span>
        </header>
        <main>
          <h1>${title}</h1>
          ${body}
        </main>
      </body>
    </html> `;
}

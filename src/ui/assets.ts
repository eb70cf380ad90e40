/** The web view's only stylesheet and its only script, served as they are: no build step. */

export const STYLE_CSS = `
:root { --fg: #1d2330; --muted: #5f6b7a; --line: #d9dee5; --bg: #f6f7f9; --card: #fff;
  --ok: #1f7a3d; --warn: #a15c00; --bad: #b42318; --accent: #2454c5; --window: #3a9a5b; --gap: #d64545; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1.2rem; background: #1d2330; color: #fff; }
header a { color: #cfe0ff; text-decoration: none; }
header .brand { font-weight: 700; color: #fff; }
header nav { flex: 1; overflow-wrap: anywhere; }
header .sep { margin: 0 .4rem; color: #8a94a6; }
header .ro { font-size: 12px; border: 1px solid #8a94a6; border-radius: 3px; padding: 0 .4rem; color: #cfd6e2; }
main { padding: 1rem 1.2rem 3rem; max-width: 1200px; }
h1 { font-size: 20px; margin: .2rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 16px; margin: 1.6rem 0 .5rem; }
a { color: var(--accent); }
table { border-collapse: collapse; background: var(--card); border: 1px solid var(--line); width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f5; font-weight: 600; font-size: 13px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px; }
pre { background: var(--card); border: 1px solid var(--line); padding: .8rem; overflow: auto; max-height: 70vh; }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); } .muted { color: var(--muted); }
.error { border-left: 4px solid var(--bad); background: #fff1f0; padding: .8rem 1rem; font-family: ui-monospace, monospace; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin-bottom: 1rem; }
.facts dt { color: var(--muted); } .facts dd { margin: 0; overflow-wrap: anywhere; }
.cmd { display: flex; gap: .5rem; align-items: stretch; margin: .4rem 0 1rem; }
.cmd code { flex: 1; display: block; background: #1d2330; color: #e9eef7; padding: .5rem .7rem; border-radius: 4px; overflow-wrap: anywhere; }
.cmd button { cursor: pointer; border: 1px solid var(--line); background: var(--card); border-radius: 4px; padding: 0 .8rem; }
.pager { margin: .8rem 0; display: flex; gap: 1rem; }
.timeline { display: block; width: 100%; height: 46px; background: var(--card); border: 1px solid var(--line); margin: .5rem 0 .3rem; }
.timeline .window { fill: var(--window); opacity: .85; } .timeline .gap { fill: var(--gap); } .timeline .snap { fill: var(--accent); }
.legend { font-size: 12px; color: var(--muted); display: flex; gap: 1rem; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: .3rem; vertical-align: middle; }
.legend i.window { background: var(--window); } .legend i.gap { background: var(--gap); } .legend i.snap { background: var(--accent); }
table.sbs { table-layout: fixed; } table.sbs col.n { width: 3.5rem; } table.sbs td { padding: 0 .4rem; border: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
table.sbs td.n { width: 3.5rem; text-align: right; color: var(--muted); font-size: 12px; user-select: none; }
table.sbs td.del { background: #ffebe9; } table.sbs td.add { background: #dafbe1; } table.sbs td.none { background: #f3f4f6; }
table.sbs tr.fold td { background: #eef1f5; color: var(--muted); font-size: 12px; padding: .2rem .6rem; }
form.at { margin: .5rem 0 1rem; display: flex; gap: .5rem; }
form.at input { font: inherit; padding: .2rem .4rem; min-width: 18rem; }
table.journal tr.gap td { background: #fff1f0; color: var(--bad); font-size: 13px; }
table.journal td.when { white-space: nowrap; }
ul.paths { margin: 0; padding-left: 1.1rem; }
`;

/** Copies a restore command to the clipboard; without the Clipboard API (plain HTTP) it selects it. */
export const COPY_JS = `
document.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-copy]");
  if (!b) return;
  const code = document.getElementById(b.dataset.copy);
  const done = () => { b.textContent = "copied"; setTimeout(() => (b.textContent = "copy"), 1500); };
  if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(code.textContent).then(done);
  else { const r = document.createRange(); r.selectNodeContents(code); const s = getSelection(); s.removeAllRanges(); s.addRange(r); }
});
`;

/** A small icon, so browsers find one where they look for it. */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2454c5"/><path d="M4 5h8M4 8h8M4 11h5" stroke="#fff" stroke-width="1.6"/></svg>`;

/** Writing results: JSON for machines (-o json), aligned text for people. Results go to stdout, logs to stderr. */

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

/**
 * A report as indented JSON, written piece by piece: a restore's report has an entry per object,
 * read back from disk, and building it as one string would cost as much memory as the whole restore.
 */
export async function writeReportJson(
  out: NodeJS.WritableStream,
  head: object,
  entries: Iterable<unknown> | AsyncIterable<unknown>,
): Promise<void> {
  const write = (s: string) =>
    out.write(s) ? Promise.resolve() : new Promise<void>((resolve) => out.once("drain", () => resolve()));
  await write(JSON.stringify(head, null, 2).replace(/\n}$/, ',\n  "entries": ['));
  let n = 0;
  let chunk: string[] = [];
  for await (const e of entries) {
    chunk.push((n++ > 0 ? "," : "") + "\n    " + JSON.stringify(e, null, 2).replaceAll("\n", "\n    "));
    if (chunk.length === 500) {
      await write(chunk.join(""));
      chunk = [];
    }
  }
  await write(chunk.join("") + (n > 0 ? "\n  ]\n}\n" : "]\n}\n"));
}

export function printLines(lines: string[]): void {
  if (lines.length > 0) process.stdout.write(lines.join("\n") + "\n");
}

export function table(header: string[], rows: (string | number)[][]): string[] {
  const all = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

export { formatBytes } from "../src/units/size.ts";

/**
 * Side-by-side line diffs of two versions of an object's YAML: the common head and tail are cut
 * off first (most changes touch a few lines), the middle is aligned by a longest common
 * subsequence, bounded by MAX_CELLS so a pair of huge objects costs a bounded table (beyond it,
 * the middle is shown as one changed block). Unchanged runs are folded to CONTEXT lines.
 */

/** One row of a side-by-side view; line numbers are 1-based. */
export type DiffRow =
  | { kind: "same"; left: number; right: number; text: string }
  | { kind: "changed"; left?: { n: number; text: string }; right?: { n: number; text: string } }
  | { kind: "fold"; lines: number };

/** Cells of the alignment table at most (2 bytes each): 8 MB. */
const MAX_CELLS = 4_000_000;
/** Unchanged lines kept around each change. */
const CONTEXT = 3;

type Op = { kind: "same"; a: number; b: number } | { kind: "del"; a: number } | { kind: "add"; b: number };

/** The edit script of a[from..] against b[from..] (their ends already cut), by LCS. */
function align(a: string[], b: string[], start: number, endA: number, endB: number): Op[] {
  const n = endA - start;
  const m = endB - start;
  const ops: Op[] = [];
  if (n * m > MAX_CELLS || n > 65535 || m > 65535) {
    for (let i = 0; i < n; i++) ops.push({ kind: "del", a: start + i });
    for (let j = 0; j < m; j++) ops.push({ kind: "add", b: start + j });
    return ops;
  }
  // lcs[i][j]: the longest common subsequence of a[start+i..endA) and b[start+j..endB)
  const w = m + 1;
  const lcs = new Uint16Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] =
        a[start + i] === b[start + j]
          ? lcs[(i + 1) * w + j + 1]! + 1
          : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
    }
  }
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[start + i] === b[start + j])
      ops.push({ kind: "same", a: start + i++, b: start + j++ });
    else if (j < m && (i === n || lcs[i * w + j + 1]! >= lcs[(i + 1) * w + j]!))
      ops.push({ kind: "add", b: start + j++ });
    else ops.push({ kind: "del", a: start + i++ });
  }
  return ops;
}

/** The rows of a side-by-side view of `left` against `right` (texts split into lines). */
export function sideBySide(left: string, right: string): DiffRow[] {
  // a final newline ends the last line; it does not start another
  const a = left.replace(/\n$/, "").split("\n");
  const b = right.replace(/\n$/, "").split("\n");
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail++;
  const ops: Op[] = [];
  for (let i = 0; i < head; i++) ops.push({ kind: "same", a: i, b: i });
  ops.push(...align(a, b, head, a.length - tail, b.length - tail));
  for (let k = tail; k > 0; k--) ops.push({ kind: "same", a: a.length - k, b: b.length - k });

  // pair each run of deletions with the additions that follow it, line by line
  const rows: DiffRow[] = [];
  for (let k = 0; k < ops.length;) {
    const op = ops[k]!;
    if (op.kind === "same") {
      rows.push({ kind: "same", left: op.a + 1, right: op.b + 1, text: a[op.a]! });
      k++;
      continue;
    }
    const dels: number[] = [];
    const adds: number[] = [];
    while (k < ops.length && ops[k]!.kind !== "same") {
      const o = ops[k++]!;
      if (o.kind === "del") dels.push(o.a);
      else if (o.kind === "add") adds.push(o.b);
    }
    for (let x = 0; x < Math.max(dels.length, adds.length); x++) {
      const l = dels[x];
      const r = adds[x];
      rows.push({
        kind: "changed",
        ...(l === undefined ? {} : { left: { n: l + 1, text: a[l]! } }),
        ...(r === undefined ? {} : { right: { n: r + 1, text: b[r]! } }),
      });
    }
  }
  return fold(rows);
}

/** Unchanged runs longer than twice CONTEXT, folded to their first and last CONTEXT lines. */
function fold(rows: DiffRow[]): DiffRow[] {
  const near = rows.map(() => false);
  rows.forEach((r, i) => {
    if (r.kind !== "changed") return;
    for (let k = Math.max(0, i - CONTEXT); k <= Math.min(rows.length - 1, i + CONTEXT); k++) near[k] = true;
  });
  const out: DiffRow[] = [];
  let folded = 0;
  rows.forEach((r, i) => {
    if (near[i] || r.kind === "changed") {
      if (folded > 0) out.push({ kind: "fold", lines: folded });
      folded = 0;
      out.push(r);
    } else folded++;
  });
  if (folded > 0) out.push({ kind: "fold", lines: folded });
  return out;
}

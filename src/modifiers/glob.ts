/**
 * Globs with a separator, as Velero compiles groupResource (gobwas/glob with '.'): `*` matches
 * within one separated part, `**` across parts, `?` one character of a part, `{a,b}` either,
 * `[abc]` / `[!abc]` a class. The same syntax over JSON pointers ('/') picks replaceRegex paths.
 */
export function compileGlob(glob: string, separator: string): RegExp | { error: string } {
  const sep = separator.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  let out = "";
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        out += ".*";
        i++;
      } else out += `[^${sep}]*`;
    } else if (c === "?") out += `[^${sep}]`;
    else if (c === "{") {
      braces++;
      out += "(?:";
    } else if (c === "}" && braces > 0) {
      braces--;
      out += ")";
    } else if (c === "," && braces > 0) out += "|";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) return { error: `glob "${glob}": "[" is not closed` };
      let cls = glob.slice(i + 1, end);
      const negate = cls.startsWith("!");
      if (negate) cls = cls.slice(1);
      out += `[${negate ? "^" : ""}${cls.replace(/[\\\]^]/g, "\\$&")}]`;
      i = end;
    } else if (c === "\\" && i + 1 < glob.length) {
      out += glob[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  if (braces > 0) return { error: `glob "${glob}": "{" is not closed` };
  try {
    return new RegExp(`^${out}$`, "u");
  } catch (e) {
    return { error: `glob "${glob}": ${(e as Error).message}` };
  }
}

/** How `changes` names what happened, in words: one wording for the CLI's text and the web view. */
import type { ChangeCounts, ObjectChange } from "./changes.ts";

const KINDS = ["created", "updated", "deleted", "recreated", "transient"] as const;

/** What happened to one object: its change, "status only" for an update of status alone. */
export function changeWord(o: Pick<ObjectChange, "change" | "statusOnly">): string {
  if (o.change === "updated" && o.statusOnly) return "status only";
  return o.change === "transient" ? "created and deleted" : o.change;
}

/** "3 created, 1 updated", or "no change". */
export function countsText(c: ChangeCounts): string {
  const parts = KINDS.filter((k) => c[k] > 0).map(
    (k) => `${c[k]} ${k === "transient" ? "created and deleted" : k}`,
  );
  return parts.join(", ") || "no change";
}

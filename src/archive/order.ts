/**
 * The entry order of docs/format.md: header, crds, objects (resources may interleave), namespaces,
 * index. Writer and reader share this one state machine so they cannot disagree. Memory grows with
 * the number of CRDs and Namespaces, never with the number of objects.
 */
import { archiveInvalid, quote, type EntryKind } from "./format.ts";
import type { ParsedEntryName } from "./names.ts";

const RANK: Record<EntryKind, number> = { header: 0, crd: 1, object: 2, namespace: 3, index: 4 };

export class EntryOrder {
  #rank = -1;
  readonly #crds = new Set<string>();
  readonly #namespaces = new Set<string>();

  /** Record the next entry, or throw ARCHIVE_INVALID naming it and the rule it breaks. */
  accept(entry: string, parsed: ParsedEntryName): void {
    const bad = (why: string) =>
      archiveInvalid(`archive entry ${quote(entry)} is out of order: ${why}`, { entry });
    const rank = RANK[parsed.kind];
    if (this.#rank === RANK.index) throw bad("nothing may follow index.jsonl");
    if (this.#rank === -1 && parsed.kind !== "header") throw bad("the header entry must come first");
    if (this.#rank !== -1 && parsed.kind === "header")
      throw bad("the header entry may appear only once, first");
    if (rank < this.#rank)
      throw bad(`${parsed.kind} entries must come before ${kindOfRank(this.#rank)} entries`);
    this.#rank = rank;

    if (parsed.kind === "crd") {
      if (this.#crds.has(parsed.name)) throw bad("this CustomResourceDefinition is already in the archive");
      this.#crds.add(parsed.name);
    } else if (parsed.kind === "namespace") {
      if (this.#namespaces.has(parsed.name)) throw bad("this Namespace is already in the archive");
      this.#namespaces.add(parsed.name);
    }
  }

  get sawIndex(): boolean {
    return this.#rank === RANK.index;
  }
}

function kindOfRank(rank: number): string {
  return (Object.keys(RANK) as EntryKind[]).find((k) => RANK[k] === rank) ?? "earlier";
}

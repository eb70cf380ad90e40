/**
 * The object entries a plan decided on, kept from planning's pass over the archive so writing
 * needs no pass of its own: each pass over the verified copy decompresses, hashes and indexes every
 * entry again (about 0.6 s of CPU at 50,000 objects), where a sync with 1% to write needs 500
 * bodies. Kept: who each decided object is (its ref, uid and owners' uids, about 250 bytes), and
 * the body only where writing reads it (a create, an update, a skip's diff). Within a budget: past
 * it nothing is kept and writing reads the archive again, so memory stays bounded whatever the
 * snapshot's size.
 */
import type { ObjectEntry } from "./item.ts";
import type { ItemAction } from "./decisions.ts";
import { MAX_STORED_TEXTS } from "./stored-texts.ts";

/** Decided objects kept at most: the bound stored-texts.ts puts on its digests (about 25 MB). */
export const MAX_KEPT_OBJECTS = MAX_STORED_TEXTS;
/** Bodies kept at most, in bytes: a sync that changes little (1% of 50,000 objects is 0.7 MB); a
 * restore that creates most of a large snapshot drops them early and reads the archive again. */
export const MAX_KEPT_BYTES = 8 * 1024 * 1024;

const NO_BODY = Buffer.alloc(0);

export interface KeptEntry {
  /** The object's position among the archive's object entries. */
  ordinal: number;
  entry: ObjectEntry;
}

export class KeptEntries {
  readonly #kept: KeptEntry[] = [];
  #bytes = 0;
  #over = false;

  /**
   * Keeps a decided object (`withBody`: the plan's modifiers read every body, so every body is
   * kept); false once past the budget, when everything kept is dropped.
   */
  add(ordinal: number, entry: ObjectEntry, action: ItemAction, withBody: boolean): boolean {
    if (this.#over) return false;
    const body = withBody || action === "create" || action === "update" || action === "skip";
    this.#bytes += body ? entry.body.length : 0;
    if (this.#kept.length >= MAX_KEPT_OBJECTS || this.#bytes > MAX_KEPT_BYTES) {
      this.#over = true;
      this.#kept.length = 0;
      return false;
    }
    const { uid, ownerUids } = entry.record;
    this.#kept.push({
      ordinal,
      entry: {
        ref: entry.ref,
        record: { uid, ownerUids },
        // a copy: the reader's body may be a view of a whole decompressed chunk
        body: body ? Buffer.from(entry.body) : NO_BODY,
      },
    });
    return true;
  }

  /** Every decided object in the archive's order; undefined when past the budget (read the archive). */
  entries(): readonly KeptEntry[] | undefined {
    return this.#over ? undefined : this.#kept;
  }
}

/**
 * Which object entries of an archive the filters select (`--include-*`, `--exclude-*`, `-l`): the
 * one filter restore planning, diff, a drill's check and `modifiers test` apply to archived objects.
 * Resource and namespace come from the entry's name; the body is read only when a label selector
 * asks, and then only metadata.labels is parsed: at a restore of 300k objects the filter must cost
 * next to nothing per object, so verdicts per resource are kept and nothing is allocated per entry.
 */
import type { ObjectRef } from "../archive/format.ts";
import { isJsonObject, type JsonValue } from "../json/json.ts";
import { MemberCursor, parseAt, type Member } from "../json/scan.ts";
import { nameSelected, namespaceSelected, resourceSelected, type Filters } from "./filters.ts";
import { parseSelector } from "./selector.ts";

type Labels = Record<string, string>;

/** What an object without labels is matched against (selectors only read it). */
const NO_LABELS: Labels = Object.freeze({});

export class EntryFilter {
  readonly #filters: Filters;
  readonly #selector: ((labels: Labels) => boolean) | undefined;
  readonly #within: { has(resource: string): boolean } | undefined;
  /** group -> plural -> selected: one verdict per resource, no key built per entry. */
  readonly #resources = new Map<string, Map<string, boolean>>();

  /**
   * `within`: the resources (`plural.group`) the caller takes, when it takes fewer than the filters
   * select (those a restore plans, those a drill restored); an entry outside them is not selected.
   */
  constructor(filters: Filters, within?: { has(resource: string): boolean }) {
    this.#filters = filters;
    this.#selector = filters.selector ? parseSelector(filters.selector) : undefined;
    this.#within = within;
  }

  /** Whether a label selector is given: only then does selectsLabels read a body. */
  get readsLabels(): boolean {
    return this.#selector !== undefined;
  }

  /** The resource, namespace and name filters, on the entry's name alone. */
  selectsRef(ref: Pick<ObjectRef, "group" | "plural" | "namespace" | "name">): boolean {
    let plurals = this.#resources.get(ref.group);
    if (!plurals) this.#resources.set(ref.group, (plurals = new Map()));
    let resource = plurals.get(ref.plural);
    if (resource === undefined) {
      resource =
        resourceSelected(this.#filters, ref.group, ref.plural) &&
        (this.#within?.has(`${ref.plural}.${ref.group}`) ?? true);
      plurals.set(ref.plural, resource);
    }
    return (
      resource && namespaceSelected(this.#filters, ref.namespace) && nameSelected(this.#filters, ref.name)
    );
  }

  /**
   * The label selector, on an object body (true without one). `members`: the body's top-level
   * members, when the caller has scanned them already (restore planning does).
   */
  selectsLabels(body: Buffer, members?: readonly Member[]): boolean {
    return this.#selector ? this.#selector(labelsOf(body, members)) : true;
  }

  /** Both, for an object entry: the body is read only when the name is selected and a selector asks. */
  selects(entry: { ref: Pick<ObjectRef, "group" | "plural" | "namespace" | "name">; body: Buffer }): boolean {
    return this.selectsRef(entry.ref) && this.selectsLabels(entry.body);
  }
}

/**
 * metadata.labels of an object body, found by scanning and parsed alone (none when absent or not
 * an object). A repeated key counts as JSON.parse counts it, and as everything else reads the body: the last.
 */
function labelsOf(body: Buffer, members: readonly Member[] | undefined): Labels {
  let metadata = -1;
  if (members) {
    for (const m of members) if (m.key === "metadata") metadata = m.valueStart;
  } else {
    const top = new MemberCursor(body, 0);
    while (top.next()) if (top.keyIs("metadata")) metadata = top.valueStart;
  }
  if (metadata < 0 || body[metadata] !== 0x7b) return NO_LABELS;
  const md = new MemberCursor(body, metadata);
  let start = -1;
  let end = -1;
  while (md.next()) {
    if (md.keyIs("labels")) {
      start = md.valueStart;
      end = md.end;
    }
  }
  if (start < 0) return NO_LABELS;
  const labels = parseAt(body, start, end) as JsonValue;
  return isJsonObject(labels) ? (labels as Labels) : NO_LABELS;
}

import { KubeApiError } from "../errors.ts";
import type { KubeClient } from "./client.ts";
import { isJsonObject, parseJson, type JsonObject } from "../json/json.ts";
import {
  ElementCursor,
  leadingMember,
  MemberCursor,
  objectMembers,
  parseAt,
  skipWhitespace,
  trailingMember,
} from "../json/scan.ts";

export interface ListOptions {
  /** Objects per page (the API server's `limit`). */
  pageSize: number;
  labelSelector?: string;
  signal?: AbortSignal;
  /** Where listRawPages takes buffers to receive pages into, and returns them; shared between listings. */
  buffers?: PageBuffers;
}

/**
 * Buffers that once held a page, free to receive another. A snapshot's listings share one set, so
 * the whole snapshot allocates about two buffers per listing in flight, each sized for a page,
 * instead of a few per listing: a buffer dropped in the old generation is freed only by a full
 * GC, so churned buffers pile up in RSS until one runs, and make V8 run more of them.
 */
export class PageBuffers {
  readonly #spare: Buffer[] = [];

  take(): Buffer | undefined {
    return this.#spare.pop();
  }

  give(buffer: Buffer): void {
    this.#spare.push(buffer);
  }
}

/** What a paginated listing learned besides its objects; filled in as pages arrive. */
export interface ListOutcome {
  /** resourceVersion of the first page: the snapshot of etcd the listing started from. */
  resourceVersion: string;
  /** False once a continue token expired and the rest came from a newer, inconsistent snapshot. */
  consistent: boolean;
  pages: number;
  expiredTokens: number;
}

interface Page<T> {
  items: T;
  token: string | undefined;
  /** The buffer the page was received into, to receive a later page once this one is done with. */
  reusable?: Buffer | undefined;
}

/**
 * A page as the bytes received, whose items are read one at a time by a caller that finds each
 * item's end itself (cleaning an object walks it anyway): the page is scanned once, not once to
 * split it and again to clean it. The list's metadata (the continue token) was read up front, so
 * the next page can be asked for before the items are read.
 */
export class RawPage {
  readonly bytes: Buffer;
  readonly #path: string;
  readonly #items: ElementCursor | undefined;
  /** Where the list's own metadata member starts, when it was found from the end of the text. */
  readonly #metadataAt: number;

  constructor(path: string, bytes: Buffer, itemsAt: number, metadataAt: number) {
    this.bytes = bytes;
    this.#path = path;
    this.#items = itemsAt < 0 ? undefined : new ElementCursor(bytes, itemsAt);
    this.#metadataAt = metadataAt;
  }

  /**
   * The start of the next item, given the index after the previous one; -1 after the last, once
   * the rest of the page has been checked to be the list it claimed to be.
   */
  nextItem(previousEnd?: number): number {
    if (!this.#items) return -1;
    if (this.#items.next(previousEnd)) return this.#items.start;
    if (this.#metadataAt >= 0) checkListTail(this.#path, this.bytes, this.#items.end, this.#metadataAt);
    return -1;
  }
}

/**
 * Pages through a collection with limit/continue, yielding one page at a time. The next page is
 * requested before the current one is handed over, so the API server works while the caller
 * processes: memory holds at most two pages per listing, never the collection.
 *
 * An expired continue token (410) is continued with the token the server returns for that
 * purpose: every key is still visited exactly once, in order, but later pages may be newer than
 * earlier ones, so the outcome is marked inconsistent rather than the listing silently restarting
 * (which would duplicate what was already written).
 */
export function listPages(
  client: KubeClient,
  path: string,
  options: ListOptions,
  outcome: ListOutcome = newListOutcome(),
): AsyncGenerator<JsonObject[], ListOutcome> {
  return paged(client, path, options, outcome, parsePage, undefined);
}

/**
 * listPages without parsing: each page's bytes and its items' spans (see json-scan.ts). A page's
 * bytes are valid until the next page is asked for: a later page (of this listing, or of another
 * sharing options.buffers) is received into the same buffer.
 */
export function listRawPages(
  client: KubeClient,
  path: string,
  options: ListOptions,
  outcome: ListOutcome = newListOutcome(),
): AsyncGenerator<RawPage, ListOutcome> {
  return paged(client, path, options, outcome, scanPage, options.buffers ?? new PageBuffers());
}

async function* paged<T>(
  client: KubeClient,
  path: string,
  options: ListOptions,
  outcome: ListOutcome,
  parse: (path: string, body: Buffer, outcome: ListOutcome) => Page<T>,
  buffers: PageBuffers | undefined,
): AsyncGenerator<T, ListOutcome> {
  let lastPageBytes = 0;
  const fetchPage = async (token: string | undefined): Promise<Page<T>> => {
    for (;;) {
      try {
        const response = await client.request({
          path,
          query: { limit: options.pageSize, continue: token, labelSelector: options.labelSelector },
          signal: options.signal,
          // pages of one listing are alike: a little more than the last one saves growing the buffer
          expectedBytes: lastPageBytes + (lastPageBytes >> 3),
          receiveInto: buffers?.take(),
        });
        lastPageBytes = response.body.length;
        const page = parse(path, response.body, outcome);
        if (buffers) page.reusable = response.reusable;
        return page;
      } catch (e) {
        if (e instanceof KubeApiError && e.status === 410 && token !== undefined && e.continueToken) {
          outcome.consistent = false;
          outcome.expiredTokens++;
          token = e.continueToken;
          continue;
        }
        throw e;
      }
    }
  };
  let next: Promise<Page<T>> | undefined = fetchPage(undefined);
  while (next) {
    const page: Page<T> = await next;
    next = page.token !== undefined ? fetchPage(page.token) : undefined;
    // an abandoned prefetch must not surface as an unhandled rejection
    next?.catch(() => undefined);
    yield page.items;
    if (page.reusable) buffers?.give(page.reusable); // the caller has moved on from this page
  }
  return outcome;
}

function parsePage(path: string, body: Buffer, outcome: ListOutcome): Page<JsonObject[]> {
  const list = parseJson(body.toString("utf8"));
  if (!isJsonObject(list) || !Array.isArray(list["items"]) || !isJsonObject(list["metadata"])) {
    throw notAList(path);
  }
  return { items: list["items"].filter(isJsonObject), token: pageMetadata(list["metadata"], outcome) };
}

function scanPage(path: string, bytes: Buffer, outcome: ListOutcome): Page<RawPage> {
  // kube-apiserver writes a custom resource list as {"apiVersion","items","kind","metadata"}: find
  // the metadata from the end and the items from the start, so the items need no scan of their own
  const trailing = trailingMember(bytes, "metadata");
  if (trailing) {
    const itemsAt = leadingMember(bytes, "items");
    if (itemsAt !== undefined && bytes[itemsAt] === 0x5b) {
      const token = pageMetadata(trailing.value, outcome);
      return { items: new RawPage(path, bytes, itemsAt, trailing.start), token };
    }
  }
  // any other layout: one full scan to find the members
  const { members, end } = objectMembers(bytes, skipWhitespace(bytes, 0));
  const items = members.find((m) => m.key === "items");
  const metadata = members.find((m) => m.key === "metadata");
  if (!metadata || bytes[metadata.valueStart] !== 0x7b || skipWhitespace(bytes, end) !== bytes.length)
    throw notAList(path);
  // a list's metadata holds only strings and counts: a plain parse is exact
  const token = pageMetadata(parseAt(bytes, metadata.valueStart, metadata.end) as JsonObject, outcome);
  const itemsAt = items && bytes[items.valueStart] === 0x5b ? items.valueStart : -1;
  return { items: new RawPage(path, bytes, itemsAt, -1), token };
}

function pageMetadata(metadata: JsonObject, outcome: ListOutcome): string | undefined {
  if (outcome.pages === 0) outcome.resourceVersion = String(metadata["resourceVersion"] ?? "");
  outcome.pages++;
  return typeof metadata["continue"] === "string" && metadata["continue"] ? metadata["continue"] : undefined;
}

export function newListOutcome(): ListOutcome {
  return { resourceVersion: "", consistent: true, pages: 0, expiredTokens: 0 };
}

/**
 * After the last item: the rest of the list is members up to the metadata found from the end, and
 * nothing after the list. Until this holds, that metadata could have been a nested object's.
 */
function checkListTail(path: string, bytes: Buffer, afterItems: number, metadataAt: number): void {
  const rest = MemberCursor.after(bytes, afterItems);
  let sawMetadata = false;
  while (rest.next()) if (rest.keyStart === metadataAt) sawMetadata = true;
  if (!sawMetadata || skipWhitespace(bytes, rest.objectEnd) !== bytes.length) {
    throw notAList(path);
  }
}

function notAList(path: string): KubeApiError {
  return new KubeApiError(200, `GET ${path}: the answer is not a list`, { method: "GET", path });
}

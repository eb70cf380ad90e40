import { KubeApiError } from "../errors.ts";
import type { KubeClient } from "./client.ts";
import { isJsonObject, parseJson, type JsonObject } from "./json.ts";

export interface ListOptions {
  /** Objects per page (the API server's `limit`). */
  pageSize: number;
  labelSelector?: string;
  signal?: AbortSignal;
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

interface Page {
  items: JsonObject[];
  token: string | undefined;
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
export async function* listPages(
  client: KubeClient,
  path: string,
  options: ListOptions,
  outcome: ListOutcome = newListOutcome(),
): AsyncGenerator<JsonObject[], ListOutcome> {
  const fetchPage = async (token: string | undefined): Promise<Page> => {
    for (;;) {
      try {
        const { text } = await client.request({
          path,
          query: { limit: options.pageSize, continue: token, labelSelector: options.labelSelector },
          signal: options.signal,
        });
        return parsePage(path, text, outcome);
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
  let next: Promise<Page> | undefined = fetchPage(undefined);
  while (next) {
    const page: Page = await next;
    next = page.token !== undefined ? fetchPage(page.token) : undefined;
    // an abandoned prefetch must not surface as an unhandled rejection
    next?.catch(() => undefined);
    yield page.items;
  }
  return outcome;
}

function parsePage(path: string, text: string, outcome: ListOutcome): Page {
  const list = parseJson(text);
  if (!isJsonObject(list) || !Array.isArray(list["items"]) || !isJsonObject(list["metadata"])) {
    throw new KubeApiError(200, `GET ${path}: the answer is not a list`, { method: "GET", path });
  }
  const metadata = list["metadata"];
  if (outcome.pages === 0) outcome.resourceVersion = String(metadata["resourceVersion"] ?? "");
  outcome.pages++;
  const token =
    typeof metadata["continue"] === "string" && metadata["continue"] ? metadata["continue"] : undefined;
  return { items: list["items"].filter(isJsonObject), token };
}

export function newListOutcome(): ListOutcome {
  return { resourceVersion: "", consistent: true, pages: 0, expiredTokens: 0 };
}

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

/**
 * Pages through a collection with limit/continue, yielding one page at a time so the caller's
 * memory stays bounded by a page. An expired continue token (410) is continued with the token
 * the server returns for that purpose: every key is still visited exactly once, in order, but
 * later pages may be newer than earlier ones, so the outcome is marked inconsistent rather than
 * the listing silently restarting (which would duplicate what was already written).
 */
export async function* listPages(
  client: KubeClient,
  path: string,
  options: ListOptions,
  outcome: ListOutcome = newListOutcome(),
): AsyncGenerator<JsonObject[], ListOutcome> {
  let token: string | undefined;
  do {
    let text: string;
    try {
      text = (
        await client.request({
          path,
          query: { limit: options.pageSize, continue: token, labelSelector: options.labelSelector },
          signal: options.signal,
        })
      ).text;
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 410 && token !== undefined && e.continueToken) {
        outcome.consistent = false;
        outcome.expiredTokens++;
        token = e.continueToken;
        continue;
      }
      throw e;
    }
    const list = parseJson(text);
    if (!isJsonObject(list) || !Array.isArray(list["items"]) || !isJsonObject(list["metadata"])) {
      throw new KubeApiError(200, `GET ${path}: the answer is not a list`, { method: "GET", path });
    }
    const metadata = list["metadata"];
    if (outcome.pages === 0) outcome.resourceVersion = String(metadata["resourceVersion"] ?? "");
    outcome.pages++;
    token =
      typeof metadata["continue"] === "string" && metadata["continue"] ? metadata["continue"] : undefined;
    yield list["items"].filter(isJsonObject);
  } while (token !== undefined);
  return outcome;
}

export function newListOutcome(): ListOutcome {
  return { resourceVersion: "", consistent: true, pages: 0, expiredTokens: 0 };
}

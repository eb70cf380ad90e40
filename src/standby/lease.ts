/**
 * One standby per target: a coordination.k8s.io/v1 Lease in the state namespace, taken at start
 * and renewed while the standby runs. Another holder's fresh lease refuses the start; an expired
 * one (its holder crashed) is taken over, with the resourceVersion read so two starting at once
 * cannot both win. Renewal is the same conditional update.
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import { CrdBackupError, KubeApiError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import { isJsonObject, parseJson, type JsonObject } from "../json/json.ts";
import { STANDBY_NAME } from "./resume.ts";

const leasesPath = (namespace: string) =>
  `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;

/** Lease times are RFC 3339 with microseconds (MicroTime). */
const microTime = (d: Date) => d.toISOString().replace(/Z$/, "000Z");

export class StandbyLease {
  readonly holder = `${os.hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #durationSeconds: number;
  #resourceVersion: string | undefined;

  constructor(client: KubeClient, namespace: string, durationSeconds: number) {
    this.#client = client;
    this.#namespace = namespace;
    this.#durationSeconds = durationSeconds;
  }

  #body(acquired: Date | undefined, now: Date): JsonObject {
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name: STANDBY_NAME,
        namespace: this.#namespace,
        ...(this.#resourceVersion ? { resourceVersion: this.#resourceVersion } : {}),
      },
      spec: {
        holderIdentity: this.holder,
        leaseDurationSeconds: this.#durationSeconds,
        renewTime: microTime(now),
        ...(acquired ? { acquireTime: microTime(acquired) } : {}),
      },
    };
  }

  #kept(text: string): void {
    const body = parseJson(text);
    const md = isJsonObject(body) && isJsonObject(body["metadata"]) ? body["metadata"] : {};
    this.#resourceVersion = typeof md["resourceVersion"] === "string" ? md["resourceVersion"] : undefined;
  }

  /** Takes the lease, or throws CONFLICT naming the holder while another standby's lease is fresh. */
  async acquire(signal?: AbortSignal): Promise<void> {
    const now = new Date();
    let current: JsonObject | undefined;
    try {
      const body = parseJson(
        (await this.#client.request({ path: `${leasesPath(this.#namespace)}/${STANDBY_NAME}`, signal })).text,
      );
      current = isJsonObject(body) ? body : undefined;
    } catch (e) {
      if (!(e instanceof KubeApiError && e.status === 404)) throw e;
    }
    if (!current) {
      try {
        this.#kept(
          (
            await this.#client.request({
              method: "POST",
              path: leasesPath(this.#namespace),
              body: JSON.stringify(this.#body(now, now)),
              signal,
            })
          ).text,
        );
        return;
      } catch (e) {
        if (e instanceof KubeApiError && e.status === 409) throw this.#held("another standby", undefined);
        throw e;
      }
    }
    const spec = isJsonObject(current["spec"]) ? current["spec"] : {};
    const holder = typeof spec["holderIdentity"] === "string" ? spec["holderIdentity"] : "";
    const renewed = Date.parse(String(spec["renewTime"] ?? ""));
    const duration = Number(spec["leaseDurationSeconds"] ?? 0);
    const expires = Number.isNaN(renewed) ? 0 : renewed + duration * 1000;
    if (holder && holder !== this.holder && expires > now.getTime())
      throw this.#held(holder, new Date(expires));
    this.#kept(JSON.stringify(current));
    await this.renew(now, signal);
  }

  /** Renews (a conditional update: a lease taken over meanwhile fails with 409, and the standby stops). */
  async renew(acquired?: Date, signal?: AbortSignal): Promise<void> {
    try {
      const res = await this.#client.request({
        method: "PUT",
        path: `${leasesPath(this.#namespace)}/${STANDBY_NAME}`,
        body: JSON.stringify(this.#body(acquired, new Date())),
        signal,
      });
      this.#kept(res.text);
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 409) throw this.#held("another standby", undefined);
      throw e;
    }
  }

  /** Gives the lease up on a clean stop, so a replacement need not wait for it to expire. */
  async release(): Promise<void> {
    try {
      await this.#client.request({
        method: "DELETE",
        path: `${leasesPath(this.#namespace)}/${STANDBY_NAME}`,
        body: JSON.stringify({ preconditions: { resourceVersion: this.#resourceVersion } }),
      });
    } catch {
      // it expires by itself
    }
  }

  #held(holder: string, until: Date | undefined): CrdBackupError {
    return new CrdBackupError(
      "CONFLICT",
      `another standby (${holder}) holds the lease ${this.#namespace}/${STANDBY_NAME} on the target${until ? ` until ${until.toISOString()} unless it renews` : ""}: one standby per target`,
      { namespace: this.#namespace, holder },
    );
  }
}

import type { StorageBackend } from "../storage/backend.ts";
import type { Identities } from "./keys.ts";

/**
 * The identities that go with a storage handle, for every reader of snapshots from it (restore,
 * diff, export, drill all fetch through VerifiedSnapshot). Attached to the handle rather than
 * passed down each command's options, so the restore path stays one path that never learns
 * whether a snapshot was encrypted; a WeakMap, so wrapping the handle's class is not needed.
 */
const keyrings = new WeakMap<StorageBackend, Identities>();

export function withIdentities<T extends StorageBackend>(storage: T, keys: Identities | undefined): T {
  if (keys) keyrings.set(storage, keys);
  return storage;
}

export function identitiesFor(storage: StorageBackend): Identities | undefined {
  return keyrings.get(storage);
}

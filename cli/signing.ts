/**
 * --sign-key (writers: snapshot, schedule, record, rekey) and --trusted-signers (readers: verify,
 * restore, drill, diff, export, modifiers test, and --at), attached to the storage handle
 * (src/signing/stored.ts) so that every layer below signs and checks without being told.
 */
import type { Command } from "commander";
import { loadTrustedSigners, TRUSTED_SIGNERS_ENV } from "../src/signing/allowed-signers.ts";
import { loadSigner, SIGN_KEY_ENV } from "../src/signing/keys.ts";
import { withSigning } from "../src/signing/stored.ts";
import type { StorageBackend } from "../src/storage/backend.ts";

export interface SignFlags {
  signKey?: string;
}

export interface TrustFlags {
  trustedSigners?: string;
}

export function addSignOptions(cmd: Command): Command {
  return cmd.option(
    "--sign-key <file>",
    `sign each manifest and journal segment with this OpenSSH Ed25519 private key (also $${SIGN_KEY_ENV})`,
  );
}

export function addTrustOptions(cmd: Command): Command {
  return cmd.option(
    "--trusted-signers <file>",
    `OpenSSH allowed_signers file: refuse anything not signed by one of its keys (also $${TRUSTED_SIGNERS_ENV})`,
  );
}

/** `storage` with the signing key of --sign-key attached (read now: a bad key is a usage error before any work). */
export async function withSignKey<T extends StorageBackend>(
  storage: T | Promise<T>,
  flags: SignFlags,
): Promise<T> {
  const signer = await loadSigner(flags.signKey);
  return withSigning(await storage, { signer });
}

/** `storage` with the trusted signers of --trusted-signers attached. */
export async function withTrustedSigners<T extends StorageBackend>(
  storage: T | Promise<T>,
  flags: TrustFlags,
): Promise<T> {
  const trusted = await loadTrustedSigners(flags.trustedSigners);
  return withSigning(await storage, { trusted });
}

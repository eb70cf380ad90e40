/**
 * Every failure crd-backup reports carries a stable code and the context it happened in
 * (which resource, which object, which call). The CLI maps codes to exit codes and prints
 * `message` as one line; nothing here ever holds credentials or object contents.
 */
export type ErrorCode =
  | "USAGE" // a wrong flag or argument
  | "CONFIG" // kubeconfig or storage settings that cannot be used
  | "KUBE_API" // the Kubernetes API answered with an error
  | "KUBE_UNREACHABLE" // no answer from the Kubernetes API
  | "STORAGE" // the storage backend failed
  | "NOT_FOUND" // a snapshot or storage object that does not exist
  | "ALREADY_EXISTS" // a create-only write found the key taken
  | "CONFLICT" // the target cluster holds something a restore may not touch
  | "ARCHIVE_INVALID" // corrupt, truncated, tampered or unknown-version archive
  | "DECRYPT" // an encrypted snapshot, and no identity given that decrypts it
  | "LOCKED" // storage refused a delete: the object is under S3 Object Lock retention
  | "ABORTED"; // cancelled by a signal

export class CrdBackupError extends Error {
  readonly code: ErrorCode;
  readonly context: Readonly<Record<string, string | number | undefined>>;

  constructor(
    code: ErrorCode,
    message: string,
    context: Record<string, string | number | undefined> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CrdBackupError";
    this.code = code;
    this.context = context;
  }
}

/** The Kubernetes API answered with a non-2xx status. */
export class KubeApiError extends CrdBackupError {
  readonly status: number;
  readonly reason: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  /** metadata.continue of a 410 Status: the server's inconsistent continuation of an expired list. */
  readonly continueToken: string | undefined;

  constructor(
    status: number,
    message: string,
    context: {
      method: string;
      path: string;
      reason?: string;
      retryAfterSeconds?: number;
      continueToken?: string;
    },
  ) {
    super("KUBE_API", message, { method: context.method, path: context.path, reason: context.reason });
    this.name = "KubeApiError";
    this.status = status;
    this.reason = context.reason;
    this.retryAfterSeconds = context.retryAfterSeconds;
    this.continueToken = context.continueToken;
  }
}

export function isCrdBackupError(e: unknown): e is CrdBackupError {
  return e instanceof CrdBackupError;
}
